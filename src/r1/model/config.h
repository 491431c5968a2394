// One configuration type for every supported architecture, read from a Hugging Face
// config.json. Field meanings follow shared/docs/model-spec.md §1.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace r1 {

enum class Arch { kDeepseekV3, kDeepseekV2, kQwen2, kLlama };

enum class RopeScaling { kNone, kYarn, kLlama3 };
enum class ScoringFunc { kSoftmax, kSigmoid };

struct Config {
  Arch arch = Arch::kLlama;
  std::string architecture;  // as written in config.json
  std::string model_type;

  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int num_hidden_layers = 0;
  int num_attention_heads = 0;
  int num_key_value_heads = 0;
  int head_dim = 0;  // dense attention only
  float rms_norm_eps = 1e-6f;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // Llama: q/k/v/o biases; Qwen2 always has q/k/v biases
  int64_t max_position_embeddings = 0;
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;
  std::string torch_dtype;

  RopeScaling rope_scaling = RopeScaling::kNone;
  double rope_factor = 1.0;
  double rope_original_max_position = 0;
  double yarn_beta_fast = 32.0, yarn_beta_slow = 1.0;
  double yarn_mscale = 1.0, yarn_mscale_all_dim = 0.0;
  double llama3_low_freq_factor = 1.0, llama3_high_freq_factor = 4.0;

  // MLA and DeepSeekMoE (DeepSeek families only).
  int q_lora_rank = 0;  // 0: plain q_proj
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  int n_routed_experts = 0;
  int n_shared_experts = 0;
  int num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int n_group = 1;
  int topk_group = 1;
  std::string topk_method = "greedy";
  ScoringFunc scoring_func = ScoringFunc::kSoftmax;
  bool norm_topk_prob = false;
  double routed_scaling_factor = 1.0;
  int first_k_dense_replace = 0;
  int moe_layer_freq = 1;
  int num_nextn_predict_layers = 0;

  // FP8 block quantization as declared by quantization_config (the loader trusts the tensor
  // dtypes, not this).
  bool fp8_declared = false;
  std::vector<int> fp8_block = {128, 128};
  // "q8_0" or "q4_0" for folders written by `r1 quantize` (quant_method "r1cpp"), else empty.
  std::string quant_format;

  nlohmann::json raw;  // the file as read, so writers can keep unknown fields

  bool is_deepseek() const { return arch == Arch::kDeepseekV3 || arch == Arch::kDeepseekV2; }
  bool is_moe_layer(int layer) const;
  int qk_head_dim() const { return qk_nope_head_dim + qk_rope_head_dim; }
  // Softmax scale of attention, including the YaRN mscale for DeepSeek (model-spec §3.6.4).
  double AttentionScale() const;
};

// Parses a config.json object; `source` names the file in errors. Throws r1::Error on an unknown
// architecture, a missing required field or an inconsistent value.
Config ParseConfig(const nlohmann::json& j, const std::string& source);
Config LoadConfig(const std::string& model_dir);

const char* ArchName(Arch a);
// The Hugging Face model_type of an architecture ("deepseek_v3", "qwen2", ...), which picks the
// built-in chat template when a tokenizer has none.
const char* ModelTypeName(Arch a);

}  // namespace r1
