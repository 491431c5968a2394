// MLA chunks of many tokens go through keys and values decompressed from the latent cache or
// through the absorbed form, whichever is less work (MlaChunkExpands); either way the logits are
// the naive form's, for chunks that take each path, alone and batched with other sequences.
// Decode over a long context attends in parts of the keys; that too gives the naive logits.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

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

// The absorbed and the naive form of one tiny model (which must outlive this), each with two
// sequences in its cache; Step runs the same chunks, (sequence 0 or 1, new tokens) with random
// ids, on both and compares the logits.
struct BothForms {
  explicit BothForms(const testing::TinyMtpModel& m) : absorbed(m.Bind()), naive(m.Bind()) {
    absorbed->set_mla_mode(MlaMode::kAbsorbed);
    naive->set_mla_mode(MlaMode::kNaive);
    for (int i = 0; i < 2; ++i) {
      seq[i] = ca.AddSequence();
      EXPECT_EQ(seq[i], cn.AddSequence());
    }
  }
  void Step(const std::vector<std::pair<int, int64_t>>& spec, const std::string& what) {
    SCOPED_TRACE(what);
    const int64_t V = absorbed->config().vocab_size;
    std::vector<std::vector<int32_t>> ids;
    for (const auto& chunk : spec) ids.push_back(Tokens(chunk.second, V, seed++));
    std::vector<SeqChunk> chunks;
    for (size_t i = 0; i < spec.size(); ++i) chunks.push_back({seq[spec[i].first], ids[i]});
    StepOutput oa, on;
    absorbed->Step(ca, chunks, {.all_logits = true}, oa);
    naive->Step(cn, chunks, {.all_logits = true}, on);
    ASSERT_EQ(oa.logits.size(), on.logits.size());
    EXPECT_LE(MaxAbsDiff(oa.logits, on.logits), 1e-4f);
  }
  std::unique_ptr<Model> absorbed, naive;
  KVCache ca = absorbed->NewCache(), cn = naive->NewCache();
  int seq[2] = {};
  uint32_t seed = 1;
};

class MlaPrefillTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MlaPrefillTest, BothLongChunkFormsGiveTheNaiveLogits) {
  const testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig(GetParam()), 5);
  // The steps below, as (new tokens, context after them): which path each long chunk takes.
  EXPECT_TRUE(MlaChunkExpands(m.cfg, 40, 40));   // a prefill from an empty cache
  EXPECT_FALSE(MlaChunkExpands(m.cfg, 9, 49));   // a few tokens after a longer context
  EXPECT_TRUE(MlaChunkExpands(m.cfg, 30, 80));
  BothForms f(m);
  // Sequence 0: 40, 9, 1, 30 tokens; sequence 1 joins the third step with 40 of its own.
  f.Step({{0, 40}}, "prefill");
  f.Step({{0, 9}}, "9 tokens");
  f.Step({{0, 1}, {1, 40}}, "1 token beside a prefill");
  f.Step({{0, 30}, {1, 9}}, "30 and 9 tokens");
}

// Decode over a context of kMlaSplitKeysMin positions or more attends in parts of the keys
// (AttendPart, merged), shorter contexts in parts of the heads: both give the naive logits,
// alone and in one step together.
TEST_P(MlaPrefillTest, DecodeOverALongContextSplitsTheKeys) {
  nlohmann::json c = testing::TinyMtpConfig(GetParam());
  c["max_position_embeddings"] = 2 * kMlaSplitKeysMin;
  const testing::TinyMtpModel m = testing::MakeTinyMtp(c, 6);
  BothForms f(m);
  f.Step({{0, kMlaSplitKeysMin - 2}}, "prefill");
  f.Step({{0, 1}}, "decode below the split");
  f.Step({{0, 1}}, "decode at the split");  // context kMlaSplitKeysMin
  f.Step({{1, 20}}, "second sequence's prefill");
  f.Step({{0, 1}, {1, 1}}, "split by keys and by heads in one step");
  f.Step({{0, 3}, {1, 2}}, "a few tokens each");
}

INSTANTIATE_TEST_SUITE_P(Shapes, MlaPrefillTest, ::testing::Values("v3", "v2"));

}  // namespace
}  // namespace r1
