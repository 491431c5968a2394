// GQA decode over a context of kMlaSplitKeysMin positions or more attends in parts of the keys
// (every KV head per part, merged after); shorter contexts per KV head. Either way a decoded
// token's logits are those the same token gets inside one prefill of the whole sequence (which
// takes the blocked path), alone and beside another sequence in one step.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "r1/infer/kv_cache.h"
#include "r1/model/model_internal.h"
#include "tiny_mtp_model.h"

namespace r1 {
namespace {

using testing::Tokens;

nlohmann::json TinyGqaConfig(const std::string& arch) {
  nlohmann::json c = {{"vocab_size", 61},          {"hidden_size", 48},
                      {"intermediate_size", 40},   {"num_hidden_layers", 2},
                      {"num_attention_heads", 6},  {"num_key_value_heads", 2},
                      {"rms_norm_eps", 1e-6},      {"rope_theta", 10000.0},
                      {"max_position_embeddings", 2 * kMlaSplitKeysMin},
                      {"tie_word_embeddings", false}, {"bos_token_id", 0},
                      {"eos_token_id", 1},         {"hidden_act", "silu"},
                      {"torch_dtype", "float32"}};
  if (arch == "qwen2") {
    c["architectures"] = {"Qwen2ForCausalLM"};
    c["model_type"] = "qwen2";
  } else {
    c["architectures"] = {"LlamaForCausalLM"};
    c["model_type"] = "llama";
  }
  return c;
}

class GqaDecodeTest : public ::testing::TestWithParam<std::string> {};

TEST_P(GqaDecodeTest, DecodeOverALongContextGivesThePrefillLogits) {
  const testing::TinyMtpModel m = testing::MakeTinyMtp(TinyGqaConfig(GetParam()), 7);
  const std::unique_ptr<Model> model = m.Bind();
  const int64_t V = model->config().vocab_size;
  const int64_t total = kMlaSplitKeysMin + 3;
  const std::vector<int32_t> a = Tokens(total, V, 11), b = Tokens(40, V, 12);

  // Reference: every position's logits from one prefill of the whole sequence.
  KVCache whole = model->NewCache();
  const int wa = whole.AddSequence();
  StepOutput ref;
  const SeqChunk all{wa, a};
  model->Step(whole, std::span<const SeqChunk>(&all, 1), {.all_logits = true}, ref);
  ASSERT_EQ(ref.logits.size(), static_cast<size_t>(total * V));

  // The same tokens fed as a prefill up to just below the split, then one at a time: contexts
  // kMlaSplitKeysMin - 1 (per head), kMlaSplitKeysMin and + 1 (by keys), the last step beside
  // sequence b's one-token decode (per head) in one step.
  KVCache cache = model->NewCache();
  const int sa = cache.AddSequence(), sb = cache.AddSequence();
  const int64_t first = kMlaSplitKeysMin - 2;
  StepOutput out;
  const SeqChunk prefill_a{sa, std::span<const int32_t>(a.data(), first)};
  const SeqChunk prefill_b{sb, std::span<const int32_t>(b.data(), b.size() - 1)};
  const SeqChunk both[] = {prefill_a, prefill_b};
  model->Step(cache, both, {}, out);
  for (int64_t t = first; t < total; ++t) {
    SCOPED_TRACE("position " + std::to_string(t));
    std::vector<SeqChunk> chunks = {{sa, std::span<const int32_t>(a.data() + t, 1)}};
    if (t == total - 1) chunks.push_back({sb, std::span<const int32_t>(b.data() + b.size() - 1, 1)});
    model->Step(cache, chunks, {}, out);
    ASSERT_GE(out.logits.size(), static_cast<size_t>(V));
    float diff = 0, scale = 0;
    for (int64_t v = 0; v < V; ++v) {
      diff = std::max(diff, std::fabs(out.logits[v] - ref.logits[t * V + v]));
      scale = std::max(scale, std::fabs(ref.logits[t * V + v]));
    }
    EXPECT_LE(diff, 1e-4f * std::max(1.0f, scale));
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, GqaDecodeTest, ::testing::Values("qwen2", "llama"));

}  // namespace
}  // namespace r1
