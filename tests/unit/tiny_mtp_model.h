// Small DeepSeek models with an MTP module, built in memory with random float32 weights, for the
// MTP forward and speculative-decoding tests. The weights live in a ParamSet so a test can also
// train them (TrainModel) and bind a fresh Model to the result.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "r1/model/model.h"
#include "r1/model/weights.h"
#include "r1/train/params.h"

namespace r1::testing {

// "v3": q_lora, YaRN, sigmoid noaux_tc routing with groups; "v2": no q_lora, softmax greedy
// routing, plain RoPE, two shared experts. Both with one MTP module after two main layers.
inline nlohmann::json TinyMtpConfig(const std::string& kind) {
  nlohmann::json c = {{"vocab_size", 53},          {"hidden_size", 32},
                      {"intermediate_size", 40},   {"num_hidden_layers", 2},
                      {"num_attention_heads", 3},  {"num_key_value_heads", 3},
                      {"rms_norm_eps", 1e-6},      {"rope_theta", 10000.0},
                      {"max_position_embeddings", 256}, {"tie_word_embeddings", false},
                      {"bos_token_id", 0},         {"eos_token_id", 1},
                      {"hidden_act", "silu"},      {"torch_dtype", "float32"},
                      {"kv_lora_rank", 12},        {"qk_nope_head_dim", 8},
                      {"qk_rope_head_dim", 4},     {"v_head_dim", 6},
                      {"moe_intermediate_size", 16}, {"first_k_dense_replace", 1},
                      {"moe_layer_freq", 1},       {"attention_bias", false},
                      {"num_nextn_predict_layers", 1}};
  if (kind == "v3") {
    c["architectures"] = {"DeepseekV3ForCausalLM"};
    c["model_type"] = "deepseek_v3";
    c["q_lora_rank"] = 20;
    c["n_routed_experts"] = 6;
    c["n_shared_experts"] = 1;
    c["num_experts_per_tok"] = 2;
    c["n_group"] = 2;
    c["topk_group"] = 1;
    c["topk_method"] = "noaux_tc";
    c["scoring_func"] = "sigmoid";
    c["norm_topk_prob"] = true;
    c["routed_scaling_factor"] = 2.5;
    c["rope_scaling"] = {{"type", "yarn"},
                         {"factor", 4.0},
                         {"original_max_position_embeddings", 32},
                         {"beta_fast", 32},
                         {"beta_slow", 1},
                         {"mscale", 0.707},
                         {"mscale_all_dim", 0.707}};
  } else {
    c["architectures"] = {"DeepseekV2ForCausalLM"};
    c["model_type"] = "deepseek_v2";
    c["hidden_size"] = 24;
    c["num_attention_heads"] = 2;
    c["q_lora_rank"] = nullptr;
    c["n_routed_experts"] = 5;
    c["n_shared_experts"] = 2;
    c["num_experts_per_tok"] = 3;
    c["n_group"] = 1;
    c["topk_group"] = 1;
    c["topk_method"] = "greedy";
    c["scoring_func"] = "softmax";
    c["norm_topk_prob"] = false;
    c["routed_scaling_factor"] = 1.5;
    c["rope_scaling"] = nullptr;
  }
  return c;
}

// n token ids below `vocab`, the same for the same seed.
inline std::vector<int32_t> Tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng() % vocab);
  return t;
}

struct TinyMtpModel {
  Config cfg;
  ParamSet params;
  // Binds a Model to the current parameter values (norms are copied at binding, so bind again
  // after changing them).
  std::unique_ptr<Model> Bind() const { return std::make_unique<Model>(cfg, params.View()); }
};

// Matrices N(0, scale), norms 1 + N(0, 0.1), other vectors (noaux_tc routing biases) N(0, 0.1).
inline TinyMtpModel MakeTinyMtp(const nlohmann::json& config, uint32_t seed, float scale = 0.3f) {
  TinyMtpModel m;
  m.cfg = ParseConfig(config, "tiny MTP test config");
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<std::vector<float>> buffers;
  std::vector<TensorView> views;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, float s, float offset) {
    int64_t n = 1;
    for (int64_t x : shape) n *= x;
    std::vector<float> v(n);
    for (float& x : v) x = offset + s * normal(rng);
    buffers.push_back(std::move(v));
    TensorView t;
    t.name = name;
    t.shape = std::move(shape);
    t.data = reinterpret_cast<const uint8_t*>(buffers.back().data());
    t.nbytes = n * 4;
    views.push_back(std::move(t));
  };
  buffers.reserve(4096);  // views point into the buffers: no reallocation
  for (const TensorSpec& spec : ExpectedTensors(m.cfg, /*include_mtp=*/true)) {
    const bool norm = !spec.is_matrix && spec.name.find("norm") != std::string::npos;
    add(spec.name, spec.shape, spec.is_matrix ? scale : 0.1f, norm ? 1.0f : 0.0f);
  }
  m.params = ParamSet::FromStore(m.cfg, TensorStore::FromViews("tiny", std::move(views)));
  return m;
}

}  // namespace r1::testing
