// The BF16 prefill GEMM (two BF16 terms per activation) against the double-precision product of
// the same BF16 weights: its error must stay at float32 accumulation level, far below one BF16
// rounding of the activations, on shapes that are not multiples of the 32-row panel, the 6-token
// tile or the 16-column conversion step; and MatMul's choice of it.
#include "r1/kernels/gemm_bf16.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/amx.h"
#include "r1/kernels/matmul.h"

namespace r1 {
namespace {

struct Bf16Matrix {
  std::vector<uint16_t> values;
  Matrix m;
};

Bf16Matrix Make(int64_t rows, int64_t cols, uint32_t seed) {
  Bf16Matrix b;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  b.values.resize(rows * cols);
  for (uint16_t& v : b.values) v = F32ToBf16(nd(rng));
  b.m.dtype = DType::kBF16;
  b.m.rows = rows;
  b.m.cols = cols;
  b.m.data = reinterpret_cast<const uint8_t*>(b.values.data());
  return b;
}

// Max |got - exact| over the outputs, relative to the largest |exact|, where exact is the double
// product of the stored weights with the float32 activations, or with the activations rounded to
// BF16 when `rounded_reference`.
double RelativeError(int64_t rows, int64_t cols, int64_t n, bool with_bias, int threads,
                     bool rounded_reference = false) {
  Bf16Matrix w = Make(rows, cols, static_cast<uint32_t>(rows * 7 + cols * 3 + n));
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n * cols), bias(rows);
  for (float& v : x) v = nd(rng);
  x[1] = 25.0f;
  for (float& v : bias) v = nd(rng);
  const int64_t y_stride = rows + 5;
  std::vector<float> y(n * y_stride, -3.0f);
  ThreadPool pool(threads);
  Bf16Gemm(w.m, x.data(), cols, n, y.data(), y_stride, with_bias ? bias.data() : nullptr, pool);
  double worst = 0, scale = 0;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      double e = with_bias ? bias[r] : 0.0;
      for (int64_t c = 0; c < cols; ++c)
        e += static_cast<double>(Bf16ToF32(w.values[r * cols + c])) *
             (rounded_reference ? Bf16ToF32(F32ToBf16(x[t * cols + c])) : x[t * cols + c]);
      worst = std::max(worst, std::fabs(y[t * y_stride + r] - e));
      scale = std::max(scale, std::fabs(e));
    }
    for (int64_t r = rows; r < y_stride; ++r) EXPECT_EQ(y[t * y_stride + r], -3.0f);
  }
  return worst / scale;
}

TEST(Bf16Gemm, OddShapesNearFloat32) {
  if (!Bf16GemmApplies(Make(1, 2, 1).m)) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  for (int64_t rows : {1, 17, 32, 45})
    for (int64_t cols : {2, 18, 34, 96})
      for (int64_t n : {1, 6, 13, 16, 33})
        EXPECT_LT(RelativeError(rows, cols, n, rows % 2 == 1, 2), 2e-5)
            << rows << "x" << cols << " n " << n;
}

TEST(Bf16Gemm, LongRowsOneAndTwoThreads) {
  if (!Bf16GemmApplies(Make(1, 2, 1).m)) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  for (int threads : {1, 2}) {
    // One BF16 rounding of the activations alone would cost about 1e-3 here.
    EXPECT_LT(RelativeError(70, 1536, 14, true, threads), 2e-5);
    EXPECT_LT(RelativeError(33, 1000, 7, false, threads), 2e-5);
    // Rows the AMX kernel takes in chunks of 2048 columns (the last one partly padding), with
    // token counts of one and two 16-token groups and a remainder.
    EXPECT_LT(RelativeError(37, 2100, 35, true, threads), 2e-5);
    EXPECT_LT(RelativeError(50, 4098, 16, false, threads), 2e-5);
  }
}

// AMX CPUs take the tile kernel by default; the VNNI-width kernel beside it must stay right too.
TEST(Bf16Gemm, WithoutAmxOnAmxCpus) {
  if (!CpuHasAmx()) GTEST_SKIP() << "no AMX on this CPU";
  SetAmx(false);
  for (int64_t rows : {17, 45})
    for (int64_t n : {6, 13, 30}) {
      EXPECT_LT(RelativeError(rows, 96, n, true, 2), 2e-5) << rows << " n " << n;
      EXPECT_LT(RelativeError(rows, 1000, n, false, 2), 2e-5) << rows << " n " << n;
    }
  SetAmx(true);
}

// One BF16 term per activation: exact products of the rounded activations, float32 sums, on
// token counts that use the 12-token tile, the 6-token one and the remainders.
class RoundedActivations : public ::testing::Test {
 protected:
  void SetUp() override { SetBf16RoundedActivations(true); }
  void TearDown() override { SetBf16RoundedActivations(false); }
};

TEST_F(RoundedActivations, OddShapesEqualTheRoundedProduct) {
  if (!Bf16GemmApplies(Make(1, 2, 1).m)) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  for (int64_t rows : {1, 17, 45})
    for (int64_t cols : {2, 18, 34, 96})
      for (int64_t n : {1, 5, 12, 13, 19, 30})
        for (int threads : {1, 2})
          EXPECT_LT(RelativeError(rows, cols, n, rows % 2 == 1, threads, true), 2e-5)
              << rows << "x" << cols << " n " << n << " threads " << threads;
}

TEST_F(RoundedActivations, CostsOneBf16RoundingOfTheActivations) {
  if (!Bf16GemmApplies(Make(1, 2, 1).m)) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  // Against float32 activations: the rounding shows (about 1e-3 of the range here), bounded.
  const double err = RelativeError(70, 1536, 26, true, 2);
  EXPECT_GT(err, 1e-4);
  EXPECT_LT(err, 1e-2);
}

TEST(Bf16Gemm, MatMulUsesItAboveTheThreshold) {
  Bf16Matrix w = Make(40, 256, 5);
  if (!Bf16GemmApplies(w.m)) GTEST_SKIP() << "no AVX512-BF16 on this CPU";
  const int64_t n = kGemmMinTokens + 2;
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n * 256);
  for (float& v : x) v = nd(rng);
  ThreadPool pool(2);
  std::vector<float> fast(n * 40), plain(n * 40), direct(n * 40);
  MatMul(w.m, x.data(), n, fast.data(), pool);
  SetBf16Gemm(false);
  MatMul(w.m, x.data(), n, plain.data(), pool);
  SetBf16Gemm(true);
  Bf16Gemm(w.m, x.data(), 256, n, direct.data(), 40, nullptr, pool);
  for (int64_t i = 0; i < n * 40; ++i) {
    EXPECT_EQ(fast[i], direct[i]);
    EXPECT_NEAR(fast[i], plain[i], 1e-5f * (1.0f + std::fabs(plain[i])));
  }
}

}  // namespace
}  // namespace r1
