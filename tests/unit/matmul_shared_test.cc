// MatMulShared (several products of one input in one parallel region) gives exactly what a
// MatMul per matrix gives: mixed formats (an int8-activation Q8 matrix beside BF16 and F32 ones),
// row counts that split chunks across matrix boundaries, strides and biases, at token counts on
// both sides of kGemmMinTokens. MatVecRowRange gives MatMul's values for any row range.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/quantize_rows.h"
#include "quant_tiles_util.h"

namespace r1 {
namespace {

TEST(MatMulShared, EqualsOneMatMulPerMatrix) {
  const int64_t cols = 192;
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  // Q8 [37 rows], BF16 [5 rows], F32 [70 rows].
  std::vector<float> dense(70 * cols);
  for (float& v : dense) v = nd(rng);
  std::vector<int8_t> q8(37 * cols);
  std::vector<uint16_t> q8_scales(37 * (cols / 32)), bf16(5 * cols);
  for (int64_t r = 0; r < 37; ++r)
    QuantizeRowQ8(dense.data() + r * cols, cols, q8.data() + r * cols, q8_scales.data() + r * (cols / 32));
  for (int64_t i = 0; i < 5 * cols; ++i) bf16[i] = F32ToBf16(dense[i]);
  Matrix a, b, c;
  a.name = "q8";
  a.dtype = DType::kI8;
  a.rows = 37;
  a.cols = cols;
  std::vector<uint8_t> q8_tiles;
  PackTiles(a, std::vector<uint8_t>(q8.begin(), q8.end()), q8_scales, q8_tiles);
  b.name = "bf16";
  b.dtype = DType::kBF16;
  b.rows = 5;
  b.cols = cols;
  b.data = reinterpret_cast<const uint8_t*>(bf16.data());
  c.name = "f32";
  c.dtype = DType::kF32;
  c.rows = 70;
  c.cols = cols;
  c.data = reinterpret_cast<const uint8_t*>(dense.data());
  std::vector<float> bias(70);
  for (float& v : bias) v = nd(rng);
  ThreadPool pool(2);
  for (int64_t n : {int64_t{1}, int64_t{3}, kGemmMinTokens + 1}) {
    std::vector<float> x(n * (cols + 4));
    for (float& v : x) v = nd(rng);
    const int64_t xs = cols + 4;
    // Outputs interleaved in one buffer, as q/k/v share the cache row layout.
    const int64_t ys = 37 + 5 + 70 + 3;
    std::vector<float> shared(n * ys, -1.0f), alone(n * ys, -1.0f);
    const MatMulJob jobs[] = {{&a, shared.data(), ys, bias.data()},
                              {&b, shared.data() + 37, ys},
                              {&c, shared.data() + 42, ys, bias.data()}};
    MatMulShared(jobs, x.data(), xs, n, pool);
    MatMul(a, x.data(), xs, n, alone.data(), ys, bias.data(), pool);
    MatMul(b, x.data(), xs, n, alone.data() + 37, ys, nullptr, pool);
    MatMul(c, x.data(), xs, n, alone.data() + 42, ys, bias.data(), pool);
    for (size_t i = 0; i < shared.size(); ++i) ASSERT_EQ(shared[i], alone[i]) << "n " << n << " at " << i;
    if (n != 1) continue;
    // MatVecRowRange: any row range on the calling thread, the same values MatMul gives.
    for (const Matrix* w : {&a, &b, &c}) {
      std::vector<float> full(w->rows);
      MatMul(*w, x.data(), xs, 1, full.data(), w->rows, nullptr, pool);
      const std::pair<int64_t, int64_t> ranges[] = {{0, w->rows}, {1, 4}, {w->rows - 2, w->rows}};
      for (auto [r0, r1] : ranges) {
        std::vector<float> part(r1 - r0 + 1, -7.0f);
        MatVecRowRange(*w, r0, r1, x.data(), part.data());
        for (int64_t r = r0; r < r1; ++r)
          ASSERT_EQ(part[r - r0], full[r]) << w->name << " row " << r;
        ASSERT_EQ(part[r1 - r0], -7.0f) << w->name << ": wrote past the range";
      }
    }
  }
}

TEST(MatMulShared, UnequalColumnsThrow) {
  Matrix a, b;
  std::vector<float> w(64, 0.0f), x(64), y(64);
  a.rows = 2;
  a.cols = 32;
  a.data = reinterpret_cast<const uint8_t*>(w.data());
  b = a;
  b.cols = 16;
  ThreadPool pool(2);
  const MatMulJob jobs[] = {{&a, y.data(), 2}, {&b, y.data(), 2}};
  EXPECT_THROW(MatMulShared(jobs, x.data(), 32, 1, pool), std::exception);
}

}  // namespace
}  // namespace r1
