// The fast MatMul (runtime ISA dispatch, tiled over tokens, lane accumulators) against the plain
// MatMulReference on odd shapes and every stored weight type, plus exact decoding checks for the
// bit-manipulation loaders and the Matrix row helpers.
#include "r1/kernels/matmul.h"
#include "r1/kernels/gemm_bf16.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <span>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/matrix.h"
#include "r1/kernels/simd.h"

namespace r1 {
namespace {

// A Matrix together with the storage it points into.
struct OwnedMatrix {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  Matrix m;
};

// Random weights of wide dynamic range for `dtype`, encoded with the library's own converters.
// FP8 gets random positive block scales of shape [ceil(rows/br), ceil(cols/bc)].
OwnedMatrix MakeMatrix(DType dtype, int64_t rows, int64_t cols, std::mt19937& rng,
                       int block_rows = 128, int block_cols = 128) {
  OwnedMatrix o;
  o.m.name = "test.weight";
  o.m.dtype = dtype;
  o.m.rows = rows;
  o.m.cols = cols;
  o.m.block_rows = block_rows;
  o.m.block_cols = block_cols;
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> sign(0, 1);
  // Exponent ranges reach the subnormals of F16 and FP8 and, for FP8, saturation at 448.
  int emin = -8, emax = 8;
  if (dtype == DType::kF16) {
    emin = -26;
    emax = 14;
  } else if (dtype == DType::kF8E4M3) {
    emin = -11;
    emax = 9;
  }
  std::uniform_int_distribution<int> expo(emin, emax);
  const size_t n = static_cast<size_t>(rows * cols);
  o.bytes.resize(n * DTypeSize(dtype));
  for (size_t i = 0; i < n; ++i) {
    const float v = (sign(rng) ? -1.0f : 1.0f) * std::ldexp(mant(rng), expo(rng));
    switch (dtype) {
      case DType::kF32:
        std::memcpy(o.bytes.data() + 4 * i, &v, 4);
        break;
      case DType::kBF16: {
        const uint16_t b = F32ToBf16(v);
        std::memcpy(o.bytes.data() + 2 * i, &b, 2);
        break;
      }
      case DType::kF16: {
        const uint16_t h = F32ToF16(v);
        std::memcpy(o.bytes.data() + 2 * i, &h, 2);
        break;
      }
      case DType::kF8E4M3:
        o.bytes[i] = F32ToFp8E4M3(v);
        break;
      default:
        ADD_FAILURE() << "unexpected dtype";
    }
  }
  if (dtype == DType::kF8E4M3) {
    const int64_t sr = (rows + block_rows - 1) / block_rows;
    const int64_t sc = (cols + block_cols - 1) / block_cols;
    std::uniform_real_distribution<float> sd(0.01f, 3.0f);
    o.scales.resize(static_cast<size_t>(sr * sc));
    for (float& s : o.scales) s = sd(rng);
    o.m.scale = o.scales.data();
  }
  o.m.data = o.bytes.data();
  return o;
}

// W[r][c] decoded independently of the library's kernels (table / bit widening / F16ToF32).
float ManualWeight(const OwnedMatrix& o, int64_t r, int64_t c) {
  const size_t i = static_cast<size_t>(r * o.m.cols + c);
  switch (o.m.dtype) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, o.bytes.data() + 4 * i, 4);
      return f;
    }
    case DType::kBF16: {
      uint16_t b;
      std::memcpy(&b, o.bytes.data() + 2 * i, 2);
      const uint32_t bits = static_cast<uint32_t>(b) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      return f;
    }
    case DType::kF16: {
      uint16_t h;
      std::memcpy(&h, o.bytes.data() + 2 * i, 2);
      return F16ToF32(h);
    }
    case DType::kF8E4M3: {
      const float s = o.scales[static_cast<size_t>((r / o.m.block_rows) * o.m.scale_cols() +
                                                   c / o.m.block_cols)];
      return kFp8E4M3ToF32[o.bytes[i]] * s;
    }
    default:
      return NAN;
  }
}

std::vector<float> RandomVector(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

struct Variant {
  const char* label;
  DType dtype;
  int block_rows, block_cols;
};

const Variant kVariants[] = {
    {"F32", DType::kF32, 128, 128},
    {"BF16", DType::kBF16, 128, 128},
    {"F16", DType::kF16, 128, 128},
    {"F8_E4M3_128x128", DType::kF8E4M3, 128, 128},
    {"F8_E4M3_32x16", DType::kF8E4M3, 32, 16},
    // Blocks that are not a multiple of the vector width: scalar tails inside every row.
    {"F8_E4M3_7x20", DType::kF8E4M3, 7, 20},
};

// Checks MatMul (contiguous and strided) against the double-precision reference for one shape,
// with and without bias; returns the number of mismatches (the first few are reported).
int CheckShape(const Variant& var, ThreadPool& pool, int64_t rows, int64_t cols,
               std::span<const int64_t> token_counts, std::mt19937& rng, int failures) {
  constexpr float kSentinel = -12345.0f;
  OwnedMatrix w = MakeMatrix(var.dtype, rows, cols, rng, var.block_rows, var.block_cols);
  const std::vector<float> bias = RandomVector(rows, rng);
  for (int64_t n : token_counts) {
    const std::vector<float> x = RandomVector(static_cast<size_t>(n * cols), rng);
    // Strided copy of x with garbage in the gaps (NaN would poison a kernel that reads them).
    const int64_t xs = cols + 3, ys = rows + 5;
    std::vector<float> xw(static_cast<size_t>(n * xs), std::nanf(""));
    for (int64_t t = 0; t < n; ++t) std::memcpy(&xw[t * xs], &x[t * cols], cols * sizeof(float));
    // |w*x| summed per (token, row): the scale of the rounding error either side may make.
    std::vector<double> mag(static_cast<size_t>(n * rows), 0.0);
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) {
        const double wv = std::fabs(static_cast<double>(ManualWeight(w, r, c)));
        for (int64_t t = 0; t < n; ++t) mag[t * rows + r] += wv * std::fabs(x[t * cols + c]);
      }
    for (int with_bias = 0; with_bias < 2; ++with_bias) {
      const float* b = with_bias ? bias.data() : nullptr;
      std::vector<float> ref(static_cast<size_t>(n * rows));
      MatMulReference(w.m, x.data(), n, ref.data(), b);
      // Contiguous overload.
      std::vector<float> y(static_cast<size_t>(n * rows), kSentinel);
      MatMul(w.m, x.data(), n, y.data(), pool, b);
      // Strided overload.
      std::vector<float> yw(static_cast<size_t>(n * ys), kSentinel);
      MatMul(w.m, xw.data(), xs, n, yw.data(), ys, b, pool);
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          const double m = mag[t * rows + r] + (b ? std::fabs(b[r]) : 0.0);
          const double tol = 1e-5 * m + 1e-30;
          const float want = ref[t * rows + r];
          const float got = y[t * rows + r];
          const float got_strided = yw[t * ys + r];
          const bool ok = std::isfinite(want) && std::fabs(got - want) <= tol &&
                          std::fabs(got_strided - want) <= tol;
          if (!ok && ++failures <= 10) {
            ADD_FAILURE() << var.label << " threads=" << pool.size() << " rows=" << rows
                          << " cols=" << cols << " n=" << n << " bias=" << with_bias
                          << " t=" << t << " r=" << r << ": ref " << want << " fast " << got
                          << " strided " << got_strided << " tol " << tol;
          }
        }
        for (int64_t r = rows; r < ys; ++r) {
          if (yw[t * ys + r] != kSentinel && ++failures <= 10) {
            ADD_FAILURE() << var.label << " rows=" << rows << " cols=" << cols << " n=" << n
                          << ": wrote into the y stride gap at t=" << t << " r=" << r;
          }
        }
      }
    }
  }
  return failures;
}

class MatMulVsReferenceTest : public ::testing::TestWithParam<std::tuple<Variant, int>> {};

TEST_P(MatMulVsReferenceTest, OddShapesBiasAndStrides) {
  const Variant& var = std::get<0>(GetParam());
  ThreadPool pool(std::get<1>(GetParam()));
  std::mt19937 rng(1234 + static_cast<int>(var.dtype) * 7 + var.block_cols);
  const int64_t kRows[] = {1, 3, 17, 129};
  const int64_t kCols[] = {1, 5, 15, 16, 17, 63, 64, 65, 127, 129, 300};
  const int64_t kTokens[] = {1, 2, 3, 4, 5, 9};
  int failures = 0;
  for (int64_t rows : kRows)
    for (int64_t cols : kCols) failures = CheckShape(var, pool, rows, cols, kTokens, rng, failures);
  EXPECT_EQ(failures, 0) << "(ISA " << IsaName(DetectIsa()) << ")";
}

// Rows long enough that the tokens' activations (tokens x columns x 4 bytes) pass 20 KiB: the
// AVX-512 kernel walks blocks of 16 rows 512 columns at a time (RowsInSegments in matmul.cc),
// so a row's sum is split across segments and a block's last rows prefetch into the next block.
// Shapes: one token past 5120 columns; 4 tokens past 1280; row counts across block boundaries;
// column counts that leave a partial last segment and a scalar tail.
TEST_P(MatMulVsReferenceTest, LongRowsInColumnSegments) {
  const Variant& var = std::get<0>(GetParam());
  ThreadPool pool(std::get<1>(GetParam()));
  std::mt19937 rng(99 + static_cast<int>(var.dtype) * 7 + var.block_cols);
  const int64_t kRows[] = {1, 15, 33};
  const int64_t kCols[] = {1283, 5121, 6155};
  const int64_t kTokens[] = {1, 3, 4, 6};
  int failures = 0;
  for (int64_t rows : kRows)
    for (int64_t cols : kCols) failures = CheckShape(var, pool, rows, cols, kTokens, rng, failures);
  EXPECT_EQ(failures, 0) << "(ISA " << IsaName(DetectIsa()) << ")";
}

INSTANTIATE_TEST_SUITE_P(
    AllDTypes, MatMulVsReferenceTest,
    ::testing::Combine(::testing::ValuesIn(kVariants), ::testing::Values(1, 3)),
    [](const ::testing::TestParamInfo<MatMulVsReferenceTest::ParamType>& info) {
      return std::string(std::get<0>(info.param).label) + "_threads" +
             std::to_string(std::get<1>(info.param));
    });

TEST(MatMulTest, LargeEnoughToSplitAcrossThreads) {
  // 1000 rows x 300 cols x 1 token: grain 218 rows, so a 3-thread pool runs several chunks.
  std::mt19937 rng(99);
  ThreadPool pool(3);
  for (const Variant& var : kVariants) {
    OwnedMatrix w = MakeMatrix(var.dtype, 1000, 300, rng, var.block_rows, var.block_cols);
    const std::vector<float> x = RandomVector(300, rng);
    std::vector<float> ref(1000), y(1000);
    MatMulReference(w.m, x.data(), 1, ref.data(), nullptr);
    MatMul(w.m, x.data(), 1, y.data(), pool);
    for (int r = 0; r < 1000; ++r) {
      double mag = 0;
      for (int c = 0; c < 300; ++c) mag += std::fabs(ManualWeight(w, r, c) * x[c]);
      ASSERT_NEAR(y[r], ref[r], 1e-5 * mag + 1e-30) << var.label << " row " << r;
    }
  }
}

TEST(MatMulTest, ZeroTokensOrRowsWritesNothing) {
  std::mt19937 rng(5);
  ThreadPool pool(2);
  OwnedMatrix w = MakeMatrix(DType::kBF16, 4, 8, rng);
  const std::vector<float> x = RandomVector(8, rng);
  std::vector<float> y(4, 7.0f);
  MatMul(w.m, x.data(), 0, y.data(), pool);
  for (float v : y) EXPECT_EQ(v, 7.0f);
  Matrix empty_rows = w.m;
  empty_rows.rows = 0;
  MatMul(empty_rows, x.data(), 1, y.data(), pool);
  for (float v : y) EXPECT_EQ(v, 7.0f);
}

TEST(MatMulTest, UnsupportedDTypeThrows) {
  ThreadPool pool(1);
  std::vector<uint8_t> bytes(64);
  Matrix w;
  w.name = "bad.weight";
  w.dtype = DType::kI32;
  w.data = bytes.data();
  w.rows = 4;
  w.cols = 4;
  std::vector<float> x(4), y(4);
  EXPECT_THROW(MatMul(w, x.data(), 1, y.data(), pool), Error);
  EXPECT_THROW(w.DequantRow(0, 0, 4, y.data()), Error);
}

// --- Matrix::DequantRow / AxpyRow ---------------------------------------------------------

TEST(MatrixTest, DequantRowSubRangesMatchManualDecode) {
  std::mt19937 rng(7);
  const std::pair<int64_t, int64_t> kRanges[] = {{0, 300}, {0, 0},     {5, 5},     {0, 1},
                                                 {1, 2},   {15, 17},   {16, 48},   {31, 129},
                                                 {127, 300}, {128, 256}, {299, 300}, {3, 297}};
  for (const Variant& var : kVariants) {
    OwnedMatrix w = MakeMatrix(var.dtype, 37, 300, rng, var.block_rows, var.block_cols);
    for (int64_t r : {0, 1, 16, 31, 32, 33, 36}) {
      for (auto [c0, c1] : kRanges) {
        std::vector<float> out(static_cast<size_t>(c1 - c0) + 1, -777.0f);
        w.m.DequantRow(r, c0, c1, out.data());
        for (int64_t c = c0; c < c1; ++c) {
          const float want = ManualWeight(w, r, c);
          ASSERT_EQ(out[c - c0], want) << var.label << " r=" << r << " c=" << c << " range ["
                                       << c0 << "," << c1 << ")";
        }
        EXPECT_EQ(out[c1 - c0], -777.0f) << var.label << ": wrote past the range end";
      }
    }
  }
}

TEST(MatrixTest, AxpyRowMatchesManualDecode) {
  std::mt19937 rng(8);
  // Long rows so AxpyRow's 256-wide staging buffer is crossed at unaligned offsets.
  const std::pair<int64_t, int64_t> kRanges[] = {{0, 600}, {7, 590}, {255, 513}, {256, 257},
                                                 {100, 100}, {0, 1}, {599, 600}, {33, 289}};
  for (const Variant& var : kVariants) {
    OwnedMatrix w = MakeMatrix(var.dtype, 5, 600, rng, var.block_rows, var.block_cols);
    for (int64_t r = 0; r < 5; ++r) {
      for (auto [c0, c1] : kRanges) {
        const float a = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
        const std::vector<float> init = RandomVector(static_cast<size_t>(c1 - c0) + 1, rng);
        std::vector<float> out = init;
        w.m.AxpyRow(r, c0, c1, a, out.data());
        for (int64_t c = c0; c < c1; ++c) {
          const double want = init[c - c0] + static_cast<double>(a) * ManualWeight(w, r, c);
          // One float rounding of the product and one of the sum (or a single fused one).
          const double tol =
              1.2e-7 * (std::fabs(init[c - c0]) + std::fabs(a * ManualWeight(w, r, c))) + 1e-38;
          ASSERT_NEAR(out[c - c0], want, tol)
              << var.label << " r=" << r << " c=" << c << " range [" << c0 << "," << c1 << ")";
        }
        EXPECT_EQ(out[c1 - c0], init[c1 - c0]) << var.label << ": wrote past the range end";
      }
    }
  }
}

TEST(MatrixTest, BytesCountsScales) {
  std::mt19937 rng(9);
  OwnedMatrix f8 = MakeMatrix(DType::kF8E4M3, 129, 300, rng, 32, 16);
  EXPECT_EQ(f8.m.scale_cols(), 19);
  EXPECT_EQ(f8.m.bytes(), 129u * 300u + 5u * 19u * 4u);
  OwnedMatrix bf = MakeMatrix(DType::kBF16, 3, 5, rng);
  EXPECT_EQ(bf.m.bytes(), 30u);
}

// --- Exact decoding in the fast path -------------------------------------------------------

TEST(MatMulTest, EveryFiniteFp8CodeDecodesExactly) {
  // W = [1, 256] holding codes 0..255 with scale 1; token t is the one-hot e_t, so y[t] = W[0][t].
  std::vector<uint8_t> codes(256);
  for (int i = 0; i < 256; ++i) codes[i] = static_cast<uint8_t>(i);
  const float scales[2] = {1.0f, 1.0f};
  Matrix w;
  w.name = "fp8.codes";
  w.dtype = DType::kF8E4M3;
  w.data = codes.data();
  w.rows = 1;
  w.cols = 256;
  w.scale = scales;
  for (int n_tokens : {1, 2, 3, 4, 256}) {
    ThreadPool pool(n_tokens == 256 ? 3 : 1);
    for (int first = 0; first < 256; first += n_tokens) {
      const int n = std::min(n_tokens, 256 - first);
      std::vector<float> x(static_cast<size_t>(n) * 256, 0.0f);
      for (int t = 0; t < n; ++t) x[static_cast<size_t>(t) * 256 + first + t] = 1.0f;
      std::vector<float> y(n, -1.0f);
      MatMul(w, x.data(), n, y.data(), pool);
      for (int t = 0; t < n; ++t) {
        const int code = first + t;
        if (code == 0x7f || code == 0xff) continue;  // NaN codes: documented as +-480 here
        ASSERT_EQ(y[t], kFp8E4M3ToF32[code])
            << "code 0x" << std::hex << code << " (n_tokens " << std::dec << n_tokens << ")";
      }
    }
  }
}

// F16 decoded without the library: sign, 5-bit exponent (bias 15), 10-bit mantissa.
double F16Value(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}

TEST(MatMulTest, EveryFiniteF16CodeDecodesExactly) {
  // All 63,488 finite codes (exponent field < 31) as a [992, 64] matrix; one-hot tokens pick out
  // each column, so the vectorized loader decodes every code (subnormals included).
  std::vector<uint16_t> codes;
  for (uint32_t h = 0; h < 0x10000; ++h)
    if (((h >> 10) & 0x1f) != 0x1f) codes.push_back(static_cast<uint16_t>(h));
  ASSERT_EQ(codes.size(), 63488u);
  Matrix w;
  w.name = "f16.codes";
  w.dtype = DType::kF16;
  w.data = reinterpret_cast<const uint8_t*>(codes.data());
  w.rows = 992;
  w.cols = 64;
  std::vector<float> x(64 * 64, 0.0f);
  for (int t = 0; t < 64; ++t) x[t * 64 + t] = 1.0f;
  std::vector<float> y(64 * 992);
  ThreadPool pool(3);
  MatMul(w, x.data(), 64, y.data(), pool);
  int failures = 0;
  for (int r = 0; r < 992; ++r) {
    for (int t = 0; t < 64; ++t) {
      const uint16_t h = codes[r * 64 + t];
      const double want = F16Value(h);
      if (static_cast<double>(y[t * 992 + r]) != want && ++failures <= 10)
        ADD_FAILURE() << "F16 code 0x" << std::hex << h << ": got " << y[t * 992 + r]
                      << ", want " << want;
      // The library's scalar decode must agree too.
      if (static_cast<double>(F16ToF32(h)) != want && ++failures <= 10)
        ADD_FAILURE() << "F16ToF32(0x" << std::hex << h << ") = " << F16ToF32(h) << ", want "
                      << want;
    }
  }
  EXPECT_EQ(failures, 0);

  // The scalar tail (cols = 1): one code per row.
  Matrix w1 = w;
  w1.rows = static_cast<int64_t>(codes.size());
  w1.cols = 1;
  std::vector<float> y1(codes.size());
  const float one = 1.0f;
  MatMul(w1, &one, 1, y1.data(), pool);
  for (size_t i = 0; i < codes.size(); ++i)
    ASSERT_EQ(static_cast<double>(y1[i]), F16Value(codes[i])) << "code " << codes[i];
}

TEST(MatMulTest, EveryBf16FiniteCodeDecodesExactly) {
  // Every finite BF16 code (exponent field 0xFF excluded: 65,280 codes) as a [1020, 64] matrix.
  std::vector<uint16_t> codes;
  for (uint32_t b = 0; b < 0x10000; ++b)
    if (((b >> 7) & 0xff) != 0xff) codes.push_back(static_cast<uint16_t>(b));
  ASSERT_EQ(codes.size() % 64, 0u);
  Matrix w;
  w.name = "bf16.codes";
  w.dtype = DType::kBF16;
  w.data = reinterpret_cast<const uint8_t*>(codes.data());
  w.rows = static_cast<int64_t>(codes.size() / 64);
  w.cols = 64;
  std::vector<float> x(64 * 64, 0.0f);
  for (int t = 0; t < 64; ++t) x[t * 64 + t] = 1.0f;
  std::vector<float> y(64 * w.rows);
  ThreadPool pool(1);
  // The widening path decodes every code exactly.
  SetBf16Gemm(false);
  MatMul(w, x.data(), 64, y.data(), pool);
  SetBf16Gemm(true);
  for (int64_t r = 0; r < w.rows; ++r)
    for (int t = 0; t < 64; ++t)
      ASSERT_EQ(y[t * w.rows + r], Bf16ToF32(codes[r * 64 + t])) << "code " << codes[r * 64 + t];
  // The BF16 GEMM (vdpbf16ps) too, except that it flushes subnormal weights (below 1.2e-38 in
  // magnitude, which trained weights never are) to zero.
  if (!Bf16GemmApplies(w)) return;
  MatMul(w, x.data(), 64, y.data(), pool);
  for (int64_t r = 0; r < w.rows; ++r) {
    for (int t = 0; t < 64; ++t) {
      const uint16_t code = codes[r * 64 + t];
      const bool subnormal = ((code >> 7) & 0xff) == 0;
      ASSERT_EQ(y[t * w.rows + r], subnormal ? 0.0f : Bf16ToF32(code)) << "code " << code;
    }
  }
}

}  // namespace
}  // namespace r1
