#include "r1/train/checkpoint.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>
#include <vector>

#include "r1/core/error.h"
#include "r1/io/safetensors.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kStateFormat = "r1cpp-trainer-state";
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";

// ---- Whole-folder replacement -------------------------------------------------------------

// Without trailing separators, so the .tmp-/.old- siblings land beside the folder, not in it.
fs::path FolderPath(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (!p.has_filename()) p = p.parent_path();
  const std::string name = p.filename().string();
  if (name.empty() || name == "." || name == "..") {
    throw Error("'" + dir + "': a checkpoint or model folder needs a name of its own "
                "(it is replaced as a whole, through siblings beside it)");
  }
  return p;
}

fs::path Parent(const fs::path& dir) {
  return dir.has_parent_path() ? dir.parent_path() : fs::path(".");
}

fs::path Sibling(const fs::path& dir, const std::string& suffix) {
  return Parent(dir) / (dir.filename().string() + suffix);
}

// Renames are only durable once the folder holding them is synced; the data is complete either
// way, so failures are not worth an error.
void SyncFolder(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

bool IsFolderFile(const std::string& name) {
  static const std::set<std::string> kKnown = {
      "config.json",          "generation_config.json", "model.safetensors",
      "tokenizer.json",       "tokenizer_config.json",  "model.safetensors.index.json",
      kOptimizerFile,         kStateFile};
  if (kKnown.count(name)) return true;
  if (name.starts_with("model-") && name.ends_with(".safetensors")) return true;
  // Temporary files of an interrupted WriteFileAtomic / SafetensorsWriter.
  return name.find(".tmp.") != std::string::npos;
}

void CheckReplaceable(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir, ec)) return;
  if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": exists and is not a folder");
  fs::directory_iterator it(dir, ec);
  if (ec) throw Error(dir.string() + ": cannot list the folder: " + ec.message());
  for (const fs::directory_entry& e : it) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || !IsFolderFile(name)) {
      throw Error(dir.string() + ": holds '" + name + "', which is not part of a model or "
                  "checkpoint folder; refusing to replace the folder (choose another path or "
                  "move that file away)");
    }
  }
}

bool ProcessIsGone(long pid) { return ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH; }

// After a successful swap <dir> is newer than any .tmp-/.old- sibling of ours or of a process
// that died mid-save; siblings of live processes may still be in use and are left alone.
void RemoveStaleSiblings(const fs::path& dir) {
  const std::string base = dir.filename().string();
  const long self = static_cast<long>(::getpid());
  std::vector<fs::path> stale;
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(Parent(dir), ec)) {
    const std::string name = e.path().filename().string();
    for (const char* suffix : {".tmp-", ".old-"}) {
      const std::string prefix = base + suffix;
      if (!name.starts_with(prefix) || name.size() == prefix.size() ||
          name.size() > prefix.size() + 10) {
        continue;
      }
      const std::string digits = name.substr(prefix.size());
      if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
      const long pid = std::stol(digits);
      // Out of pid_t's range it cannot be a pid, and kill() must never see a value <= 0, which
      // would address process groups.
      if (pid <= 0 || pid > std::numeric_limits<pid_t>::max()) continue;
      if (pid == self || ProcessIsGone(pid)) stale.push_back(e.path());
    }
  }
  for (const fs::path& p : stale) fs::remove_all(p, ec);
}

void ReplaceFolder(const fs::path& dir, const std::function<void(const fs::path&)>& write) {
  CheckReplaceable(dir);
  const std::string pid = std::to_string(::getpid());
  const fs::path tmp = Sibling(dir, ".tmp-" + pid);
  const fs::path old = Sibling(dir, ".old-" + pid);
  std::error_code ec;
  fs::create_directories(Parent(dir), ec);
  if (ec) throw Error(dir.string() + ": cannot create the parent folder: " + ec.message());
  fs::remove_all(tmp, ec);  // a dead process with our pid, or an earlier failed save of ours
  try {
    if (!fs::create_directory(tmp, ec) || ec) {
      throw Error(dir.string() + ": cannot create " + tmp.string() + ": " + ec.message());
    }
    write(tmp);
    SyncFolder(tmp);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }

  const bool had_old = fs::exists(dir, ec);
  if (had_old) {
    fs::remove_all(old, ec);  // <dir> exists, so this is a stale copy, not the only one
    fs::rename(dir, old, ec);
    if (ec) {
      const std::string why = ec.message();
      fs::remove_all(tmp, ec);
      throw Error(dir.string() + ": cannot move the previous folder aside to " + old.string() +
                  ": " + why);
    }
  }
  fs::rename(tmp, dir, ec);
  if (ec) {
    const std::string why = ec.message();
    std::error_code ignored;
    if (had_old) fs::rename(old, dir, ignored);
    fs::remove_all(tmp, ignored);
    throw Error(dir.string() + ": cannot move the new folder into place from " + tmp.string() +
                ": " + why);
  }
  SyncFolder(Parent(dir));
  RemoveStaleSiblings(dir);
}

// ---- Model files --------------------------------------------------------------------------

struct SourceFiles {
  std::string tokenizer, tokenizer_config, generation_config;
};

std::string ReadIfPresent(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec) ? ReadFileToString(p.string()) : std::string();
}

SourceFiles ReadSourceFiles(const std::string& source) {
  SourceFiles f;
  if (source.empty()) return f;
  std::error_code ec;
  const fs::path p = source;
  if (!fs::exists(p, ec)) throw Error("tokenizer source '" + source + "' does not exist");
  const bool is_dir = fs::is_directory(p, ec);
  const fs::path folder = is_dir ? p : Parent(p);
  f.tokenizer = ReadIfPresent(is_dir ? p / "tokenizer.json" : p);
  if (f.tokenizer.empty()) return f;
  f.tokenizer_config = ReadIfPresent(folder / "tokenizer_config.json");
  f.generation_config = ReadIfPresent(folder / "generation_config.json");
  return f;
}

// The source model's sampling defaults are kept when it has a readable generation_config.json;
// the token ids always come from the config being written, so the two agree.
json GenerationConfig(const Config& cfg, const std::string& source_text) {
  json gen = json::object();
  if (!source_text.empty()) {
    json parsed = json::parse(source_text, nullptr, /*allow_exceptions=*/false);
    if (parsed.is_object()) gen = std::move(parsed);
  }
  for (const char* key : {"bos_token_id", "eos_token_id"})
    if (cfg.raw.contains(key)) gen[key] = cfg.raw[key];
  return gen;
}

void WriteModelFiles(const fs::path& out, const Config& cfg, const ParamSet& params,
                     const SourceFiles& source, DType dtype) {
  json config = cfg.raw;
  // The weights are dequantized; a kept quantization_config would make loaders expect FP8.
  config.erase("quantization_config");
  config["torch_dtype"] = dtype == DType::kF32 ? "float32" : "bfloat16";

  const TensorStore store = params.View();
  SafetensorsWriter writer;
  writer.SetMetadata("format", "pt");  // transformers refuses safetensors files without it
  for (const std::string& name : store.Names()) {
    const TensorView& t = store.Get(name);
    if (dtype == DType::kF32 || name.ends_with("e_score_correction_bias")) {
      writer.Add(name, DType::kF32, t.shape, t.data);
      continue;
    }
    const float* src = reinterpret_cast<const float*>(t.data);
    const int64_t n = t.numel();
    writer.AddGenerated(name, DType::kBF16, t.shape, [src, n](uint8_t* dst) {
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t b = F32ToBf16(src[i]);
        std::memcpy(dst + 2 * i, &b, 2);
      }
    });
  }
  writer.Write((out / "model.safetensors").string());
  WriteFileAtomic((out / "config.json").string(), config.dump(2) + "\n");
  WriteFileAtomic((out / "generation_config.json").string(),
                  GenerationConfig(cfg, source.generation_config).dump(2) + "\n");
  if (!source.tokenizer.empty()) {
    WriteFileAtomic((out / "tokenizer.json").string(), source.tokenizer);
    if (!source.tokenizer_config.empty())
      WriteFileAtomic((out / "tokenizer_config.json").string(), source.tokenizer_config);
  }
}

void CheckModelInputs(const Config& cfg, DType dtype) {
  if (!cfg.raw.is_object()) {
    throw Error("cannot write a model folder: the Config carries no config.json object "
                "(Config::raw); build it with ParseConfig or LoadConfig");
  }
  if (dtype != DType::kF32 && dtype != DType::kBF16) {
    throw Error("cannot write a model folder in " + std::string(DTypeName(dtype)) +
                " (F32 or BF16)");
  }
}

// ---- Trainer state ------------------------------------------------------------------------

std::string ShapeText(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string MomentName(const char* which, const std::string& param) {
  return std::string("adamw.") + which + "." + param;
}

void CheckOptimizer(const ParamSet& params, const AdamW& opt) {
  for (const Param& p : params.params()) {
    if (!p.trainable) continue;
    const AdamW::Moments* s = opt.Find(p.name);
    if (!s || s->m.size() != p.value.size() || s->v.size() != p.value.size()) {
      throw Error("cannot save a checkpoint: the optimizer has " +
                  std::string(s ? "state of another size" : "no state") + " for parameter '" +
                  p.name + "'");
    }
  }
}

void WriteOptimizer(const fs::path& path, const ParamSet& params, const AdamW& opt) {
  SafetensorsWriter writer;
  writer.SetMetadata("format", "pt");
  for (const Param& p : params.params()) {
    if (!p.trainable) continue;
    const AdamW::Moments& s = *opt.Find(p.name);
    writer.Add(MomentName("m", p.name), DType::kF32, p.shape, s.m.data());
    writer.Add(MomentName("v", p.name), DType::kF32, p.shape, s.v.data());
  }
  writer.Write(path.string());
}

json StateJson(const AdamW& opt, const TrainerState& st) {
  const AdamWOptions& o = opt.options();
  json adamw = json::object();
  adamw["step"] = opt.step();
  adamw["lr"] = o.lr;
  adamw["beta1"] = o.beta1;
  adamw["beta2"] = o.beta2;
  adamw["eps"] = o.eps;
  adamw["weight_decay"] = o.weight_decay;
  json j = json::object();
  j["format"] = kStateFormat;
  j["version"] = kTrainerStateVersion;
  j["step"] = st.step;
  j["adamw"] = std::move(adamw);
  j["options"] = st.options;
  j["data_state"] = st.data_state;
  j["rng_state"] = st.rng_state;
  j["extra"] = st.extra;
  return j;
}

struct StateFile {
  TrainerState state;
  AdamWOptions adamw;
  int64_t adamw_step = 0;
};

int64_t Count(const json& obj, const char* key, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number_integer() || it->get<int64_t>() < 0)
    throw Error(what + ": '" + key + "' must be an integer >= 0");
  return it->get<int64_t>();
}

double Number(const json& obj, const char* key, const std::string& what) {
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_number()) throw Error(what + ": '" + key + "' must be a number");
  return it->get<double>();
}

json Member(const json& obj, const char* key) {
  auto it = obj.find(key);
  return it == obj.end() ? json() : *it;
}

std::string MissingFolderText(const fs::path& dir) {
  std::string text = dir.string() + ": no such checkpoint folder";
  const std::string prefix = dir.filename().string() + ".old-";
  std::error_code ec;
  for (const fs::directory_entry& e : fs::directory_iterator(Parent(dir), ec)) {
    if (e.path().filename().string().starts_with(prefix) && e.is_directory()) {
      text += "; " + e.path().string() + " holds the folder that an interrupted save was "
              "replacing: rename it to " + dir.string() + " to use it";
      break;
    }
  }
  return text;
}

void RequireFile(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / name, ec))
    throw Error(dir.string() + " is not a complete checkpoint: missing " + name);
}

StateFile ReadStateFile(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(MissingFolderText(dir));
  RequireFile(dir, kStateFile);
  const std::string what = (dir / kStateFile).string();
  json j = json::parse(ReadFileToString(what), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw Error(what + ": not a JSON object");
  if (Member(j, "format") != kStateFormat)
    throw Error(what + ": 'format' is not \"" + std::string(kStateFormat) + "\"");
  const int64_t version = Count(j, "version", what);
  if (version != kTrainerStateVersion) {
    throw Error(what + ": version " + std::to_string(version) + " (this build reads version " +
                std::to_string(kTrainerStateVersion) + ")");
  }
  StateFile f;
  f.state.step = Count(j, "step", what);
  const json adamw = Member(j, "adamw");
  if (!adamw.is_object()) throw Error(what + ": 'adamw' must be an object");
  const std::string adamw_what = what + " adamw";
  f.adamw_step = Count(adamw, "step", adamw_what);
  f.adamw.lr = Number(adamw, "lr", adamw_what);
  f.adamw.beta1 = Number(adamw, "beta1", adamw_what);
  f.adamw.beta2 = Number(adamw, "beta2", adamw_what);
  f.adamw.eps = Number(adamw, "eps", adamw_what);
  f.adamw.weight_decay = Number(adamw, "weight_decay", adamw_what);
  f.state.options = Member(j, "options");
  f.state.data_state = Member(j, "data_state");
  f.state.rng_state = Member(j, "rng_state");
  f.state.extra = Member(j, "extra");
  return f;
}

void RequireCheckpointFiles(const fs::path& dir) {
  RequireFile(dir, "config.json");
  std::error_code ec;
  if (!fs::is_regular_file(dir / "model.safetensors", ec) &&
      !fs::is_regular_file(dir / "model.safetensors.index.json", ec)) {
    throw Error(dir.string() + " is not a complete checkpoint: missing model.safetensors");
  }
  RequireFile(dir, kOptimizerFile);
}

void LoadMoments(const fs::path& path, ParamSet& params, AdamW& opt) {
  const auto file = SafetensorsFile::Open(path.string());
  const std::string what = path.string();
  std::set<std::string> expected;
  for (const Param& p : params.params()) {
    if (!p.trainable) continue;
    AdamW::Moments& s = opt.state().at(p.name);
    for (const char* which : {"m", "v"}) {
      const std::string name = MomentName(which, p.name);
      expected.insert(name);
      const TensorView* t = file->Find(name);
      if (!t) {
        throw Error(what + ": no '" + name + "' for parameter '" + p.name +
                    "' (the optimizer state does not belong to this model)");
      }
      if (t->dtype != DType::kF32) {
        throw Error(what + ": '" + name + "' is " + std::string(DTypeName(t->dtype)) +
                    ", expected F32");
      }
      if (t->shape != p.shape) {
        throw Error(what + ": '" + name + "' has shape " + t->ShapeString() +
                    " but the parameter has " + ShapeText(p.shape));
      }
      std::vector<float>& dst = which[0] == 'm' ? s.m : s.v;
      std::memcpy(dst.data(), t->data, t->nbytes);
    }
  }
  for (const TensorView& t : file->tensors()) {
    if (!expected.count(t.name))
      throw Error(what + ": unexpected tensor '" + t.name + "' (no trainable parameter matches)");
  }
}

}  // namespace

void SaveCheckpoint(const std::string& dir, const Config& cfg, const ParamSet& params,
                    const AdamW& optimizer, const TrainerState& state,
                    const std::string& tokenizer_source_dir) {
  const fs::path folder = FolderPath(dir);
  CheckModelInputs(cfg, DType::kF32);
  CheckOptimizer(params, optimizer);
  if (state.step < 0) throw Error("cannot save a checkpoint at step " + std::to_string(state.step));
  const SourceFiles source = ReadSourceFiles(tokenizer_source_dir);
  const std::string state_text = StateJson(optimizer, state).dump(2) + "\n";
  ReplaceFolder(folder, [&](const fs::path& out) {
    WriteModelFiles(out, cfg, params, source, DType::kF32);
    WriteOptimizer(out / kOptimizerFile, params, optimizer);
    WriteFileAtomic((out / kStateFile).string(), state_text);
  });
}

void LoadCheckpoint(const std::string& dir, Config* cfg, ParamSet* params, AdamW* optimizer,
                    TrainerState* state) {
  if (!params || !optimizer) throw Error("LoadCheckpoint: params and optimizer are required");
  const fs::path folder = FolderPath(dir);
  StateFile f = ReadStateFile(folder);
  RequireCheckpointFiles(folder);
  Config c;
  ParamSet ps = ParamSet::FromDir(folder.string(), &c);
  AdamW opt(ps, f.adamw);
  opt.set_step(f.adamw_step);
  LoadMoments(folder / kOptimizerFile, ps, opt);
  if (cfg) *cfg = std::move(c);
  *params = std::move(ps);
  *optimizer = std::move(opt);
  if (state) *state = std::move(f.state);
}

TrainerState ReadTrainerState(const std::string& dir) {
  return ReadStateFile(FolderPath(dir)).state;
}

bool IsCheckpoint(const std::string& dir) {
  try {
    const fs::path folder = FolderPath(dir);
    ReadStateFile(folder);
    RequireCheckpointFiles(folder);
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

void WriteModelFolder(const std::string& dir, const Config& cfg, const ParamSet& params,
                      const std::string& tokenizer_source_dir, DType dtype) {
  const fs::path folder = FolderPath(dir);
  CheckModelInputs(cfg, dtype);
  const SourceFiles source = ReadSourceFiles(tokenizer_source_dir);
  ReplaceFolder(folder, [&](const fs::path& out) {
    WriteModelFiles(out, cfg, params, source, dtype);
  });
}

}  // namespace r1
