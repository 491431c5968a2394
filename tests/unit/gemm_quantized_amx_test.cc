// Q8/Q4 products on AMX tiles (QuantizedAmxGemm) against a double-precision sum of the same
// roundings (each weight's code x scale and each activation rounded to BF16), on shapes that are
// not multiples of the 32-row panel, the 16-token tile or the 2048-column chunk; what the two
// roundings cost against the float32 product; and MatMul's choice of it.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/amx.h"
#include "r1/kernels/gemm_bf16.h"
#include "r1/kernels/gemm_int8.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/matvec_int8.h"
#include "r1/kernels/quantize_rows.h"
#include "quant_tiles_util.h"

namespace r1 {
namespace {

using QMatrix = RandomQuantMatrix;

QMatrix Make(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  return MakeRandomQuantMatrix(dtype, rows, cols, seed);
}

float RoundBf16(float v) { return Bf16ToF32(F32ToBf16(v)); }

std::vector<float> Activations(int64_t n, int64_t cols) {
  return RandomActivations(n, cols, 7, 5);
}

// y = sum_c bf16(W[r][c]) * bf16(x[t][c]) in double, with its sum of magnitudes for the bound.
void Reference(const Matrix& w, const std::vector<float>& x, int64_t n, const float* bias,
               std::vector<double>& y, std::vector<double>& magnitude) {
  std::vector<float> row(w.cols);
  y.assign(n * w.rows, 0.0);
  magnitude.assign(n * w.rows, 0.0);
  for (int64_t r = 0; r < w.rows; ++r) {
    w.DequantRow(r, 0, w.cols, row.data());
    for (int64_t t = 0; t < n; ++t) {
      double s = bias ? bias[r] : 0.0, m = 0;
      for (int64_t c = 0; c < w.cols; ++c) {
        const double term = static_cast<double>(RoundBf16(row[c])) * RoundBf16(x[t * w.cols + c]);
        s += term;
        m += std::fabs(term);
      }
      y[t * w.rows + r] = s;
      magnitude[t * w.rows + r] = m;
    }
  }
}

void Check(DType dtype, int64_t rows, int64_t cols, int64_t n, bool with_bias, int threads) {
  QMatrix q = Make(dtype, rows, cols, static_cast<uint32_t>(rows * 31 + cols + n));
  if (!QuantizedAmxGemmApplies(q.m)) GTEST_SKIP() << "no AMX on this CPU";
  const std::vector<float> x = Activations(n, cols);
  std::vector<float> bias(rows);
  for (int64_t r = 0; r < rows; ++r) bias[r] = 0.25f * static_cast<float>(r % 7) - 0.5f;
  const float* b = with_bias ? bias.data() : nullptr;
  std::vector<double> want, magnitude;
  Reference(q.m, x, n, b, want, magnitude);
  // Output rows further apart than the matrix, to check the stride and the untouched gaps.
  const int64_t y_stride = rows + 3;
  std::vector<float> y(n * y_stride, -7.0f);
  ThreadPool pool(threads);
  QuantizedAmxGemm(q.m, x.data(), cols, n, y.data(), y_stride, b, pool);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      // BF16 x BF16 products are exact in float32; only the float32 sums' order and rounding
      // differ from the double reference.
      const double e = want[t * rows + r], bound = 1e-6 * (magnitude[t * rows + r] + 1.0);
      ASSERT_NEAR(y[t * y_stride + r], e, bound)
          << DTypeName(dtype) << " rows " << rows << " cols " << cols << " token " << t << " row "
          << r;
    }
    for (int64_t r = rows; r < y_stride; ++r) ASSERT_EQ(y[t * y_stride + r], -7.0f);
  }
}

TEST(QuantizedAmxGemm, Q8OddShapes) {
  Check(DType::kI8, 77, 96, 21, true, 2);
  Check(DType::kI8, 32, 32, 16, false, 1);
  Check(DType::kI8, 5, 160, 33, true, 2);
}

TEST(QuantizedAmxGemm, Q4OddShapes) {
  Check(DType::kU8, 77, 96, 21, true, 2);
  Check(DType::kU8, 40, 64, 1, false, 1);
  Check(DType::kU8, 5, 160, 33, true, 2);
}

// Rows longer than one 2048-column chunk carry their sums from chunk to chunk.
TEST(QuantizedAmxGemm, RowsLongerThanAChunk) {
  Check(DType::kI8, 45, 2048 + 544, 19, true, 2);
  Check(DType::kU8, 45, 4096 + 32, 40, false, 1);
}

// MatMul takes it from kQuantizedAmxMinTokens tokens with int8 activations on (the reduced
// activation precision the Q8/Q4 products use); with them off, or AMX off, it does not, and the
// two roundings cost about a percent of the float32 product.
TEST(QuantizedAmxGemm, MatMulUsesItFromItsTokenCount) {
  QMatrix q = Make(DType::kI8, 40, 256, 5);
  if (!QuantizedAmxGemmApplies(q.m)) GTEST_SKIP() << "no AMX on this CPU";
  const int64_t n = kQuantizedAmxMinTokens;
  const std::vector<float> x = Activations(n, 256);
  ThreadPool pool(2);
  std::vector<float> y_amx(n * 40), y_direct(n * 40), y_float(n * 40), y_ref(n * 40);
  std::vector<float> y_no_amx(n * 40), y_int8(n * 40);
  const bool was = Int8ActivationsEnabled();
  SetInt8Activations(true);
  MatMul(q.m, x.data(), n, y_amx.data(), pool);
  QuantizedAmxGemm(q.m, x.data(), 256, n, y_direct.data(), 40, nullptr, pool);
  SetAmx(false);
  MatMul(q.m, x.data(), n, y_no_amx.data(), pool);
  SetAmx(true);
  Int8Gemm(q.m, x.data(), 256, n, y_int8.data(), 40, nullptr, pool);
  SetInt8Activations(false);
  MatMul(q.m, x.data(), n, y_float.data(), pool);
  SetInt8Activations(was);
  MatMulReference(q.m, x.data(), n, y_ref.data(), nullptr);
  double amx_err = 0, scale = 0;
  for (int64_t i = 0; i < n * 40; ++i) {
    ASSERT_EQ(y_amx[i], y_direct[i]);
    ASSERT_EQ(y_no_amx[i], y_int8[i]);
    ASSERT_NEAR(y_float[i], y_ref[i], 1e-4f * (1.0f + std::fabs(y_ref[i])));
    amx_err += (y_amx[i] - y_ref[i]) * (y_amx[i] - y_ref[i]);
    scale += y_ref[i] * y_ref[i];
  }
  EXPECT_LT(std::sqrt(amx_err / scale), 0.01);
  EXPECT_GT(std::sqrt(amx_err / scale), 0.0);
}

}  // namespace
}  // namespace r1
