// RoPE frequencies (YaRN, llama3, plain) and the attention scale against the worked values of
// model-spec §3.5 and §3.6.4.
#include "r1/model/rope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "r1/model/config.h"
#include "r1/model/presets.h"

namespace r1 {
namespace {

using nlohmann::json;

// The published configurations come from the presets, so the spec's worked values below check
// the presets' rope fields as well as the rope math.
json DeepseekV3Json() { return PresetConfig("deepseek-v3"); }
json DeepseekV2LiteJson() { return PresetConfig("deepseek-v2-lite"); }
json Llama31_8BJson() { return PresetConfig("r1-distill-llama-8b"); }

// ω_i = θ^(−2i/D) in float32 (§3.5.1).
std::vector<float> BaseFreq(double theta, int d) {
  std::vector<float> f(d / 2);
  for (int i = 0; i < d / 2; ++i)
    f[i] = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / d);
  return f;
}

void ExpectRel(double got, double want, double rel, const std::string& what) {
  EXPECT_NEAR(got, want, rel * std::fabs(want)) << what;
}

TEST(RopeTest, GoldenV3TinyYarnWorkedValues) {
  const Config cfg = LoadConfig(R1_GOLDEN_DIR "/deepseek-v3-tiny/model");
  ASSERT_EQ(cfg.rope_scaling, RopeScaling::kYarn);
  ASSERT_EQ(cfg.qk_rope_head_dim, 16);
  const std::vector<float> f = RopeInvFreq(cfg, cfg.qk_rope_head_dim);
  const double want[] = {1, 0.2371708, 0.05, 0.0079057, 0.0025, 0.00079057, 0.00025, 0.000079057};
  ASSERT_EQ(f.size(), 8u);
  for (int i = 0; i < 8; ++i) ExpectRel(f[i], want[i], 1e-5, "ω'_" + std::to_string(i));
}

TEST(RopeTest, DeepseekV3YarnWorkedValues) {
  const Config cfg = ParseConfig(DeepseekV3Json(), "deepseek-v3/config.json");
  ASSERT_EQ(cfg.rope_scaling, RopeScaling::kYarn);
  const std::vector<float> f = RopeInvFreq(cfg, 64);
  ASSERT_EQ(f.size(), 32u);
  ExpectRel(f[0], 1.0, 1e-5, "ω'_0");
  ExpectRel(f[10], 0.0562341, 1e-5, "ω'_10");
  ExpectRel(f[16], 0.0055000, 1e-5, "ω'_16");
  ExpectRel(f[23], 3.33380e-5, 1e-5, "ω'_23");
  ExpectRel(f[31], 3.33380e-6, 1e-5, "ω'_31");
  // lo = 10, hi = 23: unchanged up to lo, divided by s = 40 from hi on, a strict blend between.
  const std::vector<float> base = BaseFreq(10000.0, 64);
  for (int i = 0; i < 32; ++i) {
    if (i <= 10) {
      ExpectRel(f[i], base[i], 1e-6, "fast dim " + std::to_string(i));
    } else if (i >= 23) {
      ExpectRel(f[i], base[i] / 40.0, 1e-6, "interpolated dim " + std::to_string(i));
    } else {
      const double ramp = (i - 10) / 13.0;
      ExpectRel(f[i], base[i] * (1 - ramp) + base[i] / 40.0 * ramp, 1e-6,
                "blended dim " + std::to_string(i));
      EXPECT_LT(f[i], base[i]) << i;
      EXPECT_GT(f[i], base[i] / 40.0f) << i;
    }
    if (i > 0) {
      EXPECT_LT(f[i], f[i - 1]) << "frequencies must decrease, i=" << i;
    }
  }
}

TEST(RopeTest, YarnWithoutScalingFactorAboveOneIsPlain) {
  json j = DeepseekV3Json();
  j["rope_scaling"]["factor"] = 1.0;
  const Config cfg = ParseConfig(j, "v3-factor1");
  const std::vector<float> f = RopeInvFreq(cfg, 64), base = BaseFreq(10000.0, 64);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(f[i], base[i]) << i;
}

TEST(RopeTest, Llama31_8BScalingCounts) {
  const Config cfg = ParseConfig(Llama31_8BJson(), "llama-3.1-8b/config.json");
  ASSERT_EQ(cfg.rope_scaling, RopeScaling::kLlama3);
  ASSERT_EQ(cfg.head_dim, 128);
  const std::vector<float> f = RopeInvFreq(cfg, cfg.head_dim);
  const std::vector<float> base = BaseFreq(500000.0, 128);
  ASSERT_EQ(f.size(), 64u);
  int unchanged = 0, divided = 0, blended = 0;
  for (int i = 0; i < 64; ++i) {
    const double wavelen = 2 * std::numbers::pi / base[i];
    if (f[i] == base[i]) {
      ++unchanged;
      EXPECT_LT(wavelen, 8192.0 / 4) << i;
    } else if (f[i] == base[i] / 8.0f) {
      ++divided;
      EXPECT_GT(wavelen, 8192.0 / 1) << i;
    } else {
      ++blended;
      const double g = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      ExpectRel(f[i], (1 - g) * base[i] / 8.0 + g * base[i], 1e-6, "blend " + std::to_string(i));
      EXPECT_LT(f[i], base[i]) << i;
      EXPECT_GT(f[i], base[i] / 8.0f) << i;
    }
  }
  EXPECT_EQ(unchanged, 29);
  EXPECT_EQ(divided, 29);
  EXPECT_EQ(blended, 6);
  // The unchanged ones are the fastest (first) frequencies.
  for (int i = 0; i < 29; ++i) EXPECT_EQ(f[i], base[i]) << i;
  for (int i = 35; i < 64; ++i) EXPECT_EQ(f[i], base[i] / 8.0f) << i;
}

TEST(RopeTest, PlainRopeForQwen2Golden) {
  const Config cfg = LoadConfig(R1_GOLDEN_DIR "/qwen2-tiny/model");
  ASSERT_EQ(cfg.rope_scaling, RopeScaling::kNone);
  const std::vector<float> f = RopeInvFreq(cfg, cfg.head_dim);
  const std::vector<float> base = BaseFreq(cfg.rope_theta, cfg.head_dim);
  ASSERT_EQ(f.size(), static_cast<size_t>(cfg.head_dim / 2));
  for (size_t i = 0; i < f.size(); ++i) EXPECT_EQ(f[i], base[i]) << i;
}

TEST(RopeTest, GoldenLlama3TinyUsesLlama3Scaling) {
  const Config cfg = LoadConfig(R1_GOLDEN_DIR "/llama3-tiny/model");
  ASSERT_EQ(cfg.rope_scaling, RopeScaling::kLlama3);
  const std::vector<float> f = RopeInvFreq(cfg, cfg.head_dim);
  const std::vector<float> base = BaseFreq(500000.0, cfg.head_dim);
  EXPECT_EQ(f.front(), base.front());
  EXPECT_EQ(f.back(), base.back() / 8.0f);
}

// --- attention scale (§3.6.4) ----------------------------------------------------------------

TEST(AttentionScaleTest, SpecTable) {
  EXPECT_NEAR(ParseConfig(DeepseekV3Json(), "v3").AttentionScale(), 0.1352338, 5e-7);
  EXPECT_NEAR(ParseConfig(DeepseekV2LiteJson(), "v2-lite").AttentionScale(), 0.1147214, 5e-7);
  EXPECT_NEAR(LoadConfig(R1_GOLDEN_DIR "/deepseek-v3-tiny/model").AttentionScale(), 0.1871303,
              5e-7);
  EXPECT_NEAR(LoadConfig(R1_GOLDEN_DIR "/deepseek-v3-train/model").AttentionScale(), 0.1871303,
              5e-7);
  EXPECT_NEAR(LoadConfig(R1_GOLDEN_DIR "/deepseek-v2-tiny/model").AttentionScale(), 0.2294428,
              5e-7);
}

TEST(AttentionScaleTest, DenseModelsUseHeadDim) {
  EXPECT_DOUBLE_EQ(ParseConfig(Llama31_8BJson(), "llama").AttentionScale(),
                   1.0 / std::sqrt(128.0));
  const Config qwen = LoadConfig(R1_GOLDEN_DIR "/qwen2-tiny/model");
  EXPECT_DOUBLE_EQ(qwen.AttentionScale(), 1.0 / std::sqrt(static_cast<double>(qwen.head_dim)));
}

TEST(AttentionScaleTest, NoMscaleWithoutYarn) {
  json j = DeepseekV3Json();
  j.erase("rope_scaling");
  EXPECT_DOUBLE_EQ(ParseConfig(j, "v3-no-yarn").AttentionScale(), 1.0 / std::sqrt(192.0));
}

}  // namespace
}  // namespace r1
