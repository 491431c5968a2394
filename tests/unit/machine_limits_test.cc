#include "r1/core/machine_limits.h"

#include <gtest/gtest.h>

#include <cmath>

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

TEST(MachineLimitsTest, BadArgumentsThrow) {
  EXPECT_THROW(MeasureReadBandwidthGBs(0, size_t{1} << 20, 1), Error);
  EXPECT_THROW(MeasureReadBandwidthGBs(1, size_t{1} << 20, 0), Error);
  EXPECT_THROW(MeasureReadBandwidthGBs(4, 64, 1), Error);  // Too small to split.
  EXPECT_THROW(MeasurePeakFp32Gflops(0, 1), Error);
  EXPECT_THROW(MeasurePeakFp32Gflops(1, -1), Error);
}

}  // namespace
}  // namespace r1
