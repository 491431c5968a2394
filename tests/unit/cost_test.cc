#include "r1/model/cost.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "r1/core/process_memory.h"
#include "r1/model/presets.h"

namespace r1 {
namespace {

Matrix MakeMatrix(DType dtype, int64_t rows, int64_t cols, const uint8_t* data) {
  Matrix m;
  m.dtype = dtype;
  m.rows = rows;
  m.cols = cols;
  m.data = data;
  return m;
}

TEST(CostTest, FormatNames) {
  EXPECT_EQ(MatrixFormatName(DType::kBF16), "bf16");
  EXPECT_EQ(MatrixFormatName(DType::kF32), "f32");
  EXPECT_EQ(MatrixFormatName(DType::kF8E4M3), "fp8");
  EXPECT_EQ(MatrixFormatName(DType::kI8), "q8");
  EXPECT_EQ(MatrixFormatName(DType::kU8), "q4");
  EXPECT_EQ(WeightFormat({{"bf16", 10.0}}), "bf16");
  EXPECT_EQ(WeightFormat({{"bf16", 10.0}, {"q8", 5.0}}), "mixed");
  EXPECT_EQ(WeightFormat({}), "none");
}

// Bytes by format count every matrix once: a tied head (the embedding itself) is not counted
// twice, and empty slots not at all.
TEST(CostTest, MatrixBytesByFormatCountsTiedHeadOnce) {
  std::vector<uint8_t> buf(4096);
  Weights w;
  w.embed = MakeMatrix(DType::kBF16, 8, 4, buf.data());  // 64 bytes
  w.lm_head = w.embed;
  w.layers.resize(1);
  w.layers[0].q = MakeMatrix(DType::kF32, 4, 4, buf.data());  // 64 bytes
  w.layers[0].mlp.up = MakeMatrix(DType::kBF16, 2, 4, buf.data());  // 16 bytes
  auto bytes = MatrixBytesByFormat(w);
  ASSERT_EQ(bytes.size(), 2u);
  EXPECT_EQ(bytes["bf16"], 80.0);
  EXPECT_EQ(bytes["f32"], 64.0);
  EXPECT_EQ(WeightFormat(bytes), "mixed");

  w.lm_head = MakeMatrix(DType::kBF16, 8, 4, buf.data() + 1024);  // untied: counted
  EXPECT_EQ(MatrixBytesByFormat(w)["bf16"], 144.0);
}

// The decode-step figure of a dense model written out by hand, so a change to the estimate is a
// deliberate one.
TEST(CostTest, StepScratchOfQwenDecodeStep) {
  const Config cfg = ParseConfig(PresetConfig("r1-distill-qwen-1.5b"), "preset");
  const int64_t d = cfg.hidden_size, H = cfg.num_attention_heads, Dh = cfg.head_dim;
  const int64_t kv = cfg.num_key_value_heads * Dh, ctx = 100;
  const int64_t floats = 4 * d + 2 * H * Dh + 2 * kv + 2 * cfg.intermediate_size + 2 * d +
                         cfg.vocab_size + ctx;
  EXPECT_EQ(StepScratchBytes(cfg, 1, 1, ctx, 1), 4 * floats);
}

TEST(CostTest, StepScratchGrowsWithTokensAndThreads) {
  for (const char* preset : {"r1-distill-qwen-1.5b", "v3-nano", "deepseek-v2-lite"}) {
    const Config cfg = ParseConfig(PresetConfig(preset), preset);
    const int64_t decode = StepScratchBytes(cfg, 1, 1, 512, 2);
    EXPECT_GT(decode, 0) << preset;
    EXPECT_GT(StepScratchBytes(cfg, 512, 1, 512, 2), decode) << preset;
    EXPECT_GT(StepScratchBytes(cfg, 32, 32, 512, 2), StepScratchBytes(cfg, 32, 1, 512, 2))
        << preset;
    EXPECT_GT(StepScratchBytes(cfg, 1, 1, 512, 4), decode) << preset;
  }
}

#if defined(__linux__)
// The kernel reports VmRSS as the sum of its three parts.
TEST(ProcessMemoryTest, ReadsLinuxStatus) {
  const ProcessMemory m = ReadProcessMemory();
  EXPECT_GT(m.vm_rss, 0);
  ASSERT_GE(m.rss_anon, 0);
  ASSERT_GE(m.rss_file, 0);
  ASSERT_GE(m.rss_shmem, 0);
  EXPECT_EQ(m.vm_rss, m.rss_anon + m.rss_file + m.rss_shmem);
  EXPECT_GE(m.vm_hwm, m.vm_rss);
}
#endif

}  // namespace
}  // namespace r1
