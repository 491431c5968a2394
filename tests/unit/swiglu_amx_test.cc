// SwiGLU's hidden activations in one pass (MatMulSwiGlu, SwiGluAmx on AMX CPUs) against the two
// products and SiluMul apart, and the whole MLP (SwiGluMlp, hidden activations straight into the
// down projection's planes) against those steps apart: the same kernels, roundings and
// activation function, so the same bits, on shapes that are not multiples of the 32-row panel,
// the 16-token tile or the 2048-column chunk, in Q8, Q4 and BF16, with one and two threads, with
// the activations' one BF16 term and with both (exact scope), and below the token counts where
// the fused passes run.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <utility>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/amx.h"
#include "r1/kernels/gemm_bf16.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/matvec_int8.h"
#include "r1/kernels/ops.h"
#include "r1/kernels/quantize_rows.h"
#include "quant_tiles_util.h"

namespace r1 {
namespace {

struct TestMatrix {
  std::vector<uint8_t> bytes;
  Matrix m;
};

TestMatrix Make(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
  TestMatrix q;
  if (dtype != DType::kBF16) {
    RandomQuantMatrix r = MakeRandomQuantMatrix(dtype, rows, cols, seed);
    q.bytes = std::move(r.tiles);
    q.m = r.m;
    q.m.data = q.bytes.data();
    return q;
  }
  q.m.dtype = dtype;
  q.m.rows = rows;
  q.m.cols = cols;
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  q.bytes.resize(rows * cols * 2);
  auto* values = reinterpret_cast<uint16_t*>(q.bytes.data());
  for (int64_t i = 0; i < rows * cols; ++i) values[i] = F32ToBf16(nd(rng));
  q.m.data = q.bytes.data();
  return q;
}

std::vector<float> Activations(int64_t n, int64_t cols) {
  return RandomActivations(n, cols, 13, 3);
}

// MatMulSwiGlu into rows further apart than the matrix (gaps untouched) against MatMul, MatMul
// and SiluMul.
void Check(DType dtype, int64_t rows, int64_t cols, int64_t n, int threads) {
  TestMatrix gate = Make(dtype, rows, cols, static_cast<uint32_t>(rows * 31 + cols + n));
  TestMatrix up = Make(dtype, rows, cols, static_cast<uint32_t>(rows * 17 + cols + n + 1));
  gate.m.name = "gate";
  up.m.name = "up";
  const std::vector<float> x = Activations(n, cols);
  ThreadPool pool(threads);
  const int64_t y_stride = rows + 3;
  std::vector<float> y(n * y_stride, -7.0f), g(n * rows), u(n * rows);
  MatMulSwiGlu(gate.m, up.m, x.data(), cols, n, y.data(), y_stride, pool);
  MatMul(gate.m, x.data(), n, g.data(), pool);
  MatMul(up.m, x.data(), n, u.data(), pool);
  for (int64_t t = 0; t < n; ++t) {
    SiluMul(g.data() + t * rows, u.data() + t * rows, rows);
    for (int64_t r = 0; r < rows; ++r)
      ASSERT_EQ(y[t * y_stride + r], g[t * rows + r])
          << DTypeName(dtype) << " rows " << rows << " cols " << cols << " tokens " << n
          << " token " << t << " row " << r;
    for (int64_t r = rows; r < y_stride; ++r) ASSERT_EQ(y[t * y_stride + r], -7.0f);
  }
}

// SwiGluMlp (hidden activations straight into the down projection's planes where all three
// take AMX) against MatMulSwiGlu and MatMul of down: the same bits, the gaps between output rows
// untouched.
void CheckMlp(DType dtype, DType down_dtype, int64_t hidden, int64_t ffn, int64_t n, int threads) {
  TestMatrix gate = Make(dtype, ffn, hidden, static_cast<uint32_t>(ffn + hidden + n));
  TestMatrix up = Make(dtype, ffn, hidden, static_cast<uint32_t>(ffn + hidden + n + 1));
  TestMatrix down = Make(down_dtype, hidden, ffn, static_cast<uint32_t>(ffn + hidden + n + 2));
  const std::vector<float> x = Activations(n, hidden);
  ThreadPool pool(threads);
  const int64_t y_stride = hidden + 5;
  std::vector<float> y(n * y_stride, -7.0f), h(n * ffn), want(n * hidden);
  SwiGluMlp(gate.m, up.m, down.m, x.data(), hidden, n, y.data(), y_stride, pool);
  MatMulSwiGlu(gate.m, up.m, x.data(), hidden, n, h.data(), ffn, pool);
  MatMul(down.m, h.data(), n, want.data(), pool);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < hidden; ++r)
      ASSERT_EQ(y[t * y_stride + r], want[t * hidden + r])
          << DTypeName(dtype) << "/" << DTypeName(down_dtype) << " hidden " << hidden << " ffn "
          << ffn << " tokens " << n << " token " << t << " row " << r;
    for (int64_t r = hidden; r < y_stride; ++r) ASSERT_EQ(y[t * y_stride + r], -7.0f);
  }
}

// The fused pass itself against a double-precision SwiGLU of the same roundings' products: a
// check that the up projection's results meet the gate's of the same rows and tokens.
void CheckAgainstDouble(DType dtype, int64_t rows, int64_t cols, int64_t n) {
  TestMatrix gate = Make(dtype, rows, cols, 3);
  TestMatrix up = Make(dtype, rows, cols, 4);
  const std::vector<float> x = Activations(n, cols);
  ThreadPool pool(2);
  std::vector<float> y(n * rows);
  SwiGluAmx(gate.m, up.m, x.data(), cols, n, y.data(), rows, pool);
  std::vector<float> gr(cols), ur(cols);
  for (int64_t r = 0; r < rows; ++r) {
    gate.m.DequantRow(r, 0, cols, gr.data());
    up.m.DequantRow(r, 0, cols, ur.data());
    for (int64_t t = 0; t < n; ++t) {
      double a = 0, b = 0, magnitude = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const double xc = Bf16ToF32(F32ToBf16(x[t * cols + c]));
        a += Bf16ToF32(F32ToBf16(gr[c])) * xc;
        b += Bf16ToF32(F32ToBf16(ur[c])) * xc;
        magnitude += std::fabs(ur[c] * xc) + std::fabs(gr[c] * xc);
      }
      const double want = a / (1.0 + std::exp(-a)) * b;
      ASSERT_NEAR(y[t * rows + r], want, 1e-5 * magnitude * (1.0 + std::fabs(b) + std::fabs(a)))
          << DTypeName(dtype) << " token " << t << " row " << r;
    }
  }
}

class SwiGlu : public ::testing::Test {
 protected:
  void SetUp() override {
    int8_ = Int8ActivationsEnabled();
    rounded_ = Bf16RoundedActivations();
    SetInt8Activations(true);
  }
  void TearDown() override {
    SetInt8Activations(int8_);
    SetBf16RoundedActivations(rounded_);
  }
  bool int8_ = false, rounded_ = false;
};

TEST_F(SwiGlu, QuantizedOddShapesMatchTheProductsApart) {
  for (DType dtype : {DType::kI8, DType::kU8}) {
    Check(dtype, 77, 96, 33, 2);
    Check(dtype, 45, 2048 + 544, 40, 1);  // rows longer than one chunk
    Check(dtype, 5, 160, 65, 2);
    Check(dtype, 77, 96, kQuantizedAmxMinTokens - 1, 2);  // below the fused pass: apart
    Check(dtype, 40, 64, 1, 2);                          // decode
  }
}

TEST_F(SwiGlu, Bf16OddShapesMatchTheProductsApart) {
  for (bool rounded : {false, true}) {
    SetBf16RoundedActivations(rounded);
    Check(DType::kBF16, 77, 98, 21, 2);
    Check(DType::kBF16, 33, 4096 + 34, 17, 1);
    Check(DType::kBF16, 77, 98, 3, 2);
  }
}

TEST_F(SwiGlu, ExactScopeKeepsBothTermsInBoth) {
  const ExactBf16Activations exact;
  Check(DType::kI8, 77, 96, 33, 2);
  SetBf16RoundedActivations(true);
  Check(DType::kBF16, 77, 98, 21, 2);
}

TEST_F(SwiGlu, MlpMatchesTheStepsApart) {
  for (DType dtype : {DType::kI8, DType::kU8}) {
    CheckMlp(dtype, dtype, 96, 160, 33, 2);            // 5 hidden panels
    CheckMlp(dtype, dtype, 2048 + 544, 96, 40, 1);     // gate/up rows longer than a chunk
    CheckMlp(dtype, dtype, 64, 2048 + 544, 37, 2);     // down rows longer than a chunk
    CheckMlp(dtype, dtype, 96, 160, kQuantizedAmxMinTokens - 1, 2);  // apart
    CheckMlp(dtype, dtype, 96, 160, 1, 2);                           // decode
  }
  CheckMlp(DType::kU8, DType::kI8, 96, 160, 45, 2);  // a Q8 down projection after Q4
  for (bool rounded : {false, true}) {
    SetBf16RoundedActivations(rounded);
    CheckMlp(DType::kBF16, DType::kBF16, 98, 78, 21, 2);  // the last hidden panel 14 rows
    CheckMlp(DType::kBF16, DType::kBF16, 34, 2048 + 98, 17, 1);
  }
  // BF16 gate/up (from 12 tokens) before a Q8 down projection (from 32): apart at 21 tokens.
  CheckMlp(DType::kBF16, DType::kI8, 98, 96, 21, 2);
  CheckMlp(DType::kBF16, DType::kI8, 98, 96, 40, 2);
  const ExactBf16Activations exact;
  CheckMlp(DType::kI8, DType::kI8, 96, 160, 33, 2);
  CheckMlp(DType::kBF16, DType::kBF16, 98, 78, 21, 2);
}

TEST_F(SwiGlu, FusedPassAgainstDouble) {
  TestMatrix probe = Make(DType::kI8, 32, 32, 1);
  if (!QuantizedAmxGemmApplies(probe.m)) GTEST_SKIP() << "no AMX on this CPU";
  CheckAgainstDouble(DType::kI8, 45, 2048 + 544, 37);
  CheckAgainstDouble(DType::kU8, 77, 96, 33);
  SetAmx(false);
  EXPECT_THROW(CheckAgainstDouble(DType::kI8, 45, 96, 37), Error);
  SetAmx(true);
}

}  // namespace
}  // namespace r1
