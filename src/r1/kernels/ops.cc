#include "r1/kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace r1 {

namespace {
// Eight partial sums keep the loops vectorizable without reassociating float adds.
inline float SumSquares(const float* x, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += x[i + j] * x[i + j];
  float s = 0;
  for (; i < n; ++i) s += x[i] * x[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}
}  // namespace

void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y) {
  const float r = 1.0f / std::sqrt(SumSquares(x, n) / static_cast<float>(n) + eps);
  for (int64_t i = 0; i < n; ++i) y[i] = w[i] * (x[i] * r);
}

void RmsNormRows(float* x, int64_t rows, int64_t stride, const float* w, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) RmsNorm(x + r * stride, w, n, eps, x + r * stride);
}

void Softmax(float* x, int64_t n) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, x[i]);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - m);
    s += x[i];
  }
  const float inv = 1.0f / s;
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void SiluMul(float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = a[i] / (1.0f + std::exp(-a[i])) * b[i];
}

// Dot and Axpy carry attention over the cache (one of each per cached position, head and layer
// every step), so they get AVX-512/AVX2 clones chosen at load time; the rest of this file is
// light enough for the baseline build.
#define R1_ATTENTION_LOOP __attribute__((target_clones("avx512f", "avx2", "default")))

R1_ATTENTION_LOOP float Dot(const float* a, const float* b, int64_t n) {
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) acc[j] += a[i + j] * b[i + j];
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (int j = 0; j < 16; ++j) s += acc[j];
  return s;
}

R1_ATTENTION_LOOP void Axpy(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void RopeInterleaved(float* x, int64_t d, int64_t pos, const float* inv_freq) {
  const float p = static_cast<float>(pos);
  for (int64_t i = 0; i < d / 2; ++i) {
    const float a = p * inv_freq[i];
    const float c = std::cos(a), s = std::sin(a);
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * c - x1 * s;
    x[2 * i + 1] = x0 * s + x1 * c;
  }
}

void RopeHalfSplit(float* x, int64_t d, int64_t pos, const float* inv_freq) {
  const float p = static_cast<float>(pos);
  const int64_t h = d / 2;
  for (int64_t i = 0; i < h; ++i) {
    const float a = p * inv_freq[i];
    const float c = std::cos(a), s = std::sin(a);
    const float x0 = x[i], x1 = x[i + h];
    x[i] = x0 * c - x1 * s;
    x[i + h] = x1 * c + x0 * s;
  }
}

}  // namespace r1
