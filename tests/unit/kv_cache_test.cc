// KV-cache sizes (model-spec §8.2) and the per-sequence slot bookkeeping of KVCache.
#include "r1/infer/kv_cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/model/config.h"

namespace r1 {
namespace {

using nlohmann::json;

Config DeepseekV3() {
  return ParseConfig(json::parse(R"({
    "architectures": ["DeepseekV3ForCausalLM"], "vocab_size": 129280, "hidden_size": 7168,
    "intermediate_size": 18432, "moe_intermediate_size": 2048, "num_hidden_layers": 61,
    "num_attention_heads": 128, "num_key_value_heads": 128, "n_routed_experts": 256,
    "n_shared_experts": 1, "num_experts_per_tok": 8, "n_group": 8, "topk_group": 4,
    "topk_method": "noaux_tc", "scoring_func": "sigmoid", "norm_topk_prob": true,
    "routed_scaling_factor": 2.5, "first_k_dense_replace": 3, "q_lora_rank": 1536,
    "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
    "rope_theta": 10000, "num_nextn_predict_layers": 1,
    "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 1.0, "mscale_all_dim": 1.0}
  })"), "deepseek-v3");
}

Config DeepseekV2Lite() {
  return ParseConfig(json::parse(R"({
    "architectures": ["DeepseekV2ForCausalLM"], "vocab_size": 102400, "hidden_size": 2048,
    "intermediate_size": 10944, "moe_intermediate_size": 1408, "num_hidden_layers": 27,
    "num_attention_heads": 16, "num_key_value_heads": 16, "n_routed_experts": 64,
    "n_shared_experts": 2, "num_experts_per_tok": 6, "n_group": 1, "topk_group": 1,
    "topk_method": "greedy", "scoring_func": "softmax", "first_k_dense_replace": 1,
    "q_lora_rank": null, "kv_lora_rank": 512, "qk_nope_head_dim": 128, "qk_rope_head_dim": 64,
    "v_head_dim": 128, "rope_theta": 10000,
    "rope_scaling": {"type": "yarn", "factor": 40, "original_max_position_embeddings": 4096,
                     "beta_fast": 32, "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 0.707}
  })"), "deepseek-v2-lite");
}

Config DistillQwen15B() {
  return ParseConfig(json::parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "vocab_size": 151936, "hidden_size": 1536,
    "intermediate_size": 8960, "num_hidden_layers": 28, "num_attention_heads": 12,
    "num_key_value_heads": 2, "rope_theta": 10000, "rope_scaling": null,
    "max_position_embeddings": 131072, "rms_norm_eps": 1e-06, "tie_word_embeddings": false,
    "bos_token_id": 151643, "eos_token_id": 151643
  })"), "r1-distill-qwen-1.5b");
}

Config DistillLlama8B() {
  return ParseConfig(json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "rope_theta": 500000.0,
    "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                     "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
    "rms_norm_eps": 1e-05
  })"), "r1-distill-llama-8b");
}

Config Tiny() { return LoadConfig(R1_GOLDEN_DIR "/deepseek-v3-tiny/model"); }

TEST(KVBytesPerTokenTest, SpecTable) {
  EXPECT_EQ(KVBytesPerToken(DeepseekV3(), 2), 70272);
  EXPECT_EQ(KVBytesPerToken(DeepseekV2Lite(), 2), 31104);
  EXPECT_EQ(KVBytesPerToken(DistillQwen15B(), 2), 28672);
  EXPECT_EQ(KVBytesPerToken(DistillLlama8B(), 2), 131072);
  // float32: twice the BF16 figure.
  EXPECT_EQ(KVBytesPerToken(DeepseekV3(), 4), 2 * 70272);
  EXPECT_EQ(KVBytesPerToken(DistillLlama8B(), 4), 2 * 131072);
}

TEST(KVCacheTest, RowWidthAndBytes) {
  const KVCache v3(DeepseekV3());
  EXPECT_EQ(v3.row_width(), 512 + 64);
  EXPECT_EQ(v3.BytesPerToken(), 2 * 70272);
  const KVCache qwen(DistillQwen15B());
  EXPECT_EQ(qwen.row_width(), 2 * 2 * 128);
  EXPECT_EQ(qwen.BytesPerToken(), 2 * 28672);
  // MTP layers get caches but are not part of the per-token figure of the main layers.
  const KVCache with_mtp(DeepseekV3(), 1);
  EXPECT_EQ(with_mtp.BytesPerToken(), 2 * 70272);
  const KVCache tiny(Tiny());
  EXPECT_EQ(tiny.row_width(), 128 + 16);
}

TEST(KVCacheTest, AddRemoveAndSlotReuse) {
  KVCache cache(Tiny());
  EXPECT_FALSE(cache.Valid(0));
  const int a = cache.AddSequence();
  const int b = cache.AddSequence();
  const int c = cache.AddSequence();
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
  for (int s : {a, b, c}) {
    EXPECT_TRUE(cache.Valid(s));
    EXPECT_EQ(cache.Length(s), 0);
  }
  cache.Reserve(b, 5);
  cache.Commit(b, 5);
  EXPECT_EQ(cache.Length(b), 5);
  cache.RemoveSequence(b);
  EXPECT_FALSE(cache.Valid(b));
  EXPECT_TRUE(cache.Valid(a));
  EXPECT_TRUE(cache.Valid(c));
  // The freed slot is handed out again, empty.
  const int d = cache.AddSequence();
  EXPECT_EQ(d, b);
  EXPECT_TRUE(cache.Valid(d));
  EXPECT_EQ(cache.Length(d), 0);
  cache.Reserve(d, 3);
  cache.Row(d, 0, 2)[0] = 1.0f;
  cache.Commit(d, 3);
  EXPECT_EQ(cache.Length(d), 3);
  // A new slot when none is free.
  const int e = cache.AddSequence();
  EXPECT_NE(e, a);
  EXPECT_NE(e, c);
  EXPECT_NE(e, d);
}

TEST(KVCacheTest, ReserveCommitTruncateKeepData) {
  const Config cfg = Tiny();
  KVCache cache(cfg, /*extra_layers=*/1);
  const int s = cache.AddSequence();
  const int other = cache.AddSequence();
  const int layers = cfg.num_hidden_layers + 1;
  const int64_t w = cache.row_width();
  auto value = [](int layer, int64_t pos, int64_t k) {
    return static_cast<float>(layer * 100000 + pos * 1000 + k);
  };
  auto fill = [&](int64_t from, int64_t to) {
    for (int l = 0; l < layers; ++l)
      for (int64_t p = from; p < to; ++p)
        for (int64_t k = 0; k < w; ++k) cache.Row(s, l, p)[k] = value(l, p, k);
  };
  auto check = [&](int64_t to) {
    for (int l = 0; l < layers; ++l)
      for (int64_t p = 0; p < to; ++p)
        for (int64_t k = 0; k < w; ++k)
          ASSERT_EQ(cache.Row(s, l, p)[k], value(l, p, k)) << l << "," << p << "," << k;
  };

  cache.Reserve(s, 4);
  EXPECT_EQ(cache.Length(s), 0);  // Reserve alone does not change the length
  fill(0, 4);
  cache.Commit(s, 4);
  EXPECT_EQ(cache.Length(s), 4);
  // Growing (several times, past any doubling) keeps what was written.
  for (int64_t len : {5, 9, 17, 100, 1000}) {
    const int64_t old = cache.Length(s);
    cache.Reserve(s, len);
    EXPECT_EQ(cache.Length(s), old);
    fill(old, len);
    cache.Commit(s, len);
    EXPECT_EQ(cache.Length(s), len);
    check(len);
  }
  // Reserving less than is stored changes nothing.
  cache.Reserve(s, 10);
  EXPECT_EQ(cache.Length(s), 1000);
  check(1000);
  // Truncate drops the tail; a larger length is not an extension.
  cache.Truncate(s, 600);
  EXPECT_EQ(cache.Length(s), 600);
  cache.Truncate(s, 800);
  EXPECT_EQ(cache.Length(s), 600);
  check(600);
  cache.Truncate(s, 0);
  EXPECT_EQ(cache.Length(s), 0);
  // Rewriting after a truncation (rejected speculative tokens) works in place.
  cache.Reserve(s, 3);
  fill(0, 3);
  cache.Commit(s, 3);
  check(3);
  // The other sequence is independent.
  EXPECT_EQ(cache.Length(other), 0);
  cache.Reserve(other, 2);
  cache.Row(other, 0, 1)[w - 1] = -1.0f;
  cache.Commit(other, 2);
  EXPECT_EQ(cache.Length(other), 2);
  check(3);
}

TEST(KVCacheTest, BadSlotsAreErrors) {
  KVCache cache(Tiny());
  for (int bad : {-1, 0, 1, 1000}) {
    EXPECT_FALSE(cache.Valid(bad)) << bad;
    EXPECT_THROW(cache.RemoveSequence(bad), Error) << bad;
    EXPECT_THROW(cache.Length(bad), Error) << bad;
    EXPECT_THROW(cache.Truncate(bad, 0), Error) << bad;
    EXPECT_THROW(cache.Reserve(bad, 4), Error) << bad;
  }
  const int s = cache.AddSequence();
  cache.RemoveSequence(s);
  EXPECT_FALSE(cache.Valid(s));
  EXPECT_THROW(cache.RemoveSequence(s), Error);  // twice
  EXPECT_THROW(cache.Length(s), Error);
  EXPECT_THROW(cache.Truncate(s, 0), Error);
  EXPECT_THROW(cache.Reserve(s, 4), Error);
  try {
    cache.Length(s);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(s)), std::string::npos) << e.what();
  }
}

TEST(KVCacheTest, CommitOnRemovedSlotIsAnError) {
  // Every other slot-taking call rejects a slot with no sequence; Commit must not silently give
  // a dead slot a length. (Only an in-range removed slot is tried here: an out-of-range one would
  // index past the slot vector if unchecked.)
  KVCache cache(Tiny());
  const int s = cache.AddSequence();
  cache.AddSequence();
  cache.RemoveSequence(s);
  EXPECT_THROW(cache.Commit(s, 5), Error);
  EXPECT_FALSE(cache.Valid(s));
}

}  // namespace
}  // namespace r1
