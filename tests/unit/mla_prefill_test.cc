// MLA chunks of many tokens go through keys and values decompressed from the latent cache or
// through the absorbed form, whichever is less work (MlaChunkExpands); either way the logits are
// the naive form's, for chunks that take each path, alone and batched with other sequences.
// Decode over a long context attends in parts of the keys; that too gives the naive logits.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "r1/infer/kv_cache.h"
#include "r1/model/model_internal.h"
#include "tiny_mtp_model.h"

namespace r1 {
namespace {

using testing::Tokens;

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

class MlaPrefillTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MlaPrefillTest, BothLongChunkFormsGiveTheNaiveLogits) {
  const testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig(GetParam()), 5);
  // The steps below, as (new tokens, context after them): which path each long chunk takes.
  EXPECT_TRUE(MlaChunkExpands(m.cfg, 40, 40));   // a prefill from an empty cache
  EXPECT_FALSE(MlaChunkExpands(m.cfg, 9, 49));   // a few tokens after a longer context
  EXPECT_TRUE(MlaChunkExpands(m.cfg, 30, 80));
  auto absorbed = m.Bind(), naive = m.Bind();
  absorbed->set_mla_mode(MlaMode::kAbsorbed);
  naive->set_mla_mode(MlaMode::kNaive);
  KVCache ca = absorbed->NewCache(), cn = naive->NewCache();
  const int a0 = ca.AddSequence(), a1 = ca.AddSequence();
  const int n0 = cn.AddSequence(), n1 = cn.AddSequence();
  ASSERT_EQ(a0, n0);
  ASSERT_EQ(a1, n1);
  const int64_t V = m.cfg.vocab_size;
  // Sequence 0: 40, 9, 1, 30 tokens; sequence 1 joins the third step with 40 of its own.
  const std::vector<std::vector<std::pair<int, int64_t>>> steps = {
      {{a0, 40}}, {{a0, 9}}, {{a0, 1}, {a1, 40}}, {{a0, 30}, {a1, 9}}};
  uint32_t seed = 1;
  for (const auto& step : steps) {
    std::vector<std::vector<int32_t>> ids;
    for (const auto& chunk : step) ids.push_back(Tokens(chunk.second, V, seed++));
    std::vector<SeqChunk> chunks;
    for (size_t i = 0; i < step.size(); ++i) chunks.push_back({step[i].first, ids[i]});
    StepOutput oa, on;
    absorbed->Step(ca, chunks, {.all_logits = true}, oa);
    naive->Step(cn, chunks, {.all_logits = true}, on);
    ASSERT_EQ(oa.logits.size(), on.logits.size());
    EXPECT_LE(MaxAbsDiff(oa.logits, on.logits), 1e-4f)
        << "step " << seed << " (" << step.size() << " chunks)";
  }
}

// Decode over a context of kMlaSplitKeysMin positions or more attends in parts of the keys
// (AttendPart, merged), shorter contexts in parts of the heads: both give the naive logits,
// alone and in one step together.
TEST_P(MlaPrefillTest, DecodeOverALongContextSplitsTheKeys) {
  nlohmann::json c = testing::TinyMtpConfig(GetParam());
  c["max_position_embeddings"] = 2 * kMlaSplitKeysMin;
  const testing::TinyMtpModel m = testing::MakeTinyMtp(c, 6);
  auto absorbed = m.Bind(), naive = m.Bind();
  absorbed->set_mla_mode(MlaMode::kAbsorbed);
  naive->set_mla_mode(MlaMode::kNaive);
  KVCache ca = absorbed->NewCache(), cn = naive->NewCache();
  const int64_t V = m.cfg.vocab_size;
  const int a0 = ca.AddSequence(), a1 = ca.AddSequence();
  ASSERT_EQ(a0, cn.AddSequence());
  ASSERT_EQ(a1, cn.AddSequence());
  uint32_t seed = 100;
  auto step = [&](const std::vector<std::pair<int, int64_t>>& spec, const char* what) {
    SCOPED_TRACE(what);
    std::vector<std::vector<int32_t>> ids;
    for (const auto& chunk : spec) ids.push_back(Tokens(chunk.second, V, seed++));
    std::vector<SeqChunk> chunks;
    for (size_t i = 0; i < spec.size(); ++i) chunks.push_back({spec[i].first, ids[i]});
    StepOutput oa, on;
    absorbed->Step(ca, chunks, {.all_logits = true}, oa);
    naive->Step(cn, chunks, {.all_logits = true}, on);
    ASSERT_EQ(oa.logits.size(), on.logits.size());
    EXPECT_LE(MaxAbsDiff(oa.logits, on.logits), 1e-4f);
  };
  step({{a0, kMlaSplitKeysMin - 2}}, "prefill");
  step({{a0, 1}}, "decode below the split");
  step({{a0, 1}}, "decode at the split");  // context kMlaSplitKeysMin
  step({{a1, 20}}, "second sequence's prefill");
  step({{a0, 1}, {a1, 1}}, "split by keys and by heads in one step");
  step({{a0, 3}, {a1, 2}}, "a few tokens each");
}

INSTANTIATE_TEST_SUITE_P(Shapes, MlaPrefillTest, ::testing::Values("v3", "v2"));

}  // namespace
}  // namespace r1
