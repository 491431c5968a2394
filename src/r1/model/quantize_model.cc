#include "r1/model/quantize_model.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/core/thread_pool.h"
#include "r1/io/safetensors.h"
#include "r1/kernels/matrix.h"
#include "r1/kernels/quantize_rows.h"
#include "r1/model/config.h"
#include "r1/model/weights.h"

namespace r1 {

namespace fs = std::filesystem;

QuantTarget ParseQuantTarget(const std::string& name) {
  if (name == "bf16") return QuantTarget::kBF16;
  if (name == "fp8") return QuantTarget::kFP8;
  if (name == "q8" || name == "q8_0") return QuantTarget::kQ8;
  if (name == "q4" || name == "q4_0") return QuantTarget::kQ4;
  throw Error("unknown quantization target '" + name + "' (expected q8, q4, bf16 or fp8)");
}

const char* QuantTargetName(QuantTarget t) {
  switch (t) {
    case QuantTarget::kBF16: return "bf16";
    case QuantTarget::kFP8: return "fp8";
    case QuantTarget::kQ8: return "q8";
    case QuantTarget::kQ4: return "q4";
  }
  return "?";
}

namespace {

// The output encoding of one matrix.
enum class Encoding { kKeep, kBF16, kFP8, kQ8, kQ4 };

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The MoE router: a few thousand values per layer that pick experts, where a flipped choice costs
// far more than the bytes saved; DeepSeek's own FP8 release keeps it in BF16 too.
bool IsRouter(const std::string& name) { return EndsWith(name, ".mlp.gate.weight"); }
bool IsEmbedding(const std::string& name) { return EndsWith(name, "embed_tokens.weight"); }
bool IsHead(const std::string& name) {
  return name == "lm_head.weight" || EndsWith(name, "shared_head.head.weight");
}

Encoding Choose(QuantTarget to, const std::string& name, bool tied, bool q4_head) {
  const bool head = IsHead(name) || (tied && name == "model.embed_tokens.weight");
  switch (to) {
    case QuantTarget::kBF16:
      return Encoding::kBF16;
    case QuantTarget::kQ8:
      return IsRouter(name) ? Encoding::kKeep : Encoding::kQ8;
    case QuantTarget::kQ4:
      // The output head turns every hidden state into logits; 4 bits there costs most of Q4's
      // perplexity loss (llama.cpp keeps it at 6 bits for the same reason), so it gets Q8.
      if (IsRouter(name)) return Encoding::kKeep;
      return head && !q4_head ? Encoding::kQ8 : Encoding::kQ4;
    case QuantTarget::kFP8:
      // As in DeepSeek-V3's FP8 checkpoint: embedding, heads and routers stay in 16 bits.
      if (IsRouter(name) || IsEmbedding(name) || head) return Encoding::kKeep;
      return Encoding::kFP8;
  }
  return Encoding::kKeep;
}

bool IsFloatType(DType t) { return t == DType::kF32 || t == DType::kBF16 || t == DType::kF16; }

void CheckDestination(const fs::path& src, const fs::path& dst, bool overwrite) {
  std::error_code ec;
  if (fs::exists(dst, ec) && fs::equivalent(src, dst, ec))
    throw Error(dst.string() + ": the output folder is the input folder");
  if (!overwrite && (fs::exists(dst / "config.json") || fs::exists(dst / "model.safetensors")))
    throw Error(dst.string() + ": already holds a model (use --force to replace it)");
  if (fs::exists(dst) && !fs::is_directory(dst))
    throw Error(dst.string() + ": exists and is not a folder");
  fs::create_directories(dst);
}

// Files of the source folder that belong to the model but are not weights: tokenizer,
// tokenizer_config, generation_config, chat templates, a README. Training state is left behind.
bool CopiedAlong(const std::string& name) {
  if (name == "config.json" || name == "trainer_state.json") return false;
  if (EndsWith(name, ".safetensors") || EndsWith(name, ".safetensors.index.json")) return false;
  return true;
}

class Plan {
 public:
  Plan(const Config& cfg, const TensorStore& store, QuantTarget to, bool q4_head,
       QuantizeReport& report)
      : cfg_(cfg), store_(store), to_(to), q4_head_(q4_head), report_(report) {}

  void Build(SafetensorsWriter& w) {
    std::set<std::string> bound;
    for (const StoredTensor& t : ListStoredTensors(cfg_, store_, owned_scales_)) {
      bound.insert(t.name);
      const TensorView& view = store_.Get(t.name);
      if (!t.is_matrix) {
        w.Add(t.name, view.dtype, view.shape, view.data);
        AddBytes(view.nbytes);
        ++report_.vectors_copied;
        continue;
      }
      report_.bytes_in += t.matrix.bytes();
      AddMatrix(w, t.matrix, Choose(to_, t.name, cfg_.tie_word_embeddings, q4_head_));
    }
    for (const std::string& name : store_.Names()) {
      if (bound.count(name)) continue;
      // Scale companions of matrices written above are replaced by the new encoding's own.
      if (EndsWith(name, "_scale_inv") && bound.count(name.substr(0, name.size() - 10))) continue;
      if (EndsWith(name, "_scale") && bound.count(name.substr(0, name.size() - 6))) continue;
      const TensorView& view = store_.Get(name);
      w.Add(name, view.dtype, view.shape, view.data);
      AddBytes(view.nbytes);
      ++report_.unknown_copied;
    }
  }

  // Progress callbacks see the output bytes produced so far.
  std::function<void(uint64_t)> on_bytes;

 private:
  void AddBytes(uint64_t n) {
    report_.bytes_in += n;
    report_.bytes_out += n;
  }

  void AddMatrix(SafetensorsWriter& w, const Matrix& m, Encoding e) {
    if (e == Encoding::kKeep) {
      ++report_.matrices_kept;
      if (IsFloatType(m.dtype)) {
        const TensorView& view = store_.Get(m.name);
        w.Add(m.name, view.dtype, view.shape, view.data);
        report_.bytes_out += view.nbytes;
        return;
      }
      e = Encoding::kBF16;  // an FP8 or Q8/Q4 router or embedding becomes BF16
    } else {
      ++report_.matrices_encoded;
    }
    const int64_t rows = m.rows, cols = m.cols;
    auto progress = on_bytes;
    switch (e) {
      case Encoding::kBF16:
        w.AddGenerated(m.name, DType::kBF16, {rows, cols}, [m, progress](uint8_t* dst) {
          ForRows(m, [&](int64_t r, const float* row) {
            uint16_t* out = reinterpret_cast<uint16_t*>(dst) + r * m.cols;
            for (int64_t c = 0; c < m.cols; ++c) out[c] = F32ToBf16(row[c]);
          });
          if (progress) progress(static_cast<uint64_t>(m.rows * m.cols * 2));
        });
        report_.bytes_out += rows * cols * 2;
        break;
      case Encoding::kQ8:
      case Encoding::kQ4: {
        const bool q4 = e == Encoding::kQ4;
        const DType dtype = q4 ? DType::kU8 : DType::kI8;
        const int64_t groups = QuantGroups(rows), group_bytes = QuantGroupBytes(dtype, cols);
        w.AddGenerated(m.name, dtype, {groups, group_bytes},
                       [m, q4, dtype, groups, group_bytes, progress](uint8_t* dst) {
                         // Padding rows, blocks and scale slots stay zero.
                         std::memset(dst, 0, groups * group_bytes);
                         ForRows(m, [&](int64_t r, const float* row) {
                           thread_local std::vector<uint8_t> codes;
                           thread_local std::vector<uint16_t> scales;
                           codes.resize(q4 ? Q4RowBytes(m.cols) : m.cols);
                           scales.resize(m.qblocks());
                           if (q4)
                             QuantizeRowQ4(row, m.cols, codes.data(), scales.data());
                           else
                             QuantizeRowQ8(row, m.cols, reinterpret_cast<int8_t*>(codes.data()),
                                           scales.data());
                           StoreQuantRow(dtype, m.cols, r, codes.data(), scales.data(), dst);
                         });
                         if (progress) progress(static_cast<uint64_t>(groups * group_bytes));
                       });
        report_.bytes_out += groups * group_bytes;
        break;
      }
      case Encoding::kFP8: {
        const int br = 128, bc = 128;
        const int64_t srows = (rows + br - 1) / br, scols = (cols + bc - 1) / bc;
        auto scale_inv = std::make_shared<std::vector<float>>();
        w.AddGenerated(m.name, DType::kF8E4M3, {rows, cols},
                       [m, srows, scols, scale_inv, progress](uint8_t* dst) {
                         scale_inv->resize(srows * scols);
                         // One strip of 128 rows at a time: block scales need whole blocks, and
                         // a strip keeps the float32 copy small.
                         DefaultPool().ParallelFor(srows, 1, [&](int64_t s0, int64_t s1, int) {
                           std::vector<float> strip;
                           for (int64_t s = s0; s < s1; ++s) {
                             const int64_t r0 = s * br, r1 = std::min(m.rows, r0 + br);
                             strip.resize((r1 - r0) * m.cols);
                             for (int64_t r = r0; r < r1; ++r)
                               m.DequantRow(r, 0, m.cols, strip.data() + (r - r0) * m.cols);
                             QuantizeFp8Blocks(strip.data(), r1 - r0, m.cols, br, bc,
                                               dst + r0 * m.cols, scale_inv->data() + s * scols);
                           }
                         });
                         if (progress) progress(static_cast<uint64_t>(m.rows * m.cols));
                       });
        w.AddGenerated(m.name + "_scale_inv", DType::kF32, {srows, scols},
                       [scale_inv, progress](uint8_t* dst) {
                         std::memcpy(dst, scale_inv->data(), scale_inv->size() * 4);
                         if (progress) progress(scale_inv->size() * 4);
                         std::vector<float>().swap(*scale_inv);
                       });
        report_.bytes_out += rows * cols + srows * scols * 4;
        break;
      }
      case Encoding::kKeep:
        break;
    }
  }

  // fn(r, row) for every row of m in float32, rows split over the default pool.
  template <typename Fn>
  static void ForRows(const Matrix& m, const Fn& fn) {
    DefaultPool().ParallelFor(m.rows, 16, [&](int64_t r0, int64_t r1, int) {
      std::vector<float> row(m.cols);
      for (int64_t r = r0; r < r1; ++r) {
        m.DequantRow(r, 0, m.cols, row.data());
        fn(r, row.data());
      }
    });
  }

  const Config& cfg_;
  const TensorStore& store_;
  QuantTarget to_;
  bool q4_head_;
  QuantizeReport& report_;
  std::vector<std::shared_ptr<std::vector<float>>> owned_scales_;
};

nlohmann::json QuantizationConfig(QuantTarget to) {
  switch (to) {
    case QuantTarget::kFP8:
      return {{"activation_scheme", "dynamic"},
              {"fmt", "e4m3"},
              {"quant_method", "fp8"},
              {"weight_block_size", {128, 128}}};
    case QuantTarget::kQ8:
    case QuantTarget::kQ4:
      return {{"quant_method", "r1cpp"},
              {"format", to == QuantTarget::kQ8 ? "q8_0" : "q4_0"},
              {"block_size", kQuantBlock},
              {"layout", "tiles_4x16_words"}};
    case QuantTarget::kBF16:
      break;
  }
  return nullptr;
}

}  // namespace

QuantizeReport QuantizeModel(const std::string& src, const std::string& dst,
                             const QuantizeOptions& options,
                             const std::function<void(double)>& progress) {
  const Config cfg = LoadConfig(src);
  const TensorStore store = TensorStore::OpenDir(src);
  CheckDestination(src, dst, options.overwrite);

  QuantizeReport report;
  SafetensorsWriter writer;
  if (options.q4_head && options.to != QuantTarget::kQ4)
    throw Error("quantize: a Q4 head only goes with --to q4");
  Plan plan(cfg, store, options.to, options.q4_head, report);
  std::atomic<uint64_t> done{0};
  plan.on_bytes = [&](uint64_t n) {
    done += n;
    if (progress && report.bytes_out) progress(static_cast<double>(done) / report.bytes_out);
  };
  plan.Build(writer);
  writer.SetMetadata("format", "pt");
  writer.Write((fs::path(dst) / "model.safetensors").string());
  // A previous run's shards would shadow the new single file.
  fs::remove(fs::path(dst) / "model.safetensors.index.json");

  nlohmann::json config = cfg.raw;
  config.erase("quantization_config");
  if (nlohmann::json q = QuantizationConfig(options.to); !q.is_null())
    config["quantization_config"] = q;
  if (options.to == QuantTarget::kBF16) config["torch_dtype"] = "bfloat16";
  WriteFileAtomic((fs::path(dst) / "config.json").string(), config.dump(2) + "\n");

  for (const auto& entry : fs::directory_iterator(src)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || !CopiedAlong(name)) continue;
    fs::copy_file(entry.path(), fs::path(dst) / name, fs::copy_options::overwrite_existing);
  }

  // What every other command will do first: fail here, naming the tensor, if it would fail there.
  const Config check_cfg = LoadConfig(dst);
  const TensorStore check_store = TensorStore::OpenDir(dst);
  BindWeights(check_cfg, check_store);
  if (progress) progress(1.0);
  return report;
}

}  // namespace r1
