// EvaluatePerplexity against a hand computation from single-token decode steps (a different
// kernel path from the batched windows it runs), window/batch bookkeeping, and its errors.
#include "r1/infer/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>
#include <unistd.h>

#include "r1/core/error.h"
#include "r1/model/presets.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

class PerplexityTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string((fs::temp_directory_path() /
                            ("r1_perplexity_test_" + std::to_string(::getpid())))
                               .string());
    InitOptions o;
    o.seed = 9;
    o.overwrite = true;
    InitModel("v3-nano", *dir_, o);
    model_ = Model::Load(*dir_).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    fs::remove_all(*dir_);
    delete dir_;
  }
  static std::vector<int32_t> Tokens(int64_t n) {
    std::mt19937 rng(5);
    std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(model_->config().vocab_size) - 1);
    std::vector<int32_t> t(n);
    for (auto& x : t) x = d(rng);
    return t;
  }
  // Mean NLL of one window, one token per step.
  static double WindowNll(std::span<const int32_t> w) {
    KVCache cache = model_->NewCache();
    const int slot = cache.AddSequence();
    StepOutput out;
    double sum = 0;
    const int64_t V = model_->config().vocab_size;
    for (size_t i = 0; i + 1 < w.size(); ++i) {
      SeqChunk c{slot, w.subspan(i, 1)};
      model_->Step(cache, {&c, 1}, {}, out);
      double z = 0;
      for (int64_t v = 0; v < V; ++v) z += std::exp(double(out.logits[v]));
      sum += std::log(z) - out.logits[w[i + 1]];
    }
    return sum;
  }
  static std::string* dir_;
  static Model* model_;
};
std::string* PerplexityTest::dir_ = nullptr;
Model* PerplexityTest::model_ = nullptr;

TEST_F(PerplexityTest, MatchesStepByStepComputation) {
  const auto tokens = Tokens(3 * 20 + 7);  // three whole windows of 20, a tail left unscored
  PerplexityOptions o;
  o.context = 20;
  const PerplexityResult r = EvaluatePerplexity(*model_, tokens, o);
  EXPECT_EQ(r.windows, 3);
  EXPECT_EQ(r.tokens_scored, 3 * 19);
  double sum = 0;
  for (int w = 0; w < 3; ++w) sum += WindowNll(std::span<const int32_t>(tokens).subspan(w * 20, 20));
  EXPECT_NEAR(r.mean_nll, sum / (3 * 19), 1e-4);
  EXPECT_NEAR(r.perplexity, std::exp(r.mean_nll), 1e-9 * r.perplexity);
  EXPECT_GT(r.nll_stderr, 0.0);
  // A random model is close to uniform over the vocabulary.
  EXPECT_GT(r.perplexity, 0.5 * model_->config().vocab_size);
  EXPECT_LT(r.perplexity, 2.0 * model_->config().vocab_size);
}

TEST_F(PerplexityTest, MaxWindowsAndShortText) {
  const auto tokens = Tokens(100);
  PerplexityOptions o;
  o.context = 30;
  o.max_windows = 2;
  EXPECT_EQ(EvaluatePerplexity(*model_, tokens, o).windows, 2);
  // Shorter than one window: scored as one window of the whole text.
  o.context = 512;
  o.max_windows = 0;
  const PerplexityResult r = EvaluatePerplexity(*model_, tokens, o);
  EXPECT_EQ(r.windows, 1);
  EXPECT_EQ(r.tokens_scored, 99);
  EXPECT_NEAR(r.mean_nll, WindowNll(tokens) / 99, 1e-4);
}

TEST_F(PerplexityTest, Errors) {
  PerplexityOptions o;
  EXPECT_THROW(EvaluatePerplexity(*model_, Tokens(1), o), Error);
  o.context = model_->config().max_position_embeddings + 1;
  EXPECT_THROW(EvaluatePerplexity(*model_, Tokens(o.context + 1), o), Error);
}

}  // namespace
}  // namespace r1
