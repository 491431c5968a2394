// Every golden folder: logits and hidden states of a batch of two sequences, and 16 greedy
// tokens with a KV cache, in both MLA forms for DeepSeek models.
#include <gtest/gtest.h>

#include "golden_util.h"
#include "r1/model/model.h"

namespace r1 {
namespace {

using testing::ArgMax;
using testing::MaxAbsDiff;

using Case = testing::ModelCase;

class GoldenForward : public ::testing::TestWithParam<Case> {
 protected:
  void SetUp() override {
    dir_ = testing::GoldenDir() + "/" + GetParam().folder;
    model_ = Model::Load(dir_ + "/model");
    model_->set_mla_mode(GetParam().mode);
    golden_ = SafetensorsFile::Open(dir_ + "/golden.safetensors");
    auto j = testing::ReadJson(dir_ + "/golden.json");
    logits_tol_ = j["tolerance"]["logits_max_abs"].get<float>();
    hidden_tol_ = j["tolerance"]["hidden_max_abs"].get<float>();
  }
  std::string dir_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<SafetensorsFile> golden_;
  float logits_tol_ = 0, hidden_tol_ = 0;
};

TEST_P(GoldenForward, LogitsAndHiddenMatch) {
  const TensorView* ids_t = golden_->Find("input_ids");
  ASSERT_NE(ids_t, nullptr);
  const int64_t B = ids_t->shape[0], T = ids_t->shape[1];
  const auto ids = testing::I64AsI32(*ids_t);
  KVCache cache = model_->NewCache();
  std::vector<SeqChunk> chunks;
  for (int64_t b = 0; b < B; ++b)
    chunks.push_back({cache.AddSequence(), std::span<const int32_t>(ids.data() + b * T, T)});
  StepOutput out;
  model_->Step(cache, chunks, {.all_logits = true, .keep_hidden = true}, out);

  const auto want = testing::F32(*golden_->Find("logits"));
  ASSERT_EQ(out.logits.size(), want.size());
  const float err = MaxAbsDiff(out.logits.data(), want.data(), want.size());
  EXPECT_LE(err, logits_tol_) << "max |logits - golden|";
  RecordProperty("logits_max_abs_diff", std::to_string(err));
  std::printf("[%s] logits max |diff| = %.3g\n", testing::ModelCaseName({GetParam(), 0}).c_str(), err);

  for (int l = 0; l < model_->config().num_hidden_layers; ++l) {
    const TensorView* h = golden_->Find("hidden.layer" + std::to_string(l));
    ASSERT_NE(h, nullptr);
    const auto hw = testing::F32(*h);
    ASSERT_EQ(out.hidden[l].size(), hw.size());
    EXPECT_LE(MaxAbsDiff(out.hidden[l].data(), hw.data(), hw.size()), hidden_tol_)
        << "layer " << l;
  }
}

TEST_P(GoldenForward, GreedyTokensMatch) {
  const auto prompt = testing::I64AsI32(*golden_->Find("greedy.prompt"));
  const auto want = testing::I64AsI32(*golden_->Find("greedy.output"));
  KVCache cache = model_->NewCache();
  const int slot = cache.AddSequence();
  StepOutput out;
  SeqChunk c{slot, prompt};
  model_->Step(cache, {&c, 1}, {}, out);
  std::vector<int32_t> got;
  const int64_t V = model_->config().vocab_size;
  for (size_t i = 0; i < want.size(); ++i) {
    int32_t t = ArgMax(out.logits.data(), V);
    got.push_back(t);
    SeqChunk next{slot, std::span<const int32_t>(&got.back(), 1)};
    model_->Step(cache, {&next, 1}, {}, out);
  }
  EXPECT_EQ(got, want);
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenForward, ::testing::ValuesIn(testing::AllModelCases()), testing::ModelCaseName);

}  // namespace
}  // namespace r1
