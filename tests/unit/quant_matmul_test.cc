// The Q8 and Q4 weight formats (kI8 / kU8, see the comments of struct Matrix) through the Matrix
// row helpers, WidenRows and both MatMul paths. The codes and F16 scales are random and packed
// into the stored layouts here, independently of any library quantizer, and decoded here too:
// value(r, c) = code * F16ToF32(scale[r][c / 32]), one float32 product. Products are checked
// against a double-precision reference built from those decoded values, on odd shapes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/matrix.h"
#include "r1/kernels/matvec_int8.h"
#include "r1/kernels/simd.h"

namespace r1 {
namespace {

// A Q8 or Q4 matrix packed by hand, with the signed code values and scales it was packed from.
struct QuantMatrix {
  std::vector<int> codes;        // [rows, cols] values: Q8 in [-128, 127], Q4 in [-8, 7]
  std::vector<uint16_t> scales;  // [rows, ceil(cols / 32)] F16 bits
  std::vector<uint8_t> data;     // the stored codes
  int64_t blocks = 0;            // scales per row
  Matrix m;
};

struct Format {
  const char* label;
  DType dtype;
  int lo, hi;  // range of the code values
};
const Format kQ8{"Q8", DType::kI8, -128, 127};
const Format kQ4{"Q4", DType::kU8, -8, 7};
const Format kFormats[] = {kQ8, kQ4};

int64_t BlocksOf(int64_t cols) { return (cols + 31) / 32; }

// Stores q.codes and q.scales in the tile layout of q.m.dtype (matrix.h), addressed here from
// its definition, and points q.m at the storage. Rows come in groups of 4; per run of 16 blocks
// a tile holds the 4 rows' codes (row after row, nb blocks each, word-interleaved: byte j of
// block b at ((j / 4) * nb + b) * 4 + j % 4) and then 4 x 16 F16 scale slots. Everything the layout leaves unused (the last block's elements past `cols`, Q4 padding
// nibbles, unused scale slots, padding rows) gets random garbage: no kernel may read it.
void Pack(QuantMatrix& q, std::mt19937& rng) {
  const int64_t rows = q.m.rows, cols = q.m.cols, blocks = BlocksOf(cols);
  const bool q8 = q.m.dtype == DType::kI8;
  const int64_t bb = q8 ? 32 : 16, runs = (blocks + 15) / 16;
  const int64_t group = blocks * 4 * bb + runs * 128, full_tile = 16 * 4 * bb + 128;
  q.data.resize(static_cast<size_t>((rows + 3) / 4 * group));
  for (uint8_t& b : q.data) b = static_cast<uint8_t>(rng() & 0xff);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t k = b / 16, nb = std::min<int64_t>(16, blocks - 16 * k);
      uint8_t* tile = q.data.data() + (r / 4) * group + k * full_tile;
      uint8_t* run = tile + (r % 4) * nb * bb;
      auto code_byte = [&](int64_t j) -> uint8_t& { return run[((j / 4) * nb + b % 16) * 4 + j % 4]; };
      const uint16_t s = q.scales[static_cast<size_t>(r * blocks + b)];
      std::memcpy(tile + 4 * nb * bb + (r % 4) * 32 + (b % 16) * 2, &s, 2);
      for (int64_t c = b * 32; c < std::min(cols, b * 32 + 32); ++c) {
        const int v = q.codes[static_cast<size_t>(r * cols + c)];
        const int64_t j = c % 32;
        if (q8) {
          code_byte(j) = static_cast<uint8_t>(static_cast<int8_t>(v));
        } else {
          uint8_t& byte = code_byte(j % 16);
          byte = j < 16 ? static_cast<uint8_t>((byte & 0xf0) | (v + 8))
                        : static_cast<uint8_t>((byte & 0x0f) | ((v + 8) << 4));
        }
      }
    }
  }
  q.m.data = q.data.data();
}

QuantMatrix Allocate(const Format& f, int64_t rows, int64_t cols) {
  QuantMatrix q;
  q.m.name = std::string("quant.") + f.label;
  q.m.dtype = f.dtype;
  q.m.rows = rows;
  q.m.cols = cols;
  q.blocks = BlocksOf(cols);
  q.codes.resize(static_cast<size_t>(rows * cols));
  q.scales.resize(static_cast<size_t>(rows * q.blocks));
  return q;
}

// Uniform random codes over the whole range; positive normal F16 scales in [2^-12, 2^4) with
// random mantissas, so blocks differ in magnitude.
QuantMatrix MakeRandom(const Format& f, int64_t rows, int64_t cols, std::mt19937& rng) {
  QuantMatrix q = Allocate(f, rows, cols);
  std::uniform_int_distribution<int> code(f.lo, f.hi);
  std::uniform_int_distribution<int> expo(15 - 12, 15 + 3);
  std::uniform_int_distribution<int> mant(0, 1023);
  for (int& c : q.codes) c = code(rng);
  for (uint16_t& s : q.scales) s = static_cast<uint16_t>((expo(rng) << 10) | mant(rng));
  Pack(q, rng);
  return q;
}

// The test's own decoding: code times scale, one float32 product.
float Decode(const QuantMatrix& q, int64_t r, int64_t c) {
  const int code = q.codes[static_cast<size_t>(r * q.m.cols + c)];
  const uint16_t s = q.scales[static_cast<size_t>(r * q.blocks + c / 32)];
  return static_cast<float>(code) * F16ToF32(s);
}

// F16 decoded from its bits without the library: sign, 5-bit exponent (bias 15), 10-bit mantissa.
double F16Value(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  const double v = e == 0 ? std::ldexp(m, -24) : std::ldexp(1024 + m, e - 25);
  return (h & 0x8000) ? -v : v;
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

std::vector<float> RandomVector(size_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = d(rng);
  return v;
}

const int64_t kCols[] = {1, 5, 31, 32, 33, 63, 97, 200, 600, 1000};
const int64_t kRows[] = {1, 3, 17, 64, 129};
// Below kGemmMinTokens: the streaming kernel; from it on (and cols >= 16): the GEMM path.
const int64_t kTokens[] = {1, 2, 3, 5, 11, 12, 13, 40};

// --- Matrix::DequantRow / AxpyRow / WidenRows: exact decoding ------------------------------

TEST(QuantMatrixTest, DequantRowFullRowsAndSubRangesBitExact) {
  std::mt19937 rng(11);
  // Sub-ranges that start and end mid-block, on block and half-block (nibble) boundaries, and
  // inside the last, partial block.
  const std::pair<int64_t, int64_t> kRanges[] = {
      {0, 0},   {5, 5},   {0, 1},    {1, 2},     {3, 29},    {15, 17},   {16, 48},  {17, 47},
      {31, 33}, {32, 64}, {31, 129}, {33, 65},   {40, 97},   {96, 97},   {7, 190},  {100, 200},
      {199, 200}, {3, 997}, {255, 513}, {500, 1000}, {999, 1000}};
  for (const Format& f : kFormats) {
    for (int64_t cols : kCols) {
      const int64_t rows = 5;
      QuantMatrix q = MakeRandom(f, rows, cols, rng);
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<std::pair<int64_t, int64_t>> ranges = {{0, cols}};
        for (auto range : kRanges)
          if (range.second <= cols) ranges.push_back(range);
        for (auto [c0, c1] : ranges) {
          std::vector<float> out(static_cast<size_t>(c1 - c0) + 1, -777.0f);
          q.m.DequantRow(r, c0, c1, out.data());
          for (int64_t c = c0; c < c1; ++c) {
            const float want = Decode(q, r, c);
            ASSERT_EQ(Bits(out[c - c0]), Bits(want))
                << f.label << " cols=" << cols << " r=" << r << " c=" << c << " range [" << c0
                << "," << c1 << "): got " << out[c - c0] << ", want " << want;
          }
          ASSERT_EQ(out[c1 - c0], -777.0f) << f.label << ": wrote past the range end";
        }
      }
    }
  }
}

TEST(QuantMatrixTest, AxpyRowMatchesDecoding) {
  std::mt19937 rng(12);
  // Ranges across AxpyRow's 256-wide staging buffer at unaligned offsets, and mid-block ends.
  const std::pair<int64_t, int64_t> kRanges[] = {{0, 1000}, {7, 990},  {255, 513}, {256, 257},
                                                 {100, 100}, {0, 1},   {999, 1000}, {33, 289},
                                                 {15, 17},   {31, 33}, {16, 48},    {1, 31}};
  for (const Format& f : kFormats) {
    for (int64_t cols : kCols) {
      const int64_t rows = 3;
      QuantMatrix q = MakeRandom(f, rows, cols, rng);
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<std::pair<int64_t, int64_t>> ranges = {{0, cols}};
        for (auto range : kRanges)
          if (range.second <= cols) ranges.push_back(range);
        for (auto [c0, c1] : ranges) {
          const float a = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
          const std::vector<float> init = RandomVector(static_cast<size_t>(c1 - c0) + 1, rng);
          std::vector<float> out = init;
          q.m.AxpyRow(r, c0, c1, a, out.data());
          for (int64_t c = c0; c < c1; ++c) {
            const double wv = Decode(q, r, c);
            const double want = init[c - c0] + static_cast<double>(a) * wv;
            const double tol = 1e-6 * (std::fabs(init[c - c0]) + std::fabs(a * wv)) + 1e-38;
            ASSERT_NEAR(out[c - c0], want, tol) << f.label << " cols=" << cols << " r=" << r
                                                << " c=" << c << " range [" << c0 << "," << c1
                                                << ")";
          }
          ASSERT_EQ(out[c1 - c0], init[c1 - c0]) << f.label << ": wrote past the range end";
        }
      }
    }
  }
}

// AxpyRows adds W^T a over a row range: against a double-precision sum, for every row range
// (inside one tile group, across groups, from mid-group) and column count, and never past cols.
TEST(QuantMatrixTest, AxpyRowsMatchesDecoding) {
  std::mt19937 rng(13);
  const std::pair<int64_t, int64_t> kRowRanges[] = {{0, 1}, {0, 9}, {3, 4}, {2, 9}, {5, 9}};
  for (const Format& f : kFormats) {
    for (int64_t cols : kCols) {
      const QuantMatrix q = MakeRandom(f, 9, cols, rng);
      for (auto [r0, r1] : kRowRanges) {
        const std::vector<float> a = RandomVector(static_cast<size_t>(r1 - r0), rng);
        const std::vector<float> init = RandomVector(static_cast<size_t>(cols) + 1, rng);
        std::vector<float> got = init;
        q.m.AxpyRows(r0, r1, a.data(), got.data());
        for (int64_t c = 0; c < cols; ++c) {
          double want = init[c], scale = std::fabs(init[c]);
          for (int64_t r = r0; r < r1; ++r) {
            want += static_cast<double>(a[r - r0]) * Decode(q, r, c);
            scale += std::fabs(static_cast<double>(a[r - r0]) * Decode(q, r, c));
          }
          ASSERT_NEAR(got[c], want, 1e-6 * scale + 1e-38)
              << f.label << " cols=" << cols << " rows [" << r0 << "," << r1 << ") c=" << c;
        }
        ASSERT_EQ(got[cols], init[cols]) << f.label << ": wrote past the last column";
      }
    }
  }
}

TEST(QuantMatrixTest, WidenRowsBitExact) {
  std::mt19937 rng(13);
  const std::pair<int64_t, int64_t> kRowRanges[] = {{0, 17}, {0, 1}, {3, 4},  {5, 16},
                                                    {16, 17}, {7, 7}, {1, 15}};
  for (const Format& f : kFormats) {
    for (int64_t cols : kCols) {
      QuantMatrix q = MakeRandom(f, 17, cols, rng);
      for (auto [r0, r1] : kRowRanges) {
        const size_t n = static_cast<size_t>((r1 - r0) * cols);
        std::vector<float> out(n + 1, -777.0f);
        WidenRows(q.m, r0, r1, out.data());
        for (int64_t r = r0; r < r1; ++r) {
          for (int64_t c = 0; c < cols; ++c) {
            const float got = out[static_cast<size_t>((r - r0) * cols + c)];
            const float want = Decode(q, r, c);
            ASSERT_EQ(Bits(got), Bits(want))
                << f.label << " cols=" << cols << " rows [" << r0 << "," << r1 << ") r=" << r
                << " c=" << c << ": got " << got << ", want " << want << " (ISA "
                << IsaName(DetectIsa()) << ")";
          }
        }
        ASSERT_EQ(out[n], -777.0f) << f.label << ": wrote past the rows";
      }
    }
  }
}

// --- MatMul / MatMulRows against a double reference ----------------------------------------

// These tests pin down the float32-activation kernels; the int8-activation ones (decode and
// GEMM) have their own tests against an integer reference (matvec_int8_test, gemm_int8_test).
struct Float32Activations {
  bool was = Int8ActivationsEnabled();
  Float32Activations() { SetInt8Activations(false); }
  ~Float32Activations() { SetInt8Activations(was); }
};

void CheckMatMulVsDouble(const Format& f, uint32_t seed) {
  const Float32Activations float32_activations;
  ASSERT_LT(kTokens[0], kGemmMinTokens);
  ASSERT_GE(kTokens[std::size(kTokens) - 1], kGemmMinTokens);
  std::mt19937 rng(seed);
  ThreadPool pool1(1), pool2(2);
  ThreadPool* const pools[] = {&pool1, &pool2};
  constexpr float kSentinel = -12345.0f;
  int failures = 0;
  for (int64_t rows : kRows) {
    for (int64_t cols : kCols) {
      const QuantMatrix q = MakeRandom(f, rows, cols, rng);
      std::vector<double> w(static_cast<size_t>(rows * cols));
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c) w[r * cols + c] = Decode(q, r, c);
      const std::vector<float> bias = RandomVector(static_cast<size_t>(rows), rng);
      for (int64_t n : kTokens) {
        const std::vector<float> x = RandomVector(static_cast<size_t>(n * cols), rng);
        // Strided copy of x with NaN in the gaps (a kernel reading them would be poisoned).
        const int64_t xs = cols + 3, ys = rows + 2;
        std::vector<float> xw(static_cast<size_t>(n * xs), std::nanf(""));
        for (int64_t t = 0; t < n; ++t)
          std::memcpy(&xw[t * xs], &x[t * cols], cols * sizeof(float));
        // The exact-ish product and sum_c |w_rc * x_tc|, both in double.
        std::vector<double> dot(static_cast<size_t>(n * rows)), mag(dot.size());
        for (int64_t t = 0; t < n; ++t) {
          for (int64_t r = 0; r < rows; ++r) {
            double s = 0, m = 0;
            for (int64_t c = 0; c < cols; ++c) {
              const double p = w[r * cols + c] * x[t * cols + c];
              s += p;
              m += std::fabs(p);
            }
            dot[t * rows + r] = s;
            mag[t * rows + r] = m;
          }
        }
        const bool gemm = n >= kGemmMinTokens && cols >= 16;
        for (int with_bias = 0; with_bias < 2; ++with_bias) {
          const float* b = with_bias ? bias.data() : nullptr;
          // Compares y (rows `stride` apart) with the reference; the stride gap must be untouched.
          auto check = [&](const char* what, const std::vector<float>& y, int64_t stride,
                           int threads) {
            for (int64_t t = 0; t < n; ++t) {
              for (int64_t r = 0; r < rows; ++r) {
                const double want = dot[t * rows + r] + (b ? b[r] : 0.0);
                const double tol = 1e-5 * (mag[t * rows + r] + (b ? std::fabs(b[r]) : 0.0)) + 1e-30;
                const float got = y[t * stride + r];
                if (!(std::fabs(got - want) <= tol) && ++failures <= 10) {
                  ADD_FAILURE() << f.label << " " << what << " threads=" << threads
                                << " rows=" << rows << " cols=" << cols << " n=" << n
                                << " bias=" << with_bias << " t=" << t << " r=" << r << ": got "
                                << got << ", want " << want << ", |diff| "
                                << std::fabs(got - want) << " > tol " << tol << " (ISA "
                                << IsaName(DetectIsa()) << ")";
                }
              }
              for (int64_t r = rows; r < stride; ++r) {
                if (y[t * stride + r] != kSentinel && ++failures <= 10) {
                  ADD_FAILURE() << f.label << " " << what << " rows=" << rows << " cols=" << cols
                                << " n=" << n << ": wrote into the y stride gap at t=" << t
                                << " r=" << r;
                }
              }
            }
          };
          const char* path = gemm ? "MatMul[GEMM]" : "MatMul[streaming]";
          const std::string strided = std::string(path) + " strided";
          for (ThreadPool* pool : pools) {
            std::vector<float> y(static_cast<size_t>(n * rows), kSentinel);
            MatMul(q.m, x.data(), n, y.data(), *pool, b);
            check(path, y, rows, pool->size());
            std::vector<float> yw(static_cast<size_t>(n * ys), kSentinel);
            MatMul(q.m, xw.data(), xs, n, yw.data(), ys, b, *pool);
            check(strided.c_str(), yw, ys, pool->size());
            if (n >= kGemmMinTokens) {
              // The streaming kernel at token counts where MatMul would pick the GEMM path.
              std::vector<float> yr(static_cast<size_t>(n * rows), kSentinel);
              MatMulRows(q.m, x.data(), cols, n, yr.data(), rows, b, *pool);
              check("MatMulRows", yr, rows, pool->size());
              std::vector<float> yrw(static_cast<size_t>(n * ys), kSentinel);
              MatMulRows(q.m, xw.data(), xs, n, yrw.data(), ys, b, *pool);
              check("MatMulRows strided", yrw, ys, pool->size());
            }
          }
          if (!b && n <= 3) {
            // The library's plain reference agrees with the double one too.
            std::vector<float> yref(static_cast<size_t>(n * rows), kSentinel);
            MatMulReference(q.m, x.data(), n, yref.data(), nullptr);
            check("MatMulReference", yref, rows, 1);
          }
        }
      }
    }
  }
  EXPECT_EQ(failures, 0) << f.label << " (ISA " << IsaName(DetectIsa()) << ")";
}

TEST(QuantMatMulTest, Q8VsDoubleReference) { CheckMatMulVsDouble(kQ8, 21); }
TEST(QuantMatMulTest, Q4VsDoubleReference) { CheckMatMulVsDouble(kQ4, 22); }

// --- Special scales and extreme codes -------------------------------------------------------

// Zero (both signs), F16 subnormals (smallest, mid, largest, negative), the smallest normal,
// one, minus one, the largest finite F16 and an ordinary value.
const uint16_t kSpecialScales[] = {0x0000, 0x8000, 0x0001, 0x8001, 0x0200, 0x03ff,
                                   0x0400, 0x3c00, 0xbc00, 0x7bff, 0x1234};
constexpr int64_t kNumSpecial = static_cast<int64_t>(std::size(kSpecialScales));

// Rows [0, K): codes ascending through the whole range (Q8: all 256 codes in columns 0..255;
// Q4: all 16 codes in each half block), rows [K, 2K): descending. Block b of row r has scale
// kSpecialScales[(r + b) % K], so every extreme code meets every special scale. 261 columns:
// a partial last block of 5.
QuantMatrix MakeSpecial(const Format& f, std::mt19937& rng) {
  const int64_t rows = 2 * kNumSpecial, cols = 261;
  QuantMatrix q = Allocate(f, rows, cols);
  const int range = f.hi - f.lo + 1;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const int k = static_cast<int>(c % range);
      q.codes[r * cols + c] = r < kNumSpecial ? f.lo + k : f.hi - k;
    }
    for (int64_t b = 0; b < q.blocks; ++b)
      q.scales[r * q.blocks + b] = kSpecialScales[(r + b) % kNumSpecial];
  }
  Pack(q, rng);
  return q;
}

TEST(QuantSpecialTest, ZeroAndSubnormalScalesAndExtremeCodes) {
  const Float32Activations float32_activations;
  std::mt19937 rng(31);
  ThreadPool pool(2);
  for (const Format& f : kFormats) {
    const QuantMatrix q = MakeSpecial(f, rng);
    const int64_t rows = q.m.rows, cols = q.m.cols;
    // The test's decoding is exact: code x scale needs at most 8 + 11 significant bits, and the
    // smallest nonzero magnitude 2^-24 is a float32 normal.
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const double exact = q.codes[r * cols + c] * F16Value(q.scales[r * q.blocks + c / 32]);
        ASSERT_EQ(static_cast<double>(Decode(q, r, c)), exact) << f.label << " r=" << r
                                                               << " c=" << c;
      }
    }
    // DequantRow and WidenRows, bit for bit (signed zeros included).
    std::vector<float> row(static_cast<size_t>(cols));
    std::vector<float> wide(static_cast<size_t>(rows * cols));
    WidenRows(q.m, 0, rows, wide.data());
    for (int64_t r = 0; r < rows; ++r) {
      q.m.DequantRow(r, 0, cols, row.data());
      for (int64_t c = 0; c < cols; ++c) {
        const float want = Decode(q, r, c);
        ASSERT_EQ(Bits(row[c]), Bits(want))
            << f.label << " DequantRow r=" << r << " c=" << c << " code "
            << q.codes[r * cols + c] << " scale 0x" << std::hex << q.scales[r * q.blocks + c / 32]
            << std::dec << ": got " << row[c] << ", want " << want;
        ASSERT_EQ(Bits(wide[r * cols + c]), Bits(want))
            << f.label << " WidenRows r=" << r << " c=" << c << " code "
            << q.codes[r * cols + c] << " scale 0x" << std::hex << q.scales[r * q.blocks + c / 32]
            << std::dec << ": got " << wide[r * cols + c] << ", want " << want;
      }
    }
    // Literal spot checks. Row 0: code lo at column 0 with scale +0; row 2: block 0 has the
    // smallest subnormal 2^-24; row 9: block 0 has 65504; row 1: block 0 has -0.
    std::vector<float> one(1);
    q.m.DequantRow(2, 0, 1, one.data());
    EXPECT_EQ(one[0], std::ldexp(static_cast<float>(f.lo), -24)) << f.label;
    q.m.DequantRow(9, 0, 1, one.data());
    EXPECT_EQ(one[0], static_cast<float>(f.lo) * 65504.0f) << f.label;
    q.m.DequantRow(0, 0, 1, one.data());
    EXPECT_EQ(Bits(one[0]), Bits(-0.0f)) << f.label << ": negative code x +0";
    q.m.DequantRow(1, 0, 1, one.data());
    EXPECT_EQ(Bits(one[0]), Bits(0.0f)) << f.label << ": negative code x -0";
    // The highest code: the descending rows start with it, each with another block-0 scale.
    for (int64_t r = kNumSpecial; r < rows; ++r) {
      q.m.DequantRow(r, 0, 1, one.data());
      EXPECT_EQ(static_cast<double>(one[0]), f.hi * F16Value(q.scales[r * q.blocks])) << f.label;
    }

    // MatMul with one-hot tokens picks out single weights, which must come out exact: streaming
    // (n < kGemmMinTokens) and GEMM paths, and the streaming kernel at large n.
    for (int64_t n : {int64_t{1}, int64_t{5}, int64_t{13}, int64_t{40}}) {
      for (int rows_kernel = 0; rows_kernel < (n >= kGemmMinTokens ? 2 : 1); ++rows_kernel) {
        for (int64_t first = 0; first < cols; first += n) {
          const int64_t nt = std::min<int64_t>(n, cols - first);
          std::vector<float> x(static_cast<size_t>(nt * cols), 0.0f);
          for (int64_t t = 0; t < nt; ++t) x[t * cols + first + t] = 1.0f;
          std::vector<float> y(static_cast<size_t>(nt * rows), -1.0f);
          if (rows_kernel)
            MatMulRows(q.m, x.data(), cols, nt, y.data(), rows, nullptr, pool);
          else
            MatMul(q.m, x.data(), nt, y.data(), pool);
          for (int64_t t = 0; t < nt; ++t) {
            for (int64_t r = 0; r < rows; ++r) {
              const float want = Decode(q, r, first + t);
              ASSERT_EQ(y[t * rows + r], want)
                  << f.label << (rows_kernel ? " MatMulRows" : " MatMul") << " n=" << nt
                  << " r=" << r << " c=" << first + t << " code "
                  << q.codes[r * cols + first + t] << " scale 0x" << std::hex
                  << q.scales[r * q.blocks + (first + t) / 32] << std::dec << " (ISA "
                  << IsaName(DetectIsa()) << ")";
            }
          }
        }
      }
    }
  }
}

// --- Sizes ---------------------------------------------------------------------------------

TEST(QuantMatrixTest, BytesAndRowBytes) {
  std::mt19937 rng(41);
  EXPECT_EQ(Q4RowBytes(1), 16);
  EXPECT_EQ(Q4RowBytes(32), 16);
  EXPECT_EQ(Q4RowBytes(33), 32);
  EXPECT_EQ(Q4RowBytes(1000), 512);

  // Literal cases: 129 x 97 has 4 blocks per row, one run: 33 groups of 4 rows, each 4 rows x
  // 4 blocks of codes and 128 bytes of scale slots.
  QuantMatrix q8 = MakeRandom(kQ8, 129, 97, rng);
  EXPECT_EQ(q8.m.qblocks(), 4);
  EXPECT_EQ(q8.m.qruns(), 1);
  EXPECT_EQ(q8.m.bytes(), 33u * (4u * 4u * 32u + 128u));
  QuantMatrix q4 = MakeRandom(kQ4, 129, 97, rng);
  EXPECT_EQ(q4.m.bytes(), 33u * (4u * 4u * 16u + 128u));
  // 6 x 544 (17 blocks: a full run and a run of one block): row 5 is row 1 of group 1.
  QuantMatrix t = MakeRandom(kQ8, 6, 544, rng);
  const int64_t group = 17 * 4 * 32 + 2 * 128, full_tile = 16 * 4 * 32 + 128;
  const QuantRun run = t.m.Run(5, 1);
  EXPECT_EQ(run.nb, 1);
  EXPECT_EQ(run.c0, 512);
  EXPECT_EQ(run.c1, 544);
  EXPECT_EQ(run.code_stride, 32);
  EXPECT_EQ(run.codes - t.m.data, group + full_tile + 1 * 32);
  EXPECT_EQ(reinterpret_cast<const uint8_t*>(run.scales) - t.m.data,
            group + full_tile + 4 * 32 + 1 * 32);

  // Every test shape: bytes() is exactly the storage packed here.
  for (const Format& f : kFormats) {
    for (int64_t rows : kRows) {
      for (int64_t cols : kCols) {
        const QuantMatrix q = MakeRandom(f, rows, cols, rng);
        EXPECT_EQ(q.m.qblocks(), (cols + 31) / 32) << f.label << " cols=" << cols;
        EXPECT_EQ(q.m.bytes(), q.data.size()) << f.label << " rows=" << rows << " cols=" << cols;
      }
    }
  }
}

// --- Errors --------------------------------------------------------------------------------

}  // namespace
}  // namespace r1
