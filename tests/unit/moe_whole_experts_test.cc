// MoE layers run whole experts per thread (for decode, and for prefills with enough active
// experts) or each expert's products split over the threads; the logits must agree (to float32
// rounding: the float32 GEMM's row panels, hence its sgemm calls, depend on the thread count).
// A pool of 2 threads takes the whole-expert path for this prefill; a pool of 16 (more threads
// than a quarter of the active experts) the split one.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "r1/core/thread_pool.h"
#include "r1/infer/kv_cache.h"
#include "tiny_mtp_model.h"

namespace r1 {
namespace {

std::vector<float> PrefillLogits(const Model& model, const std::vector<int32_t>& ids) {
  KVCache cache = model.NewCache();
  const SeqChunk chunk{cache.AddSequence(), ids};
  StepOutput out;
  model.Step(cache, {&chunk, 1}, {.all_logits = true}, out);
  return out.logits;
}

TEST(MoeWholeExperts, PrefillLogitsAgreeWithTheSplitPath) {
  for (const std::string kind : {"v2", "v3"}) {
    SCOPED_TRACE(kind);
    nlohmann::json cfg = testing::TinyMtpConfig(kind);
    cfg["n_routed_experts"] = 16;
    cfg["num_experts_per_tok"] = 4;
    cfg["n_group"] = 1;
    cfg["topk_group"] = 1;
    const testing::TinyMtpModel m = testing::MakeTinyMtp(cfg, 9);
    std::mt19937 rng(3);
    std::vector<int32_t> ids(40);
    for (auto& t : ids) t = static_cast<int32_t>(rng() % m.cfg.vocab_size);
    ThreadPool two(2), many(16);
    auto model = m.Bind();
    model->set_pool(&two);
    const std::vector<float> whole = PrefillLogits(*model, ids);
    model->set_pool(&many);
    const std::vector<float> split = PrefillLogits(*model, ids);
    ASSERT_EQ(whole.size(), split.size());
    for (size_t i = 0; i < whole.size(); ++i)
      ASSERT_NEAR(whole[i], split[i], 1e-5f * (1.0f + std::fabs(split[i]))) << "logit " << i;
  }
}

}  // namespace
}  // namespace r1
