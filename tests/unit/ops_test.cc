// Element-wise and row-wise kernels against double-precision references, and the two RoPE layouts.
#include "r1/kernels/ops.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdint>
#include <numbers>
#include <random>
#include <vector>

namespace r1 {
namespace {

const int64_t kLengths[] = {1, 7, 15, 16, 17, 33, 1000};

std::vector<float> RandomVector(int64_t n, std::mt19937& rng, float lo = -3.0f, float hi = 3.0f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = d(rng);
  return v;
}

TEST(OpsTest, RmsNormMatchesDouble) {
  std::mt19937 rng(1);
  for (int64_t n : kLengths) {
    for (float eps : {1e-6f, 1e-5f, 0.5f}) {
      const std::vector<float> x = RandomVector(n, rng);
      const std::vector<float> w = RandomVector(n, rng, 0.5f, 1.5f);
      double ss = 0;
      for (float v : x) ss += static_cast<double>(v) * v;
      const double r = 1.0 / std::sqrt(ss / n + eps);
      std::vector<float> y(static_cast<size_t>(n));
      RmsNorm(x.data(), w.data(), n, eps, y.data());
      for (int64_t i = 0; i < n; ++i) {
        const double want = w[i] * (x[i] * r);
        ASSERT_NEAR(y[i], want, 1e-5 * std::fabs(want) + 1e-30)
            << "n=" << n << " eps=" << eps << " i=" << i;
      }
      // In place (x and y alias) gives the same result.
      std::vector<float> inplace = x;
      RmsNorm(inplace.data(), w.data(), n, eps, inplace.data());
      for (int64_t i = 0; i < n; ++i) ASSERT_EQ(inplace[i], y[i]) << "n=" << n << " i=" << i;
    }
  }
}

TEST(OpsTest, RmsNormOfZerosIsZero) {
  std::vector<float> x(17, 0.0f), w(17, 1.0f), y(17, 5.0f);
  RmsNorm(x.data(), w.data(), 17, 1e-6f, y.data());
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(OpsTest, RmsNormRowsAppliesEachRowWithStride) {
  std::mt19937 rng(2);
  const int64_t n = 33, stride = 40, rows = 5;
  std::vector<float> buf = RandomVector(rows * stride, rng);
  const std::vector<float> w = RandomVector(n, rng, 0.5f, 1.5f);
  const std::vector<float> orig = buf;
  RmsNormRows(buf.data(), rows, stride, w.data(), n, 1e-6f);
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> want(n);
    RmsNorm(orig.data() + r * stride, w.data(), n, 1e-6f, want.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(buf[r * stride + i], want[i]) << r << "," << i;
    for (int64_t i = n; i < stride; ++i)
      ASSERT_EQ(buf[r * stride + i], orig[r * stride + i]) << "stride gap touched at " << r;
  }
}

TEST(OpsTest, SoftmaxMatchesDouble) {
  std::mt19937 rng(3);
  for (int64_t n : kLengths) {
    for (float range : {1.0f, 30.0f, 200.0f}) {
      std::vector<float> x = RandomVector(n, rng, -range, range);
      double m = -INFINITY;
      for (float v : x) m = std::max(m, static_cast<double>(v));
      std::vector<double> want(static_cast<size_t>(n));
      double s = 0;
      for (int64_t i = 0; i < n; ++i) s += want[i] = std::exp(x[i] - m);
      Softmax(x.data(), n);
      double total = 0;
      for (int64_t i = 0; i < n; ++i) {
        want[i] /= s;
        ASSERT_NEAR(x[i], want[i], 1e-5 * want[i] + 1e-30)
            << "n=" << n << " range=" << range << " i=" << i;
        ASSERT_GE(x[i], 0.0f);
        total += x[i];
      }
      EXPECT_NEAR(total, 1.0, 1e-5) << "n=" << n;
    }
  }
}

TEST(OpsTest, SoftmaxHandlesLargeAndNegativeInfinity) {
  std::vector<float> x = {1000.0f, 1000.0f, -INFINITY, 999.0f};
  Softmax(x.data(), 4);
  const double e = std::exp(-1.0), s = 2 + e;
  EXPECT_NEAR(x[0], 1 / s, 1e-6);
  EXPECT_NEAR(x[1], 1 / s, 1e-6);
  EXPECT_EQ(x[2], 0.0f);
  EXPECT_NEAR(x[3], e / s, 1e-6);
  std::vector<float> one = {-5.0f};
  Softmax(one.data(), 1);
  EXPECT_EQ(one[0], 1.0f);
}

// The attention's scale is folded into the softmax's passes: the same as scaling first (up to
// the rounding of the product), and the unnormalized form returns the scaled max and the sum.
// A NaN score makes its own weight NaN (and so the row's sum) without being taken as the max.
TEST(OpsTest, SoftmaxScaleIsFoldedIn) {
  std::mt19937 rng(5);
  for (int64_t n : kLengths) {
    for (float scale : {0.088f, 1.0f, 3.0f}) {
      const std::vector<float> x = RandomVector(n, rng, -40.0f, 40.0f);
      std::vector<float> folded = x, scaled = x;
      for (float& v : scaled) v *= scale;
      Softmax(folded.data(), n, scale);
      Softmax(scaled.data(), n);
      // scale * x[i] - max may be one fused multiply-add, so the exponent can differ by half an
      // ulp of scale * x[i], a relative error of up to 6e-8 x |scale * x[i]| in the weight.
      for (int64_t i = 0; i < n; ++i) {
        const float tol = (2e-6f + 1.2e-7f * std::fabs(scale * x[i])) * scaled[i] + 1e-30f;
        ASSERT_NEAR(folded[i], scaled[i], tol) << "n=" << n << " i=" << i;
      }
      std::vector<float> raw = x;
      float m = 0;
      const float sum = SoftmaxUnnormalized(raw.data(), n, &m, scale);
      EXPECT_EQ(m, scale * *std::max_element(x.begin(), x.end())) << "n=" << n;
      double want = 0;
      for (int64_t i = 0; i < n; ++i) want += std::exp(static_cast<double>(scale * x[i]) - m);
      EXPECT_NEAR(sum, want, 1e-5 * want) << "n=" << n;
    }
  }
  for (int64_t at : {0, 5, 16, 20}) {
    std::vector<float> x(21, 0.5f);
    x[3] = 2.0f;
    x[at] = NAN;
    float m = 0;
    const float sum = SoftmaxUnnormalized(x.data(), 21, &m, 2.0f);
    EXPECT_EQ(m, 4.0f) << "NaN at " << at;
    EXPECT_TRUE(std::isnan(x[at])) << "NaN at " << at;
    EXPECT_TRUE(std::isnan(sum)) << "NaN at " << at;
    EXPECT_FALSE(std::isnan(x[at == 5 ? 6 : 5])) << "NaN at " << at;
  }
}

TEST(OpsTest, SiluMulMatchesDouble) {
  std::mt19937 rng(4);
  for (int64_t n : kLengths) {
    std::vector<float> a = RandomVector(n, rng, -20.0f, 20.0f);
    const std::vector<float> b = RandomVector(n, rng);
    const std::vector<float> a0 = a;
    SiluMul(a.data(), b.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double x = a0[i];
      const double want = x / (1.0 + std::exp(-x)) * b[i];
      ASSERT_NEAR(a[i], want, 1e-6 * std::fabs(want) + 1e-30) << "n=" << n << " i=" << i;
    }
  }
  // Saturation ends: silu(-large) -> -0, silu(large) -> x; no NaN from exp overflow.
  std::vector<float> a = {-200.0f, 200.0f, 0.0f};
  std::vector<float> b = {1.0f, 2.0f, 3.0f};
  SiluMul(a.data(), b.data(), 3);
  EXPECT_EQ(a[0], 0.0f);
  EXPECT_EQ(a[1], 400.0f);
  EXPECT_EQ(a[2], 0.0f);
  // A NaN stays one (a diverged activation must not turn into zeros), in any lane of a vector.
  std::vector<float> c(19, 1.0f), d(19, 1.0f);
  c[17] = std::numeric_limits<float>::quiet_NaN();
  SiluMul(c.data(), d.data(), 19);
  EXPECT_TRUE(std::isnan(c[17]));
  EXPECT_FALSE(std::isnan(c[16]));
}

TEST(OpsTest, DotMatchesDouble) {
  std::mt19937 rng(5);
  for (int64_t n : kLengths) {
    const std::vector<float> a = RandomVector(n, rng), b = RandomVector(n, rng);
    double want = 0, mag = 0;
    for (int64_t i = 0; i < n; ++i) {
      want += static_cast<double>(a[i]) * b[i];
      mag += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    EXPECT_NEAR(Dot(a.data(), b.data(), n), want, 1e-5 * mag) << "n=" << n;
  }
  EXPECT_EQ(Dot(nullptr, nullptr, 0), 0.0f);
}

TEST(OpsTest, AxpyMatchesDouble) {
  std::mt19937 rng(6);
  for (int64_t n : kLengths) {
    const std::vector<float> x = RandomVector(n, rng);
    const std::vector<float> y0 = RandomVector(n + 1, rng);
    std::vector<float> y = y0;
    const float a = -1.75f;
    Axpy(a, x.data(), y.data(), n);
    for (int64_t i = 0; i < n; ++i) {
      const double want = y0[i] + static_cast<double>(a) * x[i];
      ASSERT_NEAR(y[i], want, 1.2e-7 * (std::fabs(y0[i]) + std::fabs(a * x[i])) + 1e-38)
          << "n=" << n << " i=" << i;
    }
    EXPECT_EQ(y[n], y0[n]) << "wrote past n=" << n;
  }
}

// --- RoPE ----------------------------------------------------------------------------------

std::vector<float> Frequencies(int64_t d, double theta) {
  std::vector<float> f(static_cast<size_t>(d / 2));
  for (int64_t i = 0; i < d / 2; ++i)
    f[i] = 1.0f / std::pow(static_cast<float>(theta), static_cast<float>(2 * i) / d);
  return f;
}

// [x0, x2, ..., x_{D-2}, x1, x3, ..., x_{D-1}] (model-spec §3.5.5).
std::vector<float> Deinterleave(const std::vector<float>& x) {
  const size_t h = x.size() / 2;
  std::vector<float> out(x.size());
  for (size_t i = 0; i < h; ++i) {
    out[i] = x[2 * i];
    out[i + h] = x[2 * i + 1];
  }
  return out;
}

TEST(RopeOpsTest, InterleavedMatchesDoubleFormula) {
  std::mt19937 rng(7);
  for (int64_t d : {2, 16, 64, 128}) {
    const std::vector<float> f = Frequencies(d, 10000.0);
    for (int64_t pos : {0, 1, 5, 1000, 100000}) {
      std::vector<float> x = RandomVector(d, rng);
      const std::vector<float> x0 = x;
      RopeInterleaved(x.data(), d, pos, f.data());
      for (int64_t i = 0; i < d / 2; ++i) {
        // The angle is the float32 product (§3.5.1); cos/sin of it in double.
        const double a = static_cast<float>(pos) * f[i];
        const double c = std::cos(a), s = std::sin(a);
        const double w0 = x0[2 * i] * c - x0[2 * i + 1] * s;
        const double w1 = x0[2 * i] * s + x0[2 * i + 1] * c;
        const double tol = 1e-5 * (std::fabs(x0[2 * i]) + std::fabs(x0[2 * i + 1]));
        ASSERT_NEAR(x[2 * i], w0, tol) << "d=" << d << " pos=" << pos << " i=" << i;
        ASSERT_NEAR(x[2 * i + 1], w1, tol) << "d=" << d << " pos=" << pos << " i=" << i;
      }
    }
  }
}

TEST(RopeOpsTest, HalfSplitOfDeinterleavedEqualsDeinterleavedInterleaved) {
  std::mt19937 rng(8);
  for (int64_t d : {2, 16, 64, 128}) {
    const std::vector<float> f = Frequencies(d, 10000.0);
    for (int64_t pos : {0, 1, 2, 7, 300, 4095, 163839}) {
      const std::vector<float> x = RandomVector(d, rng);
      std::vector<float> inter = x;
      RopeInterleaved(inter.data(), d, pos, f.data());
      std::vector<float> half = Deinterleave(x);
      RopeHalfSplit(half.data(), d, pos, f.data());
      const std::vector<float> want = Deinterleave(inter);
      // The same products of the same operands, so equal up to (fused) rounding of the sum.
      for (int64_t i = 0; i < d; ++i) {
        const int64_t pair = i % (d / 2);
        const double tol = 4e-7 * (std::fabs(x[2 * pair]) + std::fabs(x[2 * pair + 1]));
        ASSERT_NEAR(half[i], want[i], tol) << "d=" << d << " pos=" << pos << " i=" << i;
      }
    }
  }
}

TEST(RopeOpsTest, HalfSplitPairsAreIAndIPlusHalf) {
  // Rotating e_i by a quarter turn moves it to e_{i+D/2} in the half-split layout.
  const int64_t d = 8;
  std::vector<float> f(d / 2, 0.0f);
  f[1] = std::numbers::pi_v<float> / 2;
  std::vector<float> x(d, 0.0f);
  x[1] = 1.0f;
  RopeHalfSplit(x.data(), d, 1, f.data());
  EXPECT_NEAR(x[1], 0.0f, 1e-7);
  EXPECT_NEAR(x[1 + d / 2], 1.0f, 1e-7);
  std::vector<float> y(d, 0.0f);
  y[2] = 1.0f;  // pair 1 of the interleaved layout is (2, 3)
  RopeInterleaved(y.data(), d, 1, f.data());
  EXPECT_NEAR(y[2], 0.0f, 1e-7);
  EXPECT_NEAR(y[3], 1.0f, 1e-7);
}

TEST(RopeOpsTest, RotationPreservesNorm) {
  std::mt19937 rng(9);
  for (int64_t d : {2, 16, 64, 128}) {
    const std::vector<float> f = Frequencies(d, 500000.0);
    for (int64_t pos : {1, 3, 77, 9999, 131071}) {
      const std::vector<float> x = RandomVector(d, rng);
      double n0 = 0;
      for (float v : x) n0 += static_cast<double>(v) * v;
      for (int layout = 0; layout < 2; ++layout) {
        std::vector<float> y = x;
        if (layout == 0) {
          RopeInterleaved(y.data(), d, pos, f.data());
        } else {
          RopeHalfSplit(y.data(), d, pos, f.data());
        }
        double n1 = 0;
        for (float v : y) n1 += static_cast<double>(v) * v;
        EXPECT_NEAR(std::sqrt(n1), std::sqrt(n0), 1e-5 * std::sqrt(n0))
            << "layout " << layout << " d=" << d << " pos=" << pos;
        // Each rotated pair keeps its own length too.
        for (int64_t i = 0; i < d / 2; ++i) {
          const int64_t p = layout == 0 ? 2 * i : i, q = layout == 0 ? 2 * i + 1 : i + d / 2;
          EXPECT_NEAR(std::hypot(y[p], y[q]), std::hypot(x[p], x[q]), 2e-6 * std::sqrt(n0));
        }
      }
    }
  }
}

TEST(RopeOpsTest, PositionZeroIsIdentity) {
  std::mt19937 rng(10);
  for (int64_t d : {2, 16, 64, 128}) {
    const std::vector<float> f = Frequencies(d, 10000.0);
    const std::vector<float> x = RandomVector(d, rng);
    std::vector<float> a = x, b = x;
    RopeInterleaved(a.data(), d, 0, f.data());
    RopeHalfSplit(b.data(), d, 0, f.data());
    for (int64_t i = 0; i < d; ++i) {
      EXPECT_EQ(a[i], x[i]) << "interleaved d=" << d << " i=" << i;
      EXPECT_EQ(b[i], x[i]) << "half-split d=" << d << " i=" << i;
    }
  }
}

TEST(RopeOpsTest, RotationsCompose) {
  // With the same frequencies, rotating by p then q equals rotating by p + q (up to rounding).
  std::mt19937 rng(11);
  const int64_t d = 64;
  const std::vector<float> f = Frequencies(d, 10000.0);
  const std::vector<float> x = RandomVector(d, rng);
  std::vector<float> two = x, one = x;
  RopeInterleaved(two.data(), d, 3, f.data());
  RopeInterleaved(two.data(), d, 4, f.data());
  RopeInterleaved(one.data(), d, 7, f.data());
  for (int64_t i = 0; i < d; ++i) EXPECT_NEAR(two[i], one[i], 2e-5) << i;
}

}  // namespace
}  // namespace r1
