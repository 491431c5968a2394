#include "r1/model/config.h"

#include <cmath>
#include <filesystem>

#include "r1/core/error.h"
#include "r1/io/safetensors.h"
#include "r1/kernels/matrix.h"

namespace r1 {
namespace {

class FieldReader {
 public:
  FieldReader(const nlohmann::json& j, std::string source) : j_(j), source_(std::move(source)) {}

  bool Has(const char* key) const { return j_.contains(key) && !j_.at(key).is_null(); }

  [[noreturn]] void Fail(const std::string& what) const { throw Error(source_ + ": " + what); }

  int64_t Int(const char* key) const {
    if (!Has(key)) Fail(std::string("missing required field '") + key + "'");
    return IntAt(j_.at(key), key);
  }
  int64_t Int(const char* key, int64_t fallback) const {
    return Has(key) ? IntAt(j_.at(key), key) : fallback;
  }
  int64_t PositiveInt(const char* key) const {
    const int64_t v = Int(key);
    if (v <= 0) Fail(std::string("field '") + key + "' must be positive, got " + std::to_string(v));
    return v;
  }
  double Num(const char* key, double fallback) const {
    if (!Has(key)) return fallback;
    if (!j_.at(key).is_number()) Fail(std::string("field '") + key + "' must be a number");
    return j_.at(key).get<double>();
  }
  bool Bool(const char* key, bool fallback) const {
    if (!Has(key)) return fallback;
    if (!j_.at(key).is_boolean()) Fail(std::string("field '") + key + "' must be true or false");
    return j_.at(key).get<bool>();
  }
  std::string Str(const char* key, const std::string& fallback) const {
    if (!Has(key)) return fallback;
    if (!j_.at(key).is_string()) Fail(std::string("field '") + key + "' must be a string");
    return j_.at(key).get<std::string>();
  }
  std::vector<int64_t> IntList(const char* key) const {
    std::vector<int64_t> out;
    if (!Has(key)) return out;
    const auto& v = j_.at(key);
    if (v.is_array()) {
      for (const auto& e : v) out.push_back(IntAt(e, key));
    } else {
      out.push_back(IntAt(v, key));
    }
    return out;
  }

 private:
  int64_t IntAt(const nlohmann::json& v, const char* key) const {
    if (v.is_number_integer() || v.is_number_unsigned()) return v.get<int64_t>();
    if (v.is_number_float()) {
      const double d = v.get<double>();
      if (d == std::floor(d) && std::fabs(d) < 9e15) return static_cast<int64_t>(d);
    }
    Fail(std::string("field '") + key + "' must be an integer");
  }
  const nlohmann::json& j_;
  std::string source_;  // by value: callers pass temporaries such as "config.json (rope_scaling)"
};

void ParseRopeScaling(const nlohmann::json& root, const std::string& source, Config& c) {
  // Newer transformers name it rope_parameters and may move rope_theta inside.
  const nlohmann::json* rs = nullptr;
  if (root.contains("rope_scaling") && root["rope_scaling"].is_object()) {
    rs = &root["rope_scaling"];
  } else if (root.contains("rope_parameters") && root["rope_parameters"].is_object()) {
    rs = &root["rope_parameters"];
  }
  if (!rs) return;
  FieldReader r(*rs, source + " (rope_scaling)");
  if (rs->contains("rope_theta")) c.rope_theta = r.Num("rope_theta", c.rope_theta);
  std::string type = r.Str("type", r.Str("rope_type", "default"));
  if (type == "default" || type == "none") return;
  if (type == "yarn") {
    c.rope_scaling = RopeScaling::kYarn;
    c.rope_factor = r.Num("factor", 0);
    if (!(c.rope_factor > 0)) r.Fail("yarn needs a positive 'factor'");
    c.rope_original_max_position = r.Num("original_max_position_embeddings", 0);
    if (!(c.rope_original_max_position > 0))
      r.Fail("yarn needs a positive 'original_max_position_embeddings'");
    c.yarn_beta_fast = r.Num("beta_fast", 32);
    c.yarn_beta_slow = r.Num("beta_slow", 1);
    c.yarn_mscale = r.Num("mscale", 1);
    c.yarn_mscale_all_dim = r.Num("mscale_all_dim", 0);
  } else if (type == "llama3") {
    c.rope_scaling = RopeScaling::kLlama3;
    c.rope_factor = r.Num("factor", 0);
    if (!(c.rope_factor > 0)) r.Fail("llama3 needs a positive 'factor'");
    c.llama3_low_freq_factor = r.Num("low_freq_factor", 1);
    c.llama3_high_freq_factor = r.Num("high_freq_factor", 4);
    if (!(c.llama3_high_freq_factor > c.llama3_low_freq_factor))
      r.Fail("llama3 needs high_freq_factor > low_freq_factor");
    c.rope_original_max_position = r.Num("original_max_position_embeddings", 8192);
  } else {
    r.Fail("unsupported rope scaling type '" + type + "' (supported: yarn, llama3)");
  }
}

}  // namespace

const char* ArchName(Arch a) {
  switch (a) {
    case Arch::kDeepseekV3: return "DeepseekV3ForCausalLM";
    case Arch::kDeepseekV2: return "DeepseekV2ForCausalLM";
    case Arch::kQwen2: return "Qwen2ForCausalLM";
    case Arch::kLlama: return "LlamaForCausalLM";
  }
  return "?";
}

const char* ModelTypeName(Arch a) {
  switch (a) {
    case Arch::kDeepseekV3: return "deepseek_v3";
    case Arch::kDeepseekV2: return "deepseek_v2";
    case Arch::kQwen2: return "qwen2";
    case Arch::kLlama: return "llama";
  }
  return "";
}

bool Config::is_moe_layer(int layer) const {
  if (!is_deepseek() || n_routed_experts <= 0) return false;
  if (layer < first_k_dense_replace) return false;
  return moe_layer_freq <= 1 || layer % moe_layer_freq == 0;
}

double Config::AttentionScale() const {
  if (!is_deepseek()) return 1.0 / std::sqrt(static_cast<double>(head_dim));
  double scale = 1.0 / std::sqrt(static_cast<double>(qk_head_dim()));
  if (rope_scaling == RopeScaling::kYarn && rope_factor > 1.0) {
    const double mu = yarn_mscale_all_dim > 0 ? yarn_mscale_all_dim : yarn_mscale;
    const double m = 0.1 * mu * std::log(rope_factor) + 1.0;
    scale *= m * m;
  }
  return scale;
}

Config ParseConfig(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": config is not a JSON object");
  FieldReader r(j, source);
  Config c;
  c.raw = j;
  if (!j.contains("architectures") || !j["architectures"].is_array() ||
      j["architectures"].empty() || !j["architectures"][0].is_string()) {
    r.Fail("missing required field 'architectures' (a list naming the model class)");
  }
  c.architecture = j["architectures"][0].get<std::string>();
  if (c.architecture == "DeepseekV3ForCausalLM") {
    c.arch = Arch::kDeepseekV3;
  } else if (c.architecture == "DeepseekV2ForCausalLM") {
    c.arch = Arch::kDeepseekV2;
  } else if (c.architecture == "Qwen2ForCausalLM") {
    c.arch = Arch::kQwen2;
  } else if (c.architecture == "LlamaForCausalLM") {
    c.arch = Arch::kLlama;
  } else {
    r.Fail("unknown architecture '" + c.architecture +
           "' (supported: DeepseekV3ForCausalLM, DeepseekV2ForCausalLM, Qwen2ForCausalLM, "
           "LlamaForCausalLM)");
  }
  c.model_type = r.Str("model_type", "");
  c.vocab_size = r.PositiveInt("vocab_size");
  c.hidden_size = r.PositiveInt("hidden_size");
  c.num_hidden_layers = static_cast<int>(r.PositiveInt("num_hidden_layers"));
  c.num_attention_heads = static_cast<int>(r.PositiveInt("num_attention_heads"));
  c.num_key_value_heads =
      static_cast<int>(r.Int("num_key_value_heads", c.num_attention_heads));
  c.rms_norm_eps = static_cast<float>(r.Num("rms_norm_eps", 1e-6));
  c.rope_theta = r.Num("rope_theta", 10000.0);
  c.tie_word_embeddings = r.Bool("tie_word_embeddings", false);
  c.attention_bias = r.Bool("attention_bias", false);
  c.max_position_embeddings = r.Int("max_position_embeddings", 4096);
  c.bos_token_ids = r.IntList("bos_token_id");
  c.eos_token_ids = r.IntList("eos_token_id");
  c.torch_dtype = r.Str("torch_dtype", r.Str("dtype", "bfloat16"));
  const std::string act = r.Str("hidden_act", "silu");
  if (act != "silu") r.Fail("unsupported hidden_act '" + act + "' (only silu)");
  ParseRopeScaling(j, source, c);

  if (c.is_deepseek()) {
    c.q_lora_rank = static_cast<int>(r.Int("q_lora_rank", 0));
    c.kv_lora_rank = static_cast<int>(r.PositiveInt("kv_lora_rank"));
    c.qk_nope_head_dim = static_cast<int>(r.PositiveInt("qk_nope_head_dim"));
    c.qk_rope_head_dim = static_cast<int>(r.PositiveInt("qk_rope_head_dim"));
    c.v_head_dim = static_cast<int>(r.PositiveInt("v_head_dim"));
    if (c.qk_rope_head_dim % 2) r.Fail("qk_rope_head_dim must be even");
    c.n_routed_experts = static_cast<int>(r.Int("n_routed_experts", 0));
    c.first_k_dense_replace = static_cast<int>(r.Int("first_k_dense_replace", 0));
    c.moe_layer_freq = static_cast<int>(r.Int("moe_layer_freq", 1));
    c.num_nextn_predict_layers = static_cast<int>(r.Int("num_nextn_predict_layers", 0));
    if (c.n_routed_experts > 0) {
      c.n_shared_experts = static_cast<int>(r.Int("n_shared_experts", 0));
      c.num_experts_per_tok = static_cast<int>(r.PositiveInt("num_experts_per_tok"));
      c.moe_intermediate_size = r.PositiveInt("moe_intermediate_size");
      c.n_group = static_cast<int>(r.Int("n_group", 1));
      c.topk_group = static_cast<int>(r.Int("topk_group", 1));
      c.topk_method = r.Str("topk_method", "greedy");
      const std::string scoring = r.Str("scoring_func", "softmax");
      if (scoring == "softmax") {
        c.scoring_func = ScoringFunc::kSoftmax;
      } else if (scoring == "sigmoid") {
        c.scoring_func = ScoringFunc::kSigmoid;
      } else {
        r.Fail("unsupported scoring_func '" + scoring + "' (softmax or sigmoid)");
      }
      c.norm_topk_prob = r.Bool("norm_topk_prob", false);
      c.routed_scaling_factor = r.Num("routed_scaling_factor", 1.0);
      if (c.num_experts_per_tok > c.n_routed_experts)
        r.Fail("num_experts_per_tok exceeds n_routed_experts");
      if (c.n_group < 1 || c.n_routed_experts % c.n_group != 0)
        r.Fail("n_routed_experts must be a multiple of n_group");
      if (c.topk_group < 1 || c.topk_group > c.n_group)
        r.Fail("topk_group must be between 1 and n_group");
      if (c.topk_method != "greedy" && c.topk_method != "group_limited_greedy" &&
          c.topk_method != "noaux_tc") {
        r.Fail("unsupported topk_method '" + c.topk_method +
               "' (greedy, group_limited_greedy, noaux_tc)");
      }
    }
    if (c.first_k_dense_replace > 0 || c.n_routed_experts == 0)
      c.intermediate_size = r.PositiveInt("intermediate_size");
    else
      c.intermediate_size = r.Int("intermediate_size", 0);
  } else {
    c.intermediate_size = r.PositiveInt("intermediate_size");
    if (c.hidden_size % c.num_attention_heads && !r.Has("head_dim"))
      r.Fail("hidden_size is not a multiple of num_attention_heads and no head_dim is given");
    c.head_dim = static_cast<int>(r.Int("head_dim", c.hidden_size / c.num_attention_heads));
    if (c.head_dim <= 0 || c.head_dim % 2) r.Fail("head_dim must be positive and even");
    if (c.num_key_value_heads <= 0 || c.num_attention_heads % c.num_key_value_heads)
      r.Fail("num_attention_heads must be a multiple of num_key_value_heads");
  }

  if (j.contains("quantization_config") && j["quantization_config"].is_object()) {
    FieldReader q(j["quantization_config"], source + " (quantization_config)");
    if (q.Str("quant_method", "") == "fp8") {
      c.fp8_declared = true;
      auto block = q.IntList("weight_block_size");
      if (!block.empty()) {
        if (block.size() != 2 || block[0] <= 0 || block[1] <= 0)
          q.Fail("weight_block_size must be two positive integers");
        c.fp8_block = {static_cast<int>(block[0]), static_cast<int>(block[1])};
      }
    } else if (q.Str("quant_method", "") == "r1cpp") {
      // Written by `r1 quantize` (docs/quantization.md); the tensors' dtypes drive the kernels,
      // this entry only has to agree with the block size they were made with.
      c.quant_format = q.Str("format", "");
      if (c.quant_format != "q8_0" && c.quant_format != "q4_0")
        q.Fail("format must be \"q8_0\" or \"q4_0\", got \"" + c.quant_format + "\"");
      if (q.Int("block_size", kQuantBlock) != kQuantBlock)
        q.Fail("block_size must be " + std::to_string(kQuantBlock));
      // Folders from before the tiles have no "layout"; their tensors are refused on loading
      // with a hint to quantize again. "tiles_4x16" (blocks in order inside a tile, before
      // 2026-12-07) has the same tensor sizes, so it is refused here.
      const std::string layout = q.Str("layout", "tiles_4x16_words");
      if (layout == "tiles_4x16")
        q.Fail("this folder was quantized by an earlier r1cpp (layout \"tiles_4x16\"); run "
               "`r1 quantize` on the original checkpoint again");
      if (layout != "tiles_4x16_words")
        q.Fail("layout must be \"tiles_4x16_words\", got \"" + layout + "\"");
    }
  }
  return c;
}

Config LoadConfig(const std::string& model_dir) {
  const std::string path = (std::filesystem::path(model_dir) / "config.json").string();
  if (!std::filesystem::is_directory(model_dir))
    throw Error(model_dir + ": not a model folder (no such directory)");
  if (!std::filesystem::exists(path)) throw Error(model_dir + ": no config.json in the model folder");
  const std::string text = ReadFileToString(path);
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) throw Error(path + ": not valid JSON");
  return ParseConfig(j, path);
}

}  // namespace r1
