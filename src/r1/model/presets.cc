#include "r1/model/presets.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>

#include "r1/core/error.h"
#include "r1/core/thread_pool.h"
#include "r1/io/safetensors.h"
#include "r1/model/weights.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Published values: shared/docs/model-spec.md §1.5 and the Hugging Face config.json files.
json DeepseekV3Config() {
  return {
      {"architectures", {"DeepseekV3ForCausalLM"}},
      {"model_type", "deepseek_v3"},
      {"vocab_size", 129280},
      {"hidden_size", 7168},
      {"intermediate_size", 18432},
      {"moe_intermediate_size", 2048},
      {"num_hidden_layers", 61},
      {"num_nextn_predict_layers", 1},
      {"num_attention_heads", 128},
      {"num_key_value_heads", 128},
      {"n_shared_experts", 1},
      {"n_routed_experts", 256},
      {"num_experts_per_tok", 8},
      {"routed_scaling_factor", 2.5},
      {"kv_lora_rank", 512},
      {"q_lora_rank", 1536},
      {"qk_rope_head_dim", 64},
      {"v_head_dim", 128},
      {"qk_nope_head_dim", 128},
      {"topk_method", "noaux_tc"},
      {"n_group", 8},
      {"topk_group", 4},
      {"moe_layer_freq", 1},
      {"first_k_dense_replace", 3},
      {"norm_topk_prob", true},
      {"scoring_func", "sigmoid"},
      {"aux_loss_alpha", 0.001},
      {"seq_aux", true},
      {"ep_size", 1},
      {"hidden_act", "silu"},
      {"max_position_embeddings", 163840},
      {"initializer_range", 0.02},
      {"rms_norm_eps", 1e-6},
      {"use_cache", true},
      {"pretraining_tp", 1},
      {"bos_token_id", 0},
      {"eos_token_id", 1},
      {"tie_word_embeddings", false},
      {"rope_theta", 10000},
      {"rope_scaling",
       {{"type", "yarn"},
        {"factor", 40},
        {"original_max_position_embeddings", 4096},
        {"beta_fast", 32},
        {"beta_slow", 1},
        {"mscale", 1.0},
        {"mscale_all_dim", 1.0}}},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"quantization_config",
       {{"quant_method", "fp8"},
        {"fmt", "e4m3"},
        {"weight_block_size", {128, 128}},
        {"activation_scheme", "dynamic"}}},
      {"torch_dtype", "bfloat16"},
  };
}

json DeepseekV2LiteConfig() {
  return {
      {"architectures", {"DeepseekV2ForCausalLM"}},
      {"model_type", "deepseek_v2"},
      {"vocab_size", 102400},
      {"hidden_size", 2048},
      {"intermediate_size", 10944},
      {"moe_intermediate_size", 1408},
      {"num_hidden_layers", 27},
      {"num_attention_heads", 16},
      {"num_key_value_heads", 16},
      {"n_shared_experts", 2},
      {"n_routed_experts", 64},
      {"num_experts_per_tok", 6},
      {"routed_scaling_factor", 1.0},
      {"kv_lora_rank", 512},
      {"q_lora_rank", nullptr},
      {"qk_rope_head_dim", 64},
      {"v_head_dim", 128},
      {"qk_nope_head_dim", 128},
      {"topk_method", "greedy"},
      {"n_group", 1},
      {"topk_group", 1},
      {"moe_layer_freq", 1},
      {"first_k_dense_replace", 1},
      {"norm_topk_prob", false},
      {"scoring_func", "softmax"},
      {"aux_loss_alpha", 0.001},
      {"seq_aux", true},
      {"ep_size", 1},
      {"hidden_act", "silu"},
      {"max_position_embeddings", 163840},
      {"initializer_range", 0.02},
      {"rms_norm_eps", 1e-6},
      {"use_cache", true},
      {"pretraining_tp", 1},
      {"bos_token_id", 100000},
      {"eos_token_id", 100001},
      {"tie_word_embeddings", false},
      {"rope_theta", 10000},
      {"rope_scaling",
       {{"type", "yarn"},
        {"factor", 40},
        {"original_max_position_embeddings", 4096},
        {"beta_fast", 32},
        {"beta_slow", 1},
        {"mscale", 0.707},
        {"mscale_all_dim", 0.707}}},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"torch_dtype", "bfloat16"},
  };
}

json DistillQwen15BConfig() {
  return {
      {"architectures", {"Qwen2ForCausalLM"}},
      {"model_type", "qwen2"},
      {"vocab_size", 151936},
      {"hidden_size", 1536},
      {"intermediate_size", 8960},
      {"num_hidden_layers", 28},
      {"num_attention_heads", 12},
      {"num_key_value_heads", 2},
      {"hidden_act", "silu"},
      {"max_position_embeddings", 131072},
      {"initializer_range", 0.02},
      {"rms_norm_eps", 1e-6},
      {"use_cache", true},
      // What the published config.json says; the tokenizer's BOS is 151646 (model-spec §1.5).
      {"bos_token_id", 151643},
      {"eos_token_id", 151643},
      {"tie_word_embeddings", false},
      {"rope_theta", 10000},
      {"rope_scaling", nullptr},
      {"use_sliding_window", false},
      {"sliding_window", 4096},
      {"max_window_layers", 21},
      {"use_mrope", false},
      {"attention_dropout", 0.0},
      {"torch_dtype", "bfloat16"},
  };
}

json DistillLlama8BConfig() {
  return {
      {"architectures", {"LlamaForCausalLM"}},
      {"model_type", "llama"},
      {"vocab_size", 128256},
      {"hidden_size", 4096},
      {"intermediate_size", 14336},
      {"num_hidden_layers", 32},
      {"num_attention_heads", 32},
      {"num_key_value_heads", 8},
      {"hidden_act", "silu"},
      {"max_position_embeddings", 131072},
      {"initializer_range", 0.02},
      {"rms_norm_eps", 1e-5},
      {"use_cache", true},
      {"pretraining_tp", 1},
      {"bos_token_id", 128000},
      {"eos_token_id", 128001},
      {"tie_word_embeddings", false},
      {"rope_theta", 500000.0},
      {"rope_scaling",
       {{"rope_type", "llama3"},
        {"factor", 8.0},
        {"low_freq_factor", 1.0},
        {"high_freq_factor", 4.0},
        {"original_max_position_embeddings", 8192}}},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"mlp_bias", false},
      {"torch_dtype", "bfloat16"},
  };
}

// The training-benchmark shapes (shared/perf/torch_train_bench.py CONFIGS): V3 routing with one
// dense layer and one MTP module, but plain RoPE and no group-limited routing.
struct SmallV3Shape {
  int vocab, hidden, layers, dense_inter, routed, moe_inter, per_tok, heads, q_lora, kv_lora,
      nope, rope, v;
};

json SmallV3Config(const SmallV3Shape& s) {
  return {
      {"architectures", {"DeepseekV3ForCausalLM"}},
      {"model_type", "deepseek_v3"},
      {"vocab_size", s.vocab},
      {"hidden_size", s.hidden},
      {"intermediate_size", s.dense_inter},
      {"moe_intermediate_size", s.moe_inter},
      {"num_hidden_layers", s.layers},
      {"num_nextn_predict_layers", 1},
      {"num_attention_heads", s.heads},
      {"num_key_value_heads", s.heads},
      {"n_shared_experts", 1},
      {"n_routed_experts", s.routed},
      {"num_experts_per_tok", s.per_tok},
      {"routed_scaling_factor", 1.0},
      {"kv_lora_rank", s.kv_lora},
      {"q_lora_rank", s.q_lora},
      {"qk_rope_head_dim", s.rope},
      {"v_head_dim", s.v},
      {"qk_nope_head_dim", s.nope},
      {"topk_method", "noaux_tc"},
      {"n_group", 1},
      {"topk_group", 1},
      {"moe_layer_freq", 1},
      {"first_k_dense_replace", 1},
      {"norm_topk_prob", true},
      {"scoring_func", "sigmoid"},
      {"hidden_act", "silu"},
      {"max_position_embeddings", 4096},
      {"initializer_range", 0.02},
      {"rms_norm_eps", 1e-6},
      {"use_cache", true},
      {"bos_token_id", 0},
      {"eos_token_id", 1},
      {"tie_word_embeddings", false},
      {"rope_theta", 10000},
      {"rope_scaling", nullptr},
      {"attention_bias", false},
      {"attention_dropout", 0.0},
      {"torch_dtype", "bfloat16"},
  };
}

const std::vector<std::string>& Names() {
  static const std::vector<std::string> names = {
      "deepseek-v3",         "deepseek-r1",         "deepseek-v2-lite", "r1-distill-qwen-1.5b",
      "r1-distill-llama-8b", "v3-nano",             "v3-small"};
  return names;
}

std::string JoinNames() {
  std::string out;
  for (const auto& n : Names()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

bool IsFullV3(const std::string& name) { return name == "deepseek-v3" || name == "deepseek-r1"; }

// ---- Random numbers ------------------------------------------------------------------------
// Written out rather than taken from <random>: std::normal_distribution's algorithm differs
// between standard libraries, and a checkpoint must not depend on which one built the binary.

uint64_t SplitMix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// FNV-1a: a name hash that is the same on every platform, unlike std::hash.
uint64_t HashName(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

class Xoshiro256 {
 public:
  explicit Xoshiro256(uint64_t seed) {
    for (auto& w : s_) w = SplitMix64(seed);
  }
  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

// Tensors are generated in fixed-size chunks, each with its own stream derived from (seed, name,
// chunk), so chunks can run on any thread in any order and the bytes never change.
constexpr int64_t kChunk = int64_t{1} << 16;  // even, so Box-Muller pairs never straddle chunks

void StoreValue(uint8_t* dst, int64_t i, float v, DType dtype) {
  if (dtype == DType::kBF16) {
    const uint16_t h = F32ToBf16(v);
    dst[2 * i] = static_cast<uint8_t>(h);
    dst[2 * i + 1] = static_cast<uint8_t>(h >> 8);
  } else {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    for (int b = 0; b < 4; ++b) dst[4 * i + b] = static_cast<uint8_t>(u >> (8 * b));
  }
}

void FillNormal(uint8_t* dst, int64_t n, DType dtype, uint64_t tensor_seed, float stddev) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  DefaultPool().ParallelFor(chunks, 1, [&](int64_t begin, int64_t end, int) {
    for (int64_t c = begin; c < end; ++c) {
      uint64_t mix = tensor_seed ^ (0xd1b54a32d192ed03ull * static_cast<uint64_t>(c + 1));
      Xoshiro256 rng(SplitMix64(mix));
      const int64_t lo = c * kChunk, hi = std::min(n, lo + kChunk);
      for (int64_t i = lo; i < hi; i += 2) {
        // Box-Muller; u1 in (0, 1] keeps the log finite.
        const double u1 = static_cast<double>((rng.Next() >> 11) + 1) * 0x1.0p-53;
        const double u2 = static_cast<double>(rng.Next() >> 11) * 0x1.0p-53;
        const double r = std::sqrt(-2.0 * std::log(u1)) * stddev;
        const double a = 6.283185307179586 * u2;
        StoreValue(dst, i, static_cast<float>(r * std::cos(a)), dtype);
        if (i + 1 < hi) StoreValue(dst, i + 1, static_cast<float>(r * std::sin(a)), dtype);
      }
    }
  });
}

void FillConstant(uint8_t* dst, int64_t n, DType dtype, float v) {
  for (int64_t i = 0; i < n; ++i) StoreValue(dst, i, v, dtype);
}

int64_t Numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// ---- Tokenizer -----------------------------------------------------------------------------

struct TokenizerInfo {
  std::string json_text, config_text;  // config_text empty when there is no tokenizer_config.json
  int64_t size = 0;
  std::optional<int64_t> bos, eos;
};

json ParseJsonFile(const std::string& path, const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw Error(path + ": not a valid JSON object");
  return j;
}

// bos_token/eos_token in tokenizer_config.json are either a string or an AddedToken object.
std::optional<std::string> SpecialTokenContent(const json& cfg, const char* key) {
  if (!cfg.contains(key)) return std::nullopt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

TokenizerInfo ReadTokenizer(const std::string& where) {
  fs::path path = where;
  if (fs::is_directory(path)) path /= "tokenizer.json";
  if (!fs::is_regular_file(path)) throw Error(where + ": no tokenizer.json found");
  TokenizerInfo info;
  info.json_text = ReadFileToString(path.string());
  const json tok = ParseJsonFile(path.string(), info.json_text);

  int64_t max_id = -1;
  std::map<std::string, int64_t> added;
  if (tok.contains("added_tokens") && tok["added_tokens"].is_array()) {
    for (const json& t : tok["added_tokens"]) {
      if (!t.is_object() || !t.contains("id") || !t["id"].is_number_integer()) {
        throw Error(path.string() + ": an entry of added_tokens has no integer id");
      }
      const int64_t id = t["id"].get<int64_t>();
      max_id = std::max(max_id, id);
      if (t.contains("content") && t["content"].is_string()) added[t["content"]] = id;
    }
  }
  const json* vocab = nullptr;
  if (tok.contains("model") && tok["model"].is_object() && tok["model"].contains("vocab"))
    vocab = &tok["model"]["vocab"];
  if (vocab && vocab->is_object()) {  // BPE, WordPiece, WordLevel: token -> id
    for (const auto& [token, id] : vocab->items()) {
      if (!id.is_number_integer())
        throw Error(path.string() + ": vocab id of '" + token + "' is not an integer");
      max_id = std::max(max_id, id.get<int64_t>());
    }
  } else if (vocab && vocab->is_array()) {  // Unigram: [token, score] pairs, id = position
    max_id = std::max(max_id, static_cast<int64_t>(vocab->size()) - 1);
  } else {
    throw Error(path.string() + ": no model.vocab in the tokenizer");
  }
  if (max_id < 0) throw Error(path.string() + ": the tokenizer has no tokens");
  info.size = max_id + 1;

  const fs::path config_path = path.parent_path() / "tokenizer_config.json";
  if (fs::is_regular_file(config_path)) {
    info.config_text = ReadFileToString(config_path.string());
    const json cfg = ParseJsonFile(config_path.string(), info.config_text);
    auto lookup = [&](const char* key) -> std::optional<int64_t> {
      const auto content = SpecialTokenContent(cfg, key);
      if (!content) return std::nullopt;
      if (auto it = added.find(*content); it != added.end()) return it->second;
      if (vocab && vocab->is_object() && vocab->contains(*content))
        return (*vocab)[*content].get<int64_t>();
      throw Error(config_path.string() + ": " + key + " '" + *content +
                  "' is not a token of " + path.string());
    };
    info.bos = lookup("bos_token");
    info.eos = lookup("eos_token");
  }
  return info;
}

void CheckIdsInRange(const json& config, const char* key, int64_t vocab, const std::string& why) {
  if (!config.contains(key)) return;
  std::vector<int64_t> ids;
  const json& v = config[key];
  if (v.is_number_integer()) ids.push_back(v.get<int64_t>());
  if (v.is_array())
    for (const json& e : v)
      if (e.is_number_integer()) ids.push_back(e.get<int64_t>());
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab) {
      throw Error(std::string(key) + " " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(vocab) + " tokens " + why);
    }
  }
}

}  // namespace

std::vector<std::string> PresetNames() { return Names(); }

json PresetConfig(const std::string& name) {
  if (IsFullV3(name)) return DeepseekV3Config();
  if (name == "deepseek-v2-lite") return DeepseekV2LiteConfig();
  if (name == "r1-distill-qwen-1.5b") return DistillQwen15BConfig();
  if (name == "r1-distill-llama-8b") return DistillLlama8BConfig();
  if (name == "v3-nano") {
    return SmallV3Config({.vocab = 64, .hidden = 128, .layers = 4, .dense_inter = 384,
                          .routed = 8, .moe_inter = 128, .per_tok = 2, .heads = 4, .q_lora = 64,
                          .kv_lora = 32, .nope = 32, .rope = 16, .v = 32});
  }
  if (name == "v3-small") {
    return SmallV3Config({.vocab = 8192, .hidden = 512, .layers = 8, .dense_inter = 1536,
                          .routed = 16, .moe_inter = 256, .per_tok = 2, .heads = 8,
                          .q_lora = 192, .kv_lora = 128, .nope = 64, .rope = 32, .v = 64});
  }
  throw Error("unknown preset '" + name + "' (valid presets: " + JoinNames() + ")");
}

ParamCounts CountParams(const Config& cfg) {
  ParamCounts p;
  const std::string experts = ".mlp.experts.";
  for (const TensorSpec& t : ExpectedTensors(cfg, /*include_mtp=*/false)) {
    const int64_t n = Numel(t.shape);
    p.total += n;
    if (t.name == "model.embed_tokens.weight") p.embedding = n;
    // A routed expert counts as active only for the first k indices: every expert of a layer
    // has the same size, so which k does not matter.
    const size_t at = t.name.find(experts);
    if (at != std::string::npos) {
      int64_t index = 0;
      for (size_t i = at + experts.size(); i < t.name.size() && t.name[i] != '.'; ++i)
        index = index * 10 + (t.name[i] - '0');
      if (index >= cfg.num_experts_per_tok) continue;
    }
    p.active += n;
  }
  int64_t all = 0;
  for (const TensorSpec& t : ExpectedTensors(cfg, /*include_mtp=*/true)) all += Numel(t.shape);
  p.mtp = all - p.total;
  return p;
}

void InitModel(const std::string& preset, const std::string& out_dir, const InitOptions& opts,
               std::function<void(double)> progress) {
  // Everything is checked before the folder is touched, so a refused call changes nothing.
  json config = PresetConfig(preset);
  if (IsFullV3(preset)) {
    throw Error("preset '" + preset +
                "' has 671B parameters (about 1.3 TB in BF16), too large to write with random "
                "weights; use `r1 info --preset " + preset +
                "` to inspect it, or init a smaller preset such as v3-small");
  }
  if (opts.dtype != DType::kBF16 && opts.dtype != DType::kF32) {
    throw Error("init: unsupported dtype " + std::string(DTypeName(opts.dtype)) +
                " (BF16 or F32)");
  }
  const fs::path dir = out_dir;
  if (fs::exists(dir)) {
    if (!fs::is_directory(dir)) throw Error(out_dir + ": exists and is not a folder");
    if (!opts.overwrite &&
        (fs::exists(dir / "config.json") || fs::exists(dir / "model.safetensors"))) {
      throw Error(out_dir + ": already holds a model (config.json or model.safetensors); "
                  "choose an empty folder, or pass --force to replace it");
    }
  }

  if (opts.layers < 0) throw Error("init: --layers must be positive");
  if (opts.layers > 0) config["num_hidden_layers"] = opts.layers;
  // Only the real V3 preset announces FP8, and it is refused above.
  config.erase("quantization_config");
  if (opts.dtype == DType::kF32) config["torch_dtype"] = "float32";
  // The published R1-Distill-Qwen generation_config.json names the tokenizer's real BOS.
  json gen_bos = preset == "r1-distill-qwen-1.5b" ? json(151646) : config["bos_token_id"];

  TokenizerInfo tokenizer;
  if (!opts.tokenizer_path.empty()) {
    tokenizer = ReadTokenizer(opts.tokenizer_path);
    config["vocab_size"] = tokenizer.size;
    if (tokenizer.bos) config["bos_token_id"] = *tokenizer.bos;
    if (tokenizer.eos) config["eos_token_id"] = *tokenizer.eos;
    gen_bos = config["bos_token_id"];
    const std::string why = "(the tokenizer has no tokenizer_config.json naming bos_token and "
                            "eos_token)";
    CheckIdsInRange(config, "bos_token_id", tokenizer.size, why);
    CheckIdsInRange(config, "eos_token_id", tokenizer.size, why);
  }
  const Config cfg = ParseConfig(config, "preset " + preset);
  const std::vector<TensorSpec> specs = ExpectedTensors(cfg, /*include_mtp=*/true);

  fs::create_directories(dir);
  if (opts.overwrite) {
    // A stale shard index would win over the new single file in other loaders.
    std::error_code ec;
    fs::remove(dir / "model.safetensors.index.json", ec);
  }

  SafetensorsWriter writer;
  writer.SetMetadata("format", "pt");  // transformers refuses safetensors files without it
  // The routing bias is float32 in the published V3 checkpoint; keep that convention.
  auto dtype_of = [&](const TensorSpec& t) {
    return t.name.ends_with("e_score_correction_bias") ? DType::kF32 : opts.dtype;
  };
  uint64_t total_bytes = 0;
  for (const TensorSpec& t : specs) total_bytes += Numel(t.shape) * DTypeSize(dtype_of(t));
  uint64_t done_bytes = 0;
  const uint64_t seed_mix = [&] {
    uint64_t s = opts.seed;
    return SplitMix64(s);
  }();
  for (const TensorSpec& t : specs) {
    const int64_t n = Numel(t.shape);
    const DType dtype = dtype_of(t);
    const uint64_t tensor_seed = seed_mix ^ HashName(t.name);
    const bool is_matrix = t.is_matrix;
    const float constant = t.name.ends_with("bias") ? 0.0f : 1.0f;
    writer.AddGenerated(t.name, dtype, t.shape, [=, &done_bytes, &progress](uint8_t* dst) {
      if (is_matrix) {
        FillNormal(dst, n, dtype, tensor_seed, 0.02f);
      } else {
        FillConstant(dst, n, dtype, constant);  // norms 1, biases 0
      }
      done_bytes += n * DTypeSize(dtype);
      if (progress && total_bytes > 0) {
        progress(std::min(1.0, static_cast<double>(done_bytes) /
                                   static_cast<double>(total_bytes)));
      }
    });
  }
  writer.Write((dir / "model.safetensors").string());

  if (!tokenizer.json_text.empty()) {
    WriteFileAtomic((dir / "tokenizer.json").string(), tokenizer.json_text);
    if (!tokenizer.config_text.empty())
      WriteFileAtomic((dir / "tokenizer_config.json").string(), tokenizer.config_text);
  }
  const json generation = {{"bos_token_id", gen_bos},
                           {"eos_token_id", config["eos_token_id"]},
                           {"do_sample", true},
                           {"temperature", 0.6},
                           {"top_p", 0.95}};
  WriteFileAtomic((dir / "generation_config.json").string(), generation.dump(2) + "\n");
  // Last, so a folder with a config.json always has its weights beside it: an interrupted init
  // can simply be run again without overwrite.
  WriteFileAtomic((dir / "config.json").string(), config.dump(2) + "\n");
  if (progress) progress(1.0);
}

}  // namespace r1
