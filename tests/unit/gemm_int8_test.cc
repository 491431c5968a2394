// The int8 prefill GEMM for Q8/Q4 weights against a scalar computation of the same integer
// arithmetic (activations rounded per block of 32, exact block sums, scales applied per block),
// on shapes that are not multiples of the 32-row panel or the 6-token tile; and MatMul's choice
// of it above kGemmMinTokens only while int8 activations are on.
#include "r1/kernels/gemm_int8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/matvec_int8.h"
#include "r1/kernels/quantize_rows.h"
#include "quant_tiles_util.h"

namespace r1 {
namespace {

struct QMatrix {
  std::vector<uint8_t> codes;    // rows as the row quantizers write them
  std::vector<uint16_t> scales;  // [rows, blocks]
  std::vector<uint8_t> tiles;    // what m reads
  Matrix m;
};

QMatrix Make(DType dtype, int64_t rows, int64_t cols, uint32_t seed, bool extremes) {
  QMatrix q;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  q.m.dtype = dtype;
  q.m.rows = rows;
  q.m.cols = cols;
  const int64_t blocks = cols / kQuantBlock, rb = PlainRowBytes(dtype, cols);
  q.codes.resize(rows * rb);
  q.scales.resize(rows * blocks);
  std::vector<float> row(cols);
  for (int64_t r = 0; r < rows; ++r) {
    for (float& v : row) v = nd(rng);
    if (dtype == DType::kI8)
      QuantizeRowQ8(row.data(), cols, reinterpret_cast<int8_t*>(q.codes.data()) + r * cols,
                    q.scales.data() + r * blocks);
    else
      QuantizeRowQ4(row.data(), cols, q.codes.data() + r * rb, q.scales.data() + r * blocks);
  }
  if (extremes) {
    // Every code at its ends (-128/127 for Q8, nibbles 0/15 for Q4) in row 0, one zero scale.
    for (int64_t i = 0; i < rb; ++i) q.codes[i] = dtype == DType::kI8 ? (i % 2 ? 0x80 : 0x7f) : (i % 2 ? 0x00 : 0xff);
    if (rows > 1) q.scales[blocks] = 0;
  }
  PackTiles(q.m, q.codes, q.scales, q.tiles);
  return q;
}

int WeightCode(const QMatrix& q, int64_t r, int64_t c) {
  const Matrix& w = q.m;
  if (w.dtype == DType::kI8) return static_cast<int8_t>(q.codes[r * w.cols + c]);
  const uint8_t byte = q.codes[r * Q4RowBytes(w.cols) + (c / 32) * 16 + (c % 32) % 16];
  return ((c % 32) < 16 ? (byte & 15) : (byte >> 4)) - 8;
}

// Straight from the definition in gemm_int8.h, in double.
std::vector<float> Reference(const QMatrix& q, const std::vector<float>& x, int64_t n,
                             const float* bias) {
  const Matrix& w = q.m;
  const int64_t blocks = w.cols / 32;
  std::vector<float> y(n * w.rows);
  for (int64_t t = 0; t < n; ++t) {
    std::vector<int> code(w.cols);
    std::vector<float> dx(blocks);
    for (int64_t b = 0; b < blocks; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[t * w.cols + b * 32 + j]));
      const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
      dx[b] = d;
      for (int j = 0; j < 32; ++j)
        code[b * 32 + j] = static_cast<int>(
            std::clamp(std::nearbyint(x[t * w.cols + b * 32 + j] * inv), -127.0f, 127.0f));
    }
    for (int64_t r = 0; r < w.rows; ++r) {
      double s = 0;
      for (int64_t b = 0; b < blocks; ++b) {
        int64_t isum = 0;
        for (int64_t c = b * 32; c < (b + 1) * 32; ++c) isum += WeightCode(q, r, c) * code[c];
        s += static_cast<double>(isum) * (dx[b] * F16ToF32(q.scales[r * blocks + b]));
      }
      y[t * w.rows + r] = static_cast<float>(bias ? s + bias[r] : s);
    }
  }
  return y;
}

void Check(DType dtype, int64_t rows, int64_t cols, int64_t n, bool with_bias, int threads,
           bool extremes = false) {
  QMatrix q = Make(dtype, rows, cols, static_cast<uint32_t>(rows * 131 + cols + n), extremes);
  if (!Int8GemmApplies(q.m)) GTEST_SKIP() << "no int8 GEMM on this CPU";
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n * cols), bias(rows);
  for (float& v : x) v = nd(rng);
  x[5] = 30.0f;  // an outlier, as hidden states have
  if (extremes) std::fill(x.begin(), x.begin() + 32, 0.0f);  // an all-zero block
  for (float& v : bias) v = nd(rng);
  const float* b = with_bias ? bias.data() : nullptr;
  const auto want = Reference(q, x, n, b);
  // Output rows further apart than the matrix, to check the stride and the untouched gaps.
  const int64_t y_stride = rows + 3;
  std::vector<float> y(n * y_stride, -7.0f);
  ThreadPool pool(threads);
  Int8Gemm(q.m, x.data(), cols, n, y.data(), y_stride, b, pool);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      const float g = y[t * y_stride + r], e = want[t * rows + r];
      ASSERT_NEAR(g, e, 1e-5f * (1.0f + std::fabs(e)))
          << DTypeName(dtype) << " rows " << rows << " cols " << cols << " token " << t << " row "
          << r;
    }
    for (int64_t r = rows; r < y_stride; ++r) ASSERT_EQ(y[t * y_stride + r], -7.0f);
  }
}

TEST(Int8Gemm, Q8OddShapes) {
  for (int64_t rows : {1, 17, 32, 45, 100})
    for (int64_t n : {1, 5, 6, 13, 20}) Check(DType::kI8, rows, 96, n, rows % 2 == 1, 2);
}

TEST(Int8Gemm, Q4OddShapes) {
  for (int64_t rows : {1, 17, 32, 45, 100})
    for (int64_t n : {1, 5, 6, 13, 20}) Check(DType::kU8, rows, 96, n, rows % 2 == 0, 2);
}

TEST(Int8Gemm, LongRowsOneAndTwoThreads) {
  for (int threads : {1, 2}) {
    Check(DType::kI8, 67, 1536, 14, true, threads);
    Check(DType::kU8, 67, 1536, 14, false, threads);
    Check(DType::kI8, 33, 32, 7, false, threads);
    Check(DType::kU8, 33, 32, 7, true, threads);
  }
}

// The repack reads 2 (Q8) or 4 (Q4) blocks per row at a time and the scales 16 blocks at a time:
// every remainder of both, with row counts that leave either half of a panel partly empty.
TEST(Int8Gemm, EveryBlockRemainder) {
  for (int64_t blocks : {1, 2, 3, 4, 5, 6, 7, 15, 16, 17, 33})
    for (int64_t rows : {9, 31, 50}) {
      Check(DType::kI8, rows, blocks * 32, 7, rows == 9, 2);
      Check(DType::kU8, rows, blocks * 32, 7, rows == 31, 2);
    }
}

TEST(Int8Gemm, ExtremeCodesAndZeroScales) {
  Check(DType::kI8, 40, 128, 9, true, 2, true);
  Check(DType::kU8, 40, 128, 9, true, 2, true);
}

TEST(Int8Gemm, MatMulUsesItOnlyWithInt8Activations) {
  QMatrix q = Make(DType::kU8, 40, 256, 3, false);
  if (!Int8GemmApplies(q.m)) GTEST_SKIP() << "no int8 GEMM on this CPU";
  const int64_t n = kGemmMinTokens + 3;
  std::mt19937 rng(9);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n * 256);
  for (float& v : x) v = nd(rng);
  ThreadPool pool(2);
  std::vector<float> y_int8(n * 40), y_float(n * 40), y_ref(n * 40);
  const bool was = Int8ActivationsEnabled();
  SetInt8Activations(true);
  MatMul(q.m, x.data(), n, y_int8.data(), pool);
  SetInt8Activations(false);
  MatMul(q.m, x.data(), n, y_float.data(), pool);
  SetInt8Activations(was);
  MatMulReference(q.m, x.data(), n, y_ref.data(), nullptr);
  const auto want = Reference(q, x, n, nullptr);
  double int8_err = 0, scale = 0;
  for (int64_t i = 0; i < n * 40; ++i) {
    ASSERT_NEAR(y_int8[i], want[i], 1e-5f * (1.0f + std::fabs(want[i])));
    ASSERT_NEAR(y_float[i], y_ref[i], 1e-4f * (1.0f + std::fabs(y_ref[i])));
    int8_err += (y_int8[i] - y_ref[i]) * (y_int8[i] - y_ref[i]);
    scale += y_ref[i] * y_ref[i];
  }
  // The activations' 8-bit rounding costs about a percent, no more.
  EXPECT_LT(std::sqrt(int8_err / scale), 0.03);
  EXPECT_GT(std::sqrt(int8_err / scale), 0.0);
}

}  // namespace
}  // namespace r1
