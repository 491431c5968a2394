// Speculative decoding with the MTP draft gives the tokens of plain greedy decoding on models of
// several shapes (random, where drafts are mostly wrong, and briefly trained, where they are
// mostly right), with the same stop, length and cancel handling, and consistent counts.
#include "r1/infer/speculative.h"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>

#include "r1/core/error.h"
#include "r1/model/presets.h"
#include "r1/train/optimizer.h"
#include "r1/train/train_model.h"
#include "tiny_mtp_model.h"

namespace r1 {
namespace {

using testing::Tokens;

// Runs both decoders and checks they agree; returns the speculative stats.
SpeculativeStats ExpectSameAsGenerate(const Model& model, const std::vector<int32_t>& prompt,
                                      const GenerateOptions& opts) {
  const GenerationResult want = Generate(model, {prompt}, opts)[0];
  SpeculativeStats st;
  std::vector<int32_t> streamed;
  const GenerationResult got =
      GenerateSpeculative(model, prompt, opts, [&](int32_t t) { streamed.push_back(t); }, &st);
  EXPECT_EQ(got.tokens, want.tokens);
  EXPECT_EQ(got.finish_reason, want.finish_reason);
  EXPECT_EQ(streamed, got.tokens);
  // Counts: every main step yields one token, plus one per accepted draft; the prefill yields
  // the first; only the last step can end between an accepted draft and its bonus token.
  const int64_t n = static_cast<int64_t>(got.tokens.size());
  EXPECT_EQ(st.generation.generated_tokens, n);
  EXPECT_EQ(st.generation.prompt_tokens, opts.max_new_tokens > 0 ? (int64_t)prompt.size() : 0);
  EXPECT_LE(st.accepted_tokens, st.draft_tokens);
  EXPECT_LE(st.draft_tokens, st.main_steps);
  EXPECT_LE(st.main_steps, st.draft_tokens + 1);  // only a last single token goes undrafted
  if (n > 0) {
    EXPECT_LE(n, 1 + st.main_steps + st.accepted_tokens);
    EXPECT_GE(n, st.main_steps + st.accepted_tokens);
  }
  EXPECT_GE(st.acceptance_rate(), 0.0);
  EXPECT_LE(st.acceptance_rate(), 1.0);
  EXPECT_GE(st.wall_seconds, 0.0);
  return st;
}

GenerateOptions Greedy(int n) {
  GenerateOptions o;
  o.max_new_tokens = n;
  o.ignore_eos = true;
  return o;
}

class SpeculativeTiny : public ::testing::TestWithParam<std::string> {};

TEST_P(SpeculativeTiny, SameTokensAsGreedyInBothMlaForms) {
  testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig(GetParam()), 11);
  for (MlaMode mode : {MlaMode::kAbsorbed, MlaMode::kNaive}) {
    auto model = m.Bind();
    model->set_mla_mode(mode);
    for (uint32_t seed : {1u, 2u, 3u}) {
      SCOPED_TRACE("prompt seed " + std::to_string(seed));
      ExpectSameAsGenerate(*model, Tokens(2 + 3 * seed, m.cfg.vocab_size, seed), Greedy(40));
    }
  }
}

TEST_P(SpeculativeTiny, StopIdsLengthsAndRepetitionPenaltyAsGenerate) {
  testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig(GetParam()), 12);
  auto model = m.Bind();
  const std::vector<int32_t> prompt = Tokens(6, m.cfg.vocab_size, 7);
  for (int n : {0, 1, 2, 3, 4, 7}) {
    SCOPED_TRACE("max_new_tokens " + std::to_string(n));
    ExpectSameAsGenerate(*model, prompt, Greedy(n));
  }
  // A stop id taken from the plain output: the first token (from the fourth on) not seen before.
  const auto plain = Generate(*model, {prompt}, Greedy(40))[0].tokens;
  for (size_t i = 3; i < plain.size(); ++i) {
    if (std::find(plain.begin(), plain.begin() + i, plain[i]) != plain.begin() + i) continue;
    GenerateOptions o = Greedy(40);
    o.stop_ids = {plain[i]};
    const SpeculativeStats st = ExpectSameAsGenerate(*model, prompt, o);
    EXPECT_EQ(st.generation.generated_tokens, static_cast<int64_t>(i + 1));
    break;
  }
  // The config's eos id (1) when not ignored.
  GenerateOptions eos = Greedy(40);
  eos.ignore_eos = false;
  ExpectSameAsGenerate(*model, prompt, eos);
  GenerateOptions pen = Greedy(40);
  pen.sampling.repetition_penalty = 1.3f;
  pen.sampling.repetition_window = 8;
  ExpectSameAsGenerate(*model, prompt, pen);
}

INSTANTIATE_TEST_SUITE_P(Shapes, SpeculativeTiny, ::testing::Values("v3", "v2"));

TEST(Speculative, SameTokensOnTheV3NanoPreset) {
  const std::string dir = ::testing::TempDir() + "/r1_speculative_nano";
  std::filesystem::remove_all(dir);
  InitOptions init;
  init.seed = 3;
  InitModel("v3-nano", dir, init);  // BF16, the real shape of a small training run
  auto model = Model::Load(dir);
  ASSERT_EQ(model->num_mtp_modules(), 1);
  for (uint32_t seed : {1u, 2u}) {
    SCOPED_TRACE("prompt seed " + std::to_string(seed));
    ExpectSameAsGenerate(*model, Tokens(5, model->config().vocab_size, seed), Greedy(40));
  }
  std::filesystem::remove_all(dir);
}

// Trained on one repeating pattern, the main model and its MTP module both learn it, so almost
// every draft is accepted: the path that emits two tokens per step gets exercised throughout.
TEST(Speculative, TrainedModelAcceptsMostDraftsAndStillMatchesGreedy) {
  testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig("v3"), 21, 0.1f);
  const int64_t V = m.cfg.vocab_size, period = 11, B = 4, T = 48;
  std::vector<int32_t> cycle(period);
  for (int64_t i = 0; i < period; ++i) cycle[i] = static_cast<int32_t>(2 + (i * 7) % (V - 2));
  auto pattern = [&](int64_t from, int64_t n) {
    std::vector<int32_t> t(n);
    for (int64_t i = 0; i < n; ++i) t[i] = cycle[(from + i) % period];
    return t;
  };
  {
    TrainModel trainer(m.cfg, m.params);
    AdamW opt(m.params, AdamWOptions{.weight_decay = 0.0});
    LossOptions lo;
    lo.mtp_weight = 1.0;
    std::mt19937 rng(5);
    std::vector<int32_t> batch(B * (T + 1));
    for (int step = 0; step < 150; ++step) {
      for (int64_t b = 0; b < B; ++b) {
        const auto row = pattern(rng() % period, T + 1);
        std::copy(row.begin(), row.end(), batch.begin() + b * (T + 1));
      }
      m.params.ZeroGrad();
      trainer.Step({B, T, batch.data(), nullptr}, lo, /*backward=*/true);
      ClipGradNorm(m.params, 1.0);
      opt.Step(m.params, 1e-2);
    }
  }
  auto model = m.Bind();
  const std::vector<int32_t> prompt = pattern(3, 6);
  const SpeculativeStats st = ExpectSameAsGenerate(*model, prompt, Greedy(40));
  EXPECT_EQ(Generate(*model, {prompt}, Greedy(40))[0].tokens, pattern(9, 40));
  EXPECT_GE(st.acceptance_rate(), 0.9) << st.accepted_tokens << "/" << st.draft_tokens;
  EXPECT_LE(st.main_steps, 25);  // 39 tokens after the prefill in about half as many steps
}

TEST(Speculative, RefusesSamplingAndModelsWithoutMtp) {
  testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig("v3"), 1);
  auto model = m.Bind();
  GenerateOptions o = Greedy(4);
  o.sampling.temperature = 0.7f;
  EXPECT_NE(SpeculativeUnsupportedReason(*model, o.sampling).find("greedy"), std::string::npos);
  EXPECT_THROW(GenerateSpeculative(*model, {1, 2}, o), Error);
  EXPECT_EQ(SpeculativeUnsupportedReason(*model, Greedy(4).sampling), "");
  EXPECT_THROW(GenerateSpeculative(*model, {}, Greedy(4)), Error);

  nlohmann::json c = testing::TinyMtpConfig("v3");
  c["num_nextn_predict_layers"] = 0;
  testing::TinyMtpModel plain = testing::MakeTinyMtp(c, 1);
  auto no_mtp = plain.Bind();
  EXPECT_EQ(no_mtp->num_mtp_modules(), 0);
  EXPECT_NE(SpeculativeUnsupportedReason(*no_mtp, Greedy(4).sampling).find("MTP"),
            std::string::npos);
  EXPECT_THROW(GenerateSpeculative(*no_mtp, {1, 2}, Greedy(4)), Error);
}

TEST(Speculative, CancelBeforeTheFirstStep) {
  testing::TinyMtpModel m = testing::MakeTinyMtp(testing::TinyMtpConfig("v3"), 1);
  auto model = m.Bind();
  std::atomic<bool> cancel{true};
  GenerateOptions o = Greedy(8);
  o.cancel = &cancel;
  const GenerationResult r = GenerateSpeculative(*model, {1, 2, 3}, o);
  EXPECT_TRUE(r.tokens.empty());
  EXPECT_EQ(r.finish_reason, "cancelled");
  EXPECT_EQ(Generate(*model, {{1, 2, 3}}, o)[0].finish_reason, "cancelled");
}

}  // namespace
}  // namespace r1
