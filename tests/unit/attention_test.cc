// AttendBlock (two GEMMs with a causal mask), and attention split by keys (AttendPart +
// MergeAttendParts), against per-query dot products, softmax and a weighted sum in double, with
// strided key/value rows, keys wider than values (as MLA's latent rows are) and per-row limits
// that differ inside a block.
#include "r1/kernels/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace r1 {
namespace {

TEST(AttendBlock, MatchesPerQueryReference) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  // Values of 197 floats: three whole 64-float blocks of the few-row kernel and a ragged one;
  // 256 floats and more as MLA's latent rows (AttendPart takes those through the rows-in-lanes
  // kernels, checked below).
  for (int64_t dim : {1, 7, 64, 80, 200, 256, 300, 579}) {
    // Float32 sums of `dim` products of unit normals drift with the length of the sum.
    const double tolerance = 1e-5 * std::max(1.0, dim / 128.0);
    // Up to 16: the few-rows kernels, in blocks of 4 rows and a rest of 1, 2 or 3.
    for (int64_t rows : {1, 3, 5, 6, 7, 13, 16, 17, 40}) {
      const int64_t dv = std::max<int64_t>(1, dim - 3), stride = dim + dv + 2, keys = 37;
      std::vector<float> q(rows * dim), cache(keys * stride), out(rows * dv, -1.0f);
      for (float& x : q) x = nd(rng);
      for (float& x : cache) x = nd(rng);
      std::vector<int64_t> limit(rows);
      for (int64_t r = 0; r < rows; ++r) limit[r] = 1 + (r * 11 + 5) % keys;
      const float* k = cache.data();
      const float* v = cache.data() + dim;
      const float scale = 0.3f;
      AttendBlock(q.data(), rows, limit.data(), k, v, stride, dim, dv, scale, out.data());
      for (int64_t r = 0; r < rows; ++r) {
        std::vector<double> w(limit[r]);
        double mx = -1e300, sum = 0;
        for (int64_t t = 0; t < limit[r]; ++t) {
          double s = 0;
          for (int64_t c = 0; c < dim; ++c) s += static_cast<double>(q[r * dim + c]) * k[t * stride + c];
          w[t] = s * scale;
          mx = std::max(mx, w[t]);
        }
        for (double& x : w) sum += (x = std::exp(x - mx));
        for (int64_t c = 0; c < dv; ++c) {
          double o = 0;
          for (int64_t t = 0; t < limit[r]; ++t) o += w[t] / sum * v[t * stride + c];
          ASSERT_NEAR(out[r * dv + c], o, tolerance)
              << "dim " << dim << " row " << r << " col " << c;
        }
      }
    }
  }
}

// A query row's output must not depend on the other rows of the call (speculative decoding's
// verification and plain decoding must pick the same tokens): each row alone, and the rows in
// calls of 1 .. 16, give the same bits.
TEST(AttendBlock, ARowsOutputDoesNotDependOnItsNeighbours) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  // Short rows and long ones (AttendPart: rows in lanes, from 256 floats).
  for (const auto& [dim, dv] : {std::pair<int64_t, int64_t>{72, 40}, {300, 263}}) {
    const int64_t stride = dim + dv + 8, keys = 29, rows = 16;
    std::vector<float> q(rows * dim), cache(keys * stride), all(rows * dv), one(dv);
    for (float& x : q) x = nd(rng);
    for (float& x : cache) x = nd(rng);
    const std::vector<int64_t> limit(rows, keys);
    for (int64_t n : {16, 7, 4, 1}) {
      AttendBlock(q.data(), n, limit.data(), cache.data(), cache.data() + dim, stride, dim, dv,
                  0.2f, all.data());
      for (int64_t r = 0; r < n; ++r) {
        AttendBlock(q.data() + r * dim, 1, limit.data() + r, cache.data(), cache.data() + dim,
                    stride, dim, dv, 0.2f, one.data());
        for (int64_t c = 0; c < dv; ++c)
          ASSERT_EQ(all[r * dv + c], one[c]) << "dim " << dim << ", " << n << " rows, row " << r;
      }
      std::vector<float> maxes(n), sums(n), max1(1), sum1(1);
      AttendPart(q.data(), n, keys, cache.data(), cache.data() + dim, stride, dim, dv, 0.2f,
                 all.data(), maxes.data(), sums.data());
      for (int64_t r = 0; r < n; ++r) {
        AttendPart(q.data() + r * dim, 1, keys, cache.data(), cache.data() + dim, stride, dim, dv,
                   0.2f, one.data(), max1.data(), sum1.data());
        ASSERT_EQ(maxes[r], max1[0]) << "part, dim " << dim << ", " << n << " rows, row " << r;
        ASSERT_EQ(sums[r], sum1[0]) << "part, dim " << dim << ", " << n << " rows, row " << r;
        for (int64_t c = 0; c < dv; ++c)
          ASSERT_EQ(all[r * dv + c], one[c]) << "part, dim " << dim << ", " << n << " rows";
      }
    }
  }
}

// Attention split by keys (MLA decode over a long cache): parts over disjoint key ranges,
// merged, equal the softmax over all keys, for the few-row kernels and the GEMM path, uneven
// part sizes and a part of a single key.
TEST(AttendPart, PartsMergeToTheWholeSoftmax) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  for (const auto& [dim, dv] : {std::pair<int64_t, int64_t>{67, 35}, {275, 259}}) {
    const int64_t stride = dim + 4, keys = 37;
    const double tolerance = 2e-5 * std::max(1.0, dim / 128.0);
    std::vector<float> cache(keys * stride);
    for (float& x : cache) x = nd(rng);
    const float* k = cache.data();
    const float* v = cache.data() + 4;  // values overlap the keys, as MLA's latent rows do
    for (int64_t rows : {1, 16, 17, 40}) {
      std::vector<float> q(rows * dim);
      for (float& x : q) x = nd(rng);
      for (const std::vector<int64_t>& bounds :
           {std::vector<int64_t>{0, 37}, {0, 18, 37}, {0, 7, 14, 21, 29, 37}, {0, 1, 36, 37}}) {
        const int64_t parts = static_cast<int64_t>(bounds.size()) - 1;
        std::vector<float> outs(parts * rows * dv), maxes(parts * rows), sums(parts * rows);
        for (int64_t p = 0; p < parts; ++p)
          AttendPart(q.data(), rows, bounds[p + 1] - bounds[p], k + bounds[p] * stride,
                     v + bounds[p] * stride, stride, dim, dv, 0.25f, outs.data() + p * rows * dv,
                     maxes.data() + p * rows, sums.data() + p * rows);
        std::vector<float> out(rows * dv, -1.0f);
        MergeAttendParts(parts, rows, dv, outs.data(), maxes.data(), sums.data(), 0, rows,
                         out.data());
        for (int64_t r = 0; r < rows; ++r) {
          std::vector<double> w(keys);
          double mx = -1e300, sum = 0;
          for (int64_t t = 0; t < keys; ++t) {
            double sc = 0;
            for (int64_t c = 0; c < dim; ++c)
              sc += static_cast<double>(q[r * dim + c]) * k[t * stride + c];
            mx = std::max(mx, w[t] = sc * 0.25);
          }
          for (double& x : w) sum += (x = std::exp(x - mx));
          for (int64_t c = 0; c < dv; ++c) {
            double o = 0;
            for (int64_t t = 0; t < keys; ++t) o += w[t] / sum * v[t * stride + c];
            ASSERT_NEAR(out[r * dv + c], o, tolerance)
                << "dim " << dim << ", " << rows << " rows, " << parts << " parts, row " << r
                << " col " << c;
          }
        }
      }
    }
  }
}

TEST(AttendBlock, RowsForBudget) {
  EXPECT_EQ(AttendBlockRows(1000, 1 << 18), (1 << 18) / 1000);
  EXPECT_EQ(AttendBlockRows(1 << 30), 1);
}

}  // namespace
}  // namespace r1
