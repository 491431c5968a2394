// Loading models the project writes itself: MTP modules are bound and kept, FP8 matrices stay
// one byte per weight, and a tied head shares the embedding.
#include <gtest/gtest.h>

#include <filesystem>

#include "r1/model/model.h"
#include "r1/model/presets.h"

namespace r1 {
namespace {

TEST(ModelLoad, MtpModuleIsLoadedAndKept) {
  const std::string dir = ::testing::TempDir() + "/r1_mtp_nano";
  std::filesystem::remove_all(dir);
  InitOptions opts;
  opts.seed = 7;
  InitModel("v3-nano", dir, opts);
  auto model = Model::Load(dir);
  ASSERT_EQ(model->config().num_nextn_predict_layers, 1);
  ASSERT_EQ(model->weights().mtp.size(), 1u);
  const MtpWeights& m = model->weights().mtp[0];
  EXPECT_FALSE(m.eh_proj.empty());
  EXPECT_EQ(m.eh_proj.cols, 2 * model->config().hidden_size);
  EXPECT_FALSE(m.embed.empty());
  EXPECT_FALSE(m.head.empty());
  EXPECT_TRUE(m.block.moe);  // layer index num_hidden_layers >= first_k_dense_replace
  // The main model still runs and the cache has room for the MTP layer.
  KVCache cache = model->NewCache();
  std::vector<int32_t> ids = {1, 2, 3};
  SeqChunk c{cache.AddSequence(), ids};
  StepOutput out;
  model->Step(cache, {&c, 1}, {}, out);
  EXPECT_EQ(out.rows, 1);
  std::filesystem::remove_all(dir);
}

TEST(ModelLoad, Fp8WeightsStayOneBytePerWeight) {
  auto model = Model::Load(std::string(R1_GOLDEN_DIR) + "/deepseek-v3-tiny/model");
  const Matrix& q_b = model->weights().layers[0].q_b;
  EXPECT_EQ(q_b.dtype, DType::kF8E4M3);
  // Points into the mapped checkpoint: no float32 copy was made.
  const TensorView& t = model->store().Get("model.layers.0.self_attn.q_b_proj.weight");
  EXPECT_EQ(q_b.data, t.data);
  EXPECT_NE(q_b.scale, nullptr);
}

TEST(ModelLoad, TiedHeadSharesTheEmbedding) {
  auto model = Model::Load(std::string(R1_GOLDEN_DIR) + "/qwen2-tiny/model");
  EXPECT_TRUE(model->config().tie_word_embeddings);
  EXPECT_EQ(model->weights().lm_head.data, model->weights().embed.data);
}

}  // namespace
}  // namespace r1
