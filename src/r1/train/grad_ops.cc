#include "r1/train/grad_ops.h"

#include <cmath>
#include <vector>

namespace r1 {

void RmsNormForward(const float* x, int64_t stride, const float* w, int64_t rows, int64_t n,
                    float eps, float* y, float* rstd, ThreadPool& pool) {
  pool.ParallelFor(rows, 64, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * stride;
      float ss = 0;
      for (int64_t i = 0; i < n; ++i) ss += xr[i] * xr[i];
      const float s = 1.0f / std::sqrt(ss / static_cast<float>(n) + eps);
      rstd[r] = s;
      float* yr = y + r * n;
      for (int64_t i = 0; i < n; ++i) yr[i] = w[i] * (xr[i] * s);
    }
  });
}

void RmsNormBackward(const float* x, int64_t stride, const float* w, const float* rstd,
                     const float* dy, int64_t rows, int64_t n, float* dx, float* dw,
                     ThreadPool& pool) {
  pool.ParallelFor(rows, 64, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * stride;
      const float* g = dy + r * n;
      const float s = rstd[r];
      float dot = 0;  // sum_i w_i dy_i x_i
      for (int64_t i = 0; i < n; ++i) dot += w[i] * g[i] * xr[i];
      const float c = dot * s * s * s / static_cast<float>(n);
      float* d = dx + r * stride;
      for (int64_t i = 0; i < n; ++i) d[i] += s * w[i] * g[i] - c * xr[i];
    }
  });
  // Row order fixed, so the weight gradient does not depend on the thread count.
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * stride;
    const float* g = dy + r * n;
    const float s = rstd[r];
    for (int64_t i = 0; i < n; ++i) dw[i] += g[i] * xr[i] * s;
  }
}

void SiluMulForward(const float* g, const float* u, int64_t n, float* a, ThreadPool& pool) {
  pool.ParallelFor(n, 4096, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) a[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  });
}

void SiluMulBackward(const float* g, const float* u, const float* da, int64_t n, float* dg,
                     float* du, ThreadPool& pool) {
  pool.ParallelFor(n, 4096, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const float sig = 1.0f / (1.0f + std::exp(-g[i]));
      const float silu = g[i] * sig;
      du[i] = da[i] * silu;
      dg[i] = da[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
  });
}

double CrossEntropyForwardBackward(float* logits, int64_t rows, int64_t vocab,
                                   const int32_t* targets, const uint8_t* mask, float scale,
                                   ThreadPool& pool) {
  std::vector<double> row_loss(rows, 0.0);
  pool.ParallelFor(rows, 16, [&](int64_t b, int64_t e, int) {
    for (int64_t r = b; r < e; ++r) {
      float* z = logits + r * vocab;
      if (!mask[r]) {
        std::fill(z, z + vocab, 0.0f);
        continue;
      }
      float mx = z[0];
      for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, z[v]);
      const double target_logit = static_cast<double>(z[targets[r]]) - mx;
      double sum = 0;
      for (int64_t v = 0; v < vocab; ++v) {
        z[v] = std::exp(z[v] - mx);
        sum += z[v];
      }
      row_loss[r] = std::log(sum) - target_logit;
      const float inv = static_cast<float>(scale / sum);
      for (int64_t v = 0; v < vocab; ++v) z[v] *= inv;
      z[targets[r]] -= scale;
    }
  });
  double total = 0;
  for (double l : row_loss) total += l;
  return total;
}

void BiasBackward(const float* dy, int64_t rows, int64_t n, float* db) {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < n; ++i) db[i] += dy[r * n + i];
}

}  // namespace r1
