// The int8-activation decode path for Q8/Q4 weights: the activation layout, the VNNI kernel
// against a scalar computation of the same integer arithmetic (tight), against the float
// reference (bounded by the activations' 8-bit rounding), and the switch back to the float path.
#include "r1/kernels/matvec_int8.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/quantize_rows.h"
#include "quant_tiles_util.h"

namespace r1 {
namespace {

struct QMatrix {
  std::vector<uint8_t> codes;    // rows as the row quantizers write them
  std::vector<uint16_t> scales;  // [rows, blocks]
  std::vector<uint8_t> tiles;    // what m reads
  std::vector<float> dense;  // the dequantized values
  Matrix m;
};

// Random normal weights encoded by the library's quantizer; for Q8, a few codes forced to -128
// (files may hold them even though the quantizer never writes them).
QMatrix Make(DType dtype, int64_t rows, int64_t cols, uint32_t seed) {
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
    if (dtype == DType::kI8) {
      QuantizeRowQ8(row.data(), cols, reinterpret_cast<int8_t*>(q.codes.data()) + r * cols,
                    q.scales.data() + r * blocks);
      if (r % 3 == 0) reinterpret_cast<int8_t*>(q.codes.data())[r * cols + (r % cols)] = -128;
    } else {
      QuantizeRowQ4(row.data(), cols, q.codes.data() + r * rb, q.scales.data() + r * blocks);
    }
  }
  PackTiles(q.m, q.codes, q.scales, q.tiles);
  q.dense.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) q.m.DequantRow(r, 0, cols, q.dense.data() + r * cols);
  return q;
}

std::vector<float> Activations(int64_t n, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(n * cols);
  for (float& v : x) v = nd(rng);
  // An outlier (as in real hidden states) and an all-zero block.
  x[3] = 40.0f;
  if (cols >= 64) std::fill(x.begin() + 32, x.begin() + 64, 0.0f);
  return x;
}

TEST(Int8Activations, LayoutAndRounding) {
  for (int64_t cols : {32, 64, 96, 128, 192, 320, 608}) {
    auto x = Activations(1, cols, 1);
    Int8Activations q;
    QuantizeActivations(x.data(), cols, q);
    const int64_t blocks = cols / 32, runs = (blocks + 15) / 16;
    ASSERT_EQ(q.dx.size(), static_cast<size_t>(runs * 16));
    ASSERT_EQ(q.q8_lanes.size(), static_cast<size_t>(runs * 512));
    ASSERT_EQ(q.q4_lanes.size(), static_cast<size_t>(runs * 512));
    EXPECT_FLOAT_EQ(q.dx[0], 40.0f / 127.0f);
    EXPECT_EQ(q.dx[1], 0.0f);
    for (int64_t b = 0; b < blocks; ++b) {
      float amax = 0;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
      EXPECT_EQ(q.dx[b], amax / 127.0f) << cols << " " << b;
    }
    for (int64_t c = 0; c < cols; ++c) {
      // Bit-identical to the scalar definition.
      const float d = q.dx[c / 32];
      const float inv = d > 0 ? 1.0f / d : 0.0f;
      const int want = static_cast<int>(std::clamp(std::nearbyint(x[c] * inv), -127.0f, 127.0f));
      EXPECT_EQ(q.code[c], want) << cols << " " << c;
      if (d > 0) {
        EXPECT_LE(std::fabs(q.code[c] * d - x[c]), 0.5f * d * 1.0001f);
      }
    }
    // Lane layouts, written out from their definition in matvec_int8.h; blocks past the row
    // (lanes of a short last run) hold zeros, as do their scales and biases.
    for (int64_t b = 0; b < runs * 16; ++b) {
      const int64_t run = b / 16, lane = b % 16;
      int sum = 0;
      for (int j = 0; j < 32; ++j) {
        const int want = b < blocks ? q.code[b * 32 + j] : 0;
        sum += want;
        const int e = j % 16;
        const int64_t q8_at = run * 512 + (j / 4) * 64 + lane * 4 + j % 4;
        const int64_t q4_at = run * 512 + (e / 4) * 128 + (j < 16 ? 0 : 64) + lane * 4 + e % 4;
        EXPECT_EQ(q.q8_lanes[q8_at], want) << cols << " " << b << " " << j;
        EXPECT_EQ(q.q4_lanes[q4_at], want) << cols << " " << b << " " << j;
      }
      EXPECT_EQ(q.q8_bias[b], -128 * sum);
      EXPECT_EQ(q.q4_bias[b], -8 * sum);
      if (b >= blocks) {
        EXPECT_EQ(q.dx[b], 0.0f);
      }
    }
  }
}

// Quantizing into a buffer that held a longer row leaves no stale codes in the padding.
TEST(Int8Activations, ReusedBufferShrinks) {
  Int8Activations q;
  auto big = Activations(1, 1024, 2), small = Activations(1, 608, 3);
  QuantizeActivations(big.data(), 1024, q);
  QuantizeActivations(small.data(), 608, q);  // 19 blocks: the second run has 3
  ASSERT_EQ(q.q8_lanes.size(), 1024u);
  for (int k = 0; k < 512; ++k) {
    if (k % 64 >= 12) {
      EXPECT_EQ(q.q8_lanes[512 + k], 0) << k;
      EXPECT_EQ(q.q4_lanes[512 + k], 0) << k;
    }
  }
  for (int b = 19; b < 32; ++b) {
    EXPECT_EQ(q.q8_bias[b], 0);
    EXPECT_EQ(q.q4_bias[b], 0);
    EXPECT_EQ(q.dx[b], 0.0f);
  }
}

class Int8MatVec : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    QMatrix probe = Make(GetParam(), 1, 64, 1);
    if (!Int8MatVecApplies(probe.m)) GTEST_SKIP() << "CPU without AVX512-VNNI";
  }
  void TearDown() override { SetInt8Activations(true); }
};

TEST_P(Int8MatVec, MatchesIntegerReferenceOnOddShapes) {
  ASSERT_TRUE(Int8ActivationsEnabled());
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    for (int64_t cols : {32, 64, 96, 192, 320, 544, 576, 640, 704, 1536}) {
      for (int64_t rows : {1, 3, 17, 33, 130}) {
        QMatrix q = Make(GetParam(), rows, cols, static_cast<uint32_t>(rows * cols));
        for (int64_t n : {1, 2, 3, 4, 5, 11}) {
          auto x = Activations(n, cols, static_cast<uint32_t>(n + cols));
          std::vector<float> bias(rows);
          for (int64_t r = 0; r < rows; ++r) bias[r] = 0.25f * static_cast<float>(r % 5);
          const float* bias_or_null = n % 2 ? bias.data() : nullptr;
          std::vector<float> got(n * rows), want(n * rows), exact(n * rows);
          MatMul(q.m, x.data(), n, got.data(), pool, bias_or_null);
          Int8MatVecReference(q.m, x.data(), n, want.data(), bias_or_null);
          MatMulReference(q.m, x.data(), n, exact.data(), bias_or_null);
          for (int64_t t = 0; t < n; ++t) {
            // Tokens taken together (batched decode) give each token's own result to the bit.
            std::vector<float> alone(rows);
            MatMul(q.m, x.data() + t * cols, 1, alone.data(), pool, bias_or_null);
            for (int64_t r = 0; r < rows; ++r)
              ASSERT_EQ(got[t * rows + r], alone[r]) << "rows " << rows << " cols " << cols
                                                      << " n " << n << " t " << t << " r " << r;
            std::vector<float> amax(cols / 32, 0.0f);
            for (int64_t c = 0; c < cols; ++c)
              amax[c / 32] = std::max(amax[c / 32], std::fabs(x[t * cols + c]));
            for (int64_t r = 0; r < rows; ++r) {
              const double b = bias_or_null ? bias[r] : 0.0;
              double mag = std::fabs(b);
              for (int64_t c = 0; c < cols; ++c)
                mag += std::fabs(double(q.dense[r * cols + c]) * x[t * cols + c]);
              const float g = got[t * rows + r];
              ASSERT_NEAR(g, want[t * rows + r], 1e-5 * mag + 1e-6)
                  << "rows " << rows << " cols " << cols << " n " << n << " t " << t << " r " << r;
              // The activations' rounding: each within half a step of its block's scale.
              double rounding = 0;
              for (int64_t c = 0; c < cols; ++c)
                rounding += std::fabs(q.dense[r * cols + c]) * 0.5 * amax[c / 32] / 127.0;
              ASSERT_NEAR(g, exact[t * rows + r], 1.001 * rounding + 1e-5 * mag + 1e-6)
                  << "vs float: rows " << rows << " cols " << cols << " n " << n;
            }
          }
        }
      }
    }
  }
}

// Extreme codes: Q8 weights of -128 and 127, Q4 nibbles of 0 and 15, activation codes of +-127
// (every value of a block is +-max), F16 scales of zero and large; exact integer sums must give
// the reference's result.
TEST_P(Int8MatVec, ExtremeCodesAndZeroScales) {
  ThreadPool pool(2);
  std::mt19937 rng(7);
  for (int64_t cols : {64, 96, 192, 320, 544, 576, 704, 1536}) {
    for (int64_t rows : {1, 3, 17, 33}) {
      QMatrix q;
      q.m.dtype = GetParam();
      q.m.rows = rows;
      q.m.cols = cols;
      const int64_t blocks = cols / 32, rb = PlainRowBytes(GetParam(), cols);
      q.codes.resize(rows * rb);
      q.scales.resize(rows * blocks);
      for (int64_t i = 0; i < rows * rb; ++i) {
        const uint32_t bits = rng();
        if (GetParam() == DType::kI8)
          q.codes[i] = (bits & 1) ? 0x80 : 0x7F;  // -128 or 127
        else
          q.codes[i] = static_cast<uint8_t>(((bits & 1) ? 0x0F : 0x00) | ((bits & 2) ? 0xF0 : 0x00));
      }
      for (int64_t i = 0; i < rows * blocks; ++i)
        q.scales[i] = i % 7 == 3 ? 0 : F32ToF16((rng() % 2 ? 1.0f : -1.0f) * (0.5f + (rng() % 100)));
      PackTiles(q.m, q.codes, q.scales, q.tiles);
      for (int64_t n : {1, 3}) {
        std::vector<float> x(n * cols);
        for (int64_t i = 0; i < n * cols; ++i) {
          const float a = 0.5f + static_cast<float>((i / 32) % 4);  // one magnitude per block
          x[i] = rng() % 2 ? a : -a;
        }
        std::vector<float> got(n * rows), want(n * rows);
        MatMul(q.m, x.data(), n, got.data(), pool);
        Int8MatVecReference(q.m, x.data(), n, want.data(), nullptr);
        for (int64_t i = 0; i < n * rows; ++i) {
          double mag = 0;
          const int64_t t = i / rows, r = i % rows;
          for (int64_t b = 0; b < blocks; ++b)
            mag += 128.0 * 32 * std::fabs(F16ToF32(q.scales[r * blocks + b])) *
                   std::fabs(x[t * cols + b * 32]);
          ASSERT_NEAR(got[i], want[i], 1e-6 * mag + 1e-6)
              << "rows " << rows << " cols " << cols << " n " << n << " i " << i;
        }
      }
    }
  }
}

TEST_P(Int8MatVec, SwitchedOffGivesTheFloatPath) {
  SetInt8Activations(false);
  ThreadPool pool(2);
  QMatrix q = Make(GetParam(), 33, 256, 4);
  auto x = Activations(3, 256, 5);
  std::vector<float> got(3 * 33), want(3 * 33);
  MatMul(q.m, x.data(), 3, got.data(), pool);
  MatMulReference(q.m, x.data(), 3, want.data(), nullptr);
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-4f) << i;
}

INSTANTIATE_TEST_SUITE_P(Formats, Int8MatVec, ::testing::Values(DType::kI8, DType::kU8),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(info.param == DType::kI8 ? "Q8" : "Q4");
                         });

}  // namespace
}  // namespace r1
