#include "r1/core/machine_limits.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <string>

#include "r1/core/error.h"

namespace r1 {
namespace {

// Timings depend on the machine and its load, so only sanity is checked here; the real figures
// are printed by the benchmarks that use them.
TEST(MachineLimitsTest, ReadBandwidthIsPositiveAndFinite) {
  for (int threads : {1, 2}) {
    const double gbs = MeasureReadBandwidthGBs(threads, size_t{64} << 20, 1);
    EXPECT_TRUE(std::isfinite(gbs)) << threads;
    EXPECT_GT(gbs, 0.0) << threads;
  }
}

TEST(MachineLimitsTest, PeakFp32IsPositiveAndFinite) {
  for (int threads : {1, 2}) {
    const double gflops = MeasurePeakFp32Gflops(threads, 1);
    EXPECT_TRUE(std::isfinite(gflops)) << threads;
    EXPECT_GT(gflops, 0.0) << threads;
  }
}

// Zero is the documented answer on CPUs without the instruction, so only >= 0 holds everywhere;
// where the CPU has it, the dot-product peak is well above zero.
TEST(MachineLimitsTest, DotProductPeaksAreFiniteAndNonNegative) {
  for (int threads : {1, 2}) {
    const double bf16 = MeasurePeakBf16Gflops(threads, 1);
    const double int8 = MeasurePeakInt8Gops(threads, 1);
    EXPECT_TRUE(std::isfinite(bf16)) << threads;
    EXPECT_TRUE(std::isfinite(int8)) << threads;
    EXPECT_GE(bf16, 0.0) << threads;
    EXPECT_GE(int8, 0.0) << threads;
  }
#if defined(__x86_64__) && defined(__GNUC__)
  // R1_ISA caps the measured peaks as it caps the kernels (the suites run again under caps).
  __builtin_cpu_init();
  const char* cap_env = std::getenv("R1_ISA");
  const std::string cap = cap_env ? cap_env : "";
  const bool avx512 = cap != "baseline" && cap != "avx2" && cap != "avxvnni";
  if (avx512 && __builtin_cpu_supports("avx512bf16")) {
    EXPECT_GT(MeasurePeakBf16Gflops(1, 1), 0.0);
  }
  if (!avx512) {
    EXPECT_EQ(MeasurePeakBf16Gflops(1, 1), 0.0);
  }
  // Some int8 dot instruction on every CPU with AVX2 (AVX512-VNNI, AVX-VNNI or vpmaddubsw).
  if (cap != "baseline" && __builtin_cpu_supports("avx2")) {
    EXPECT_GT(MeasurePeakInt8Gops(1, 1), 0.0);
  }
  if (cap == "baseline") {
    EXPECT_EQ(MeasurePeakInt8Gops(1, 1), 0.0);
  }
#endif
}

TEST(MachineLimitsTest, CpuModelNameIsNotEmpty) { EXPECT_FALSE(CpuModelName().empty()); }

TEST(MachineLimitsTest, BadArgumentsThrow) {
  EXPECT_THROW(MeasureReadBandwidthGBs(0, size_t{1} << 20, 1), Error);
  EXPECT_THROW(MeasureReadBandwidthGBs(1, size_t{1} << 20, 0), Error);
  EXPECT_THROW(MeasureReadBandwidthGBs(4, 64, 1), Error);  // Too small to split.
  EXPECT_THROW(MeasurePeakFp32Gflops(0, 1), Error);
  EXPECT_THROW(MeasurePeakFp32Gflops(1, -1), Error);
  EXPECT_THROW(MeasurePeakBf16Gflops(0, 1), Error);
  EXPECT_THROW(MeasurePeakInt8Gops(1, 0), Error);
}

}  // namespace
}  // namespace r1
