// The inference forward of the MTP module (Model::MtpStep) against the trainer's MTP pass, which
// matches PyTorch; its cache: a run of positions equals one position at a time, in both MLA
// forms; and Step's all_final_hidden option.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "r1/core/error.h"
#include "r1/model/model.h"
#include "r1/train/train_model.h"
#include "tiny_mtp_model.h"

namespace r1 {
namespace {

using testing::Tokens;

double MaxAbsDiff(const float* a, const float* b, size_t n) {
  double m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

// Final hidden states of every position of `tokens` (one prefill), and the cache it filled.
std::vector<float> Prefill(const Model& model, KVCache& cache, int slot,
                           const std::vector<int32_t>& tokens) {
  SeqChunk c{slot, tokens};
  StepOutput out;
  model.Step(cache, {&c, 1}, {.all_final_hidden = true}, out);
  return out.final_hidden;
}

class MtpStepTest : public ::testing::TestWithParam<std::string> {};

TEST_P(MtpStepTest, LossEqualsTheTrainersMtpLoss) {
  testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig(GetParam()), 3);
  ASSERT_EQ(m.params.mtp_modules(), 1);
  const int64_t T = 11, V = m.cfg.vocab_size;
  const std::vector<int32_t> tokens = Tokens(T + 1, V, 5);
  TrainModel trainer(m.cfg, m.params);
  LossOptions lo;
  lo.mtp_weight = 1.0;
  const StepStats st = trainer.Step({1, T, tokens.data(), nullptr}, lo, /*backward=*/false);

  for (MlaMode mode : {MlaMode::kAbsorbed, MlaMode::kNaive}) {
    auto model = m.Bind();
    model->set_mla_mode(mode);
    ASSERT_EQ(model->num_mtp_modules(), 1);
    KVCache cache = model->NewCache();
    const int slot = cache.AddSequence();
    const std::vector<int32_t> inputs(tokens.begin(), tokens.begin() + T);
    const std::vector<float> h = Prefill(*model, cache, slot, inputs);
    // Entry i pairs h_i with t_{i+1} and predicts t_{i+2}; the trainer counts i + 2 <= T.
    const std::vector<int32_t> next(tokens.begin() + 1, tokens.begin() + T + 1);
    StepOutput out;
    model->MtpStep(cache, slot, 0, 0, h, next, {.all_logits = true}, out);
    ASSERT_EQ(out.rows, T);
    double ce = 0;
    for (int64_t i = 0; i + 2 <= T; ++i) {
      const float* z = out.logits.data() + i * V;
      double mx = z[0], sum = 0;
      for (int64_t v = 1; v < V; ++v) mx = std::max(mx, static_cast<double>(z[v]));
      for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - mx);
      ce += mx + std::log(sum) - z[tokens[i + 2]];
    }
    ce /= static_cast<double>(T - 1);
    EXPECT_NEAR(ce, st.mtp_loss, 2e-5 * st.mtp_loss) << (mode == MlaMode::kNaive ? "naive" : "absorbed");
    EXPECT_EQ(cache.Length(slot), T);  // the module's rows do not move the main length
  }
}

TEST_P(MtpStepTest, OnePositionAtATimeEqualsOneRun) {
  testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig(GetParam()), 4);
  const int64_t T = 9, V = m.cfg.vocab_size, d = m.cfg.hidden_size;
  const std::vector<int32_t> tokens = Tokens(T + 1, V, 6);
  const std::vector<int32_t> inputs(tokens.begin(), tokens.begin() + T);
  const std::vector<int32_t> next(tokens.begin() + 1, tokens.end());
  for (MlaMode mode : {MlaMode::kAbsorbed, MlaMode::kNaive}) {
    auto model = m.Bind();
    model->set_mla_mode(mode);
    KVCache cache = model->NewCache();
    const int slot = cache.AddSequence();
    const std::vector<float> h = Prefill(*model, cache, slot, inputs);
    StepOutput all;
    model->MtpStep(cache, slot, 0, 0, h, next, {.all_logits = true}, all);
    ASSERT_EQ(all.final_hidden.size(), static_cast<size_t>(T * d));

    // A second sequence fills the module's layer in runs of 1, 3, 1, 4 positions.
    const int other = cache.AddSequence();
    const std::vector<float> h2 = Prefill(*model, cache, other, inputs);
    int64_t done = 0;
    for (int64_t len : {1, 3, 1, 4}) {
      StepOutput part;
      model->MtpStep(cache, other, 0, done,
                     std::span<const float>(h2.data() + done * d, len * d),
                     std::span<const int32_t>(next.data() + done, len), {}, part);
      ASSERT_EQ(part.rows, 1);
      const int64_t last = done + len - 1;
      // Only the summation order differs (tile widths depend on the row count).
      EXPECT_LE(MaxAbsDiff(part.logits.data(), all.logits.data() + last * V, V), 1e-4)
          << "position " << last;
      EXPECT_LE(MaxAbsDiff(part.final_hidden.data(), all.final_hidden.data() + last * d, d), 1e-4);
      done += len;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, MtpStepTest, ::testing::Values("v3", "v2"));

TEST(MtpStep, BadArgumentsAreErrors) {
  testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig("v3"), 1);
  auto model = m.Bind();
  KVCache cache = model->NewCache();
  const int slot = cache.AddSequence();
  const int64_t d = m.cfg.hidden_size;
  std::vector<float> h(2 * d, 0.5f);
  std::vector<int32_t> next = {3, 4};
  StepOutput out;
  EXPECT_THROW(model->MtpStep(cache, slot, 1, 0, h, next, {}, out), Error);   // no module 1
  EXPECT_THROW(model->MtpStep(cache, slot + 1, 0, 0, h, next, {}, out), Error);
  EXPECT_THROW(model->MtpStep(cache, slot, 0, -1, h, next, {}, out), Error);
  EXPECT_THROW(model->MtpStep(cache, slot, 0, 0, std::span<const float>(h.data(), d), next, {},
                              out),
               Error);
  std::vector<int32_t> bad = {3, static_cast<int32_t>(m.cfg.vocab_size)};
  EXPECT_THROW(model->MtpStep(cache, slot, 0, 0, h, bad, {}, out), Error);
  EXPECT_THROW(model->MtpStep(cache, slot, 0, 0, {}, {}, {}, out), Error);
  model->MtpStep(cache, slot, 0, 0, h, next, {}, out);
  EXPECT_EQ(out.rows, 1);
  EXPECT_EQ(cache.Length(slot), 0);
}

TEST(StepAllFinalHidden, SameLogitsAndEveryRowsHiddenState) {
  testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig("v3"), 2);
  auto model = m.Bind();
  const int64_t V = m.cfg.vocab_size, d = m.cfg.hidden_size;
  const std::vector<int32_t> a = Tokens(7, V, 1), b = Tokens(4, V, 2);
  auto run = [&](const StepOptions& opts) {
    KVCache cache = model->NewCache();
    std::vector<SeqChunk> chunks = {{cache.AddSequence(), a}, {cache.AddSequence(), b}};
    StepOutput out;
    model->Step(cache, chunks, opts, out);
    return out;
  };
  const StepOutput plain = run({});
  const StepOutput every = run({.all_logits = true});
  const StepOutput hidden = run({.all_final_hidden = true});
  EXPECT_EQ(hidden.rows, 2);
  EXPECT_TRUE(hidden.logits == plain.logits);  // bit for bit: the same rows through the head
  EXPECT_TRUE(hidden.final_hidden == every.final_hidden);
  EXPECT_EQ(hidden.final_hidden.size(), static_cast<size_t>(11 * d));
}

}  // namespace
}  // namespace r1
