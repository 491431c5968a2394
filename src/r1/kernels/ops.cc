#include "r1/kernels/ops.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

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

// Dot, Axpy, Softmax and SiluMul run over every cached position or every intermediate
// activation, so they get AVX-512/AVX2 clones chosen at load time; the rest of this file is
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

namespace {
// exp(x) within about 2 ulp (Cephes' expf: 2^n times a degree-7 polynomial of the remainder) in
// plain float operations that GCC vectorizes; std::exp is a scalar library call, and SiluMul's and
// Softmax's calls to it were 4% of a prefill. Below -87.3 it returns 0, above 88.7 infinity.
R1_INLINE float ExpVec(float x) {
  const float xc = std::min(std::max(x, -87.3f), 88.3f);
  // Round to the nearest integer by adding 1.5 * 2^23 (n stays far below 2^22 in magnitude).
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  const float e = x > 88.7f ? std::numeric_limits<float>::infinity() : p * scale;
  return x < -87.3f ? 0.0f : e;
}
}  // namespace

namespace {

R1_ATTENTION_LOOP float SoftmaxUnnormalizedPortable(float* x, int64_t n, float scale,
                                                    float* max_out) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) m = std::max(m, scale * x[i]);
  float acc[16] = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    for (int j = 0; j < 16; ++j) {
      x[i + j] = ExpVec(scale * x[i + j] - m);
      acc[j] += x[i + j];
    }
  }
  float s = 0;
  for (; i < n; ++i) {
    x[i] = ExpVec(scale * x[i] - m);
    s += x[i];
  }
  for (int j = 0; j < 16; ++j) s += acc[j];
  *max_out = m;
  return s;
}

R1_ATTENTION_LOOP void SiluMulPortable(float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i) a[i] = a[i] / (1.0f + ExpVec(-a[i])) * b[i];
}

#if defined(__x86_64__)
// GCC 12's AVX-512 headers initialize `_mm512_undefined_*` from themselves, which its own
// -Wmaybe-uninitialized (and, in the reductions, -Wuninitialized) reports at every inlined use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
// ExpVec's steps on 16 lanes, for arguments that cannot overflow (SiluMulAvx512 bounds them).
R1_TARGET_AVX512 R1_INLINE __m512 ExpNoOverflow(__m512 x) {
  const __m512 xc = _mm512_max_ps(x, _mm512_set1_ps(-87.3f));
  const __m512 shifter = _mm512_set1_ps(12582912.0f);
  const __m512 n =
      _mm512_sub_ps(_mm512_fmadd_ps(xc, _mm512_set1_ps(1.44269504088896341f), shifter), shifter);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_scalef_ps(p, n);
}

// SiLU's division as a 14-bit reciprocal and one Newton step (within 2 ulp of the quotient):
// since the fused SwiGLU pass (MatMulSwiGlu) hands it L1-resident rows, the divider bounded it
// (0.32 against 0.40 ns per element). Below -kSiluLow the result is 0: the reciprocal of
// 1 + e^-x would leave the normal range, and the true value is under 1e-32 in magnitude.
constexpr float kSiluLow = 80.0f;
R1_TARGET_AVX512 void SiluMulAvx512(float* a, const float* b, int64_t n) {
  const __m512 one = _mm512_set1_ps(1.0f), low = _mm512_set1_ps(-kSiluLow);
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 m = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    const __m512 x = _mm512_maskz_loadu_ps(m, a + i);
    const __m512 neg = _mm512_sub_ps(_mm512_setzero_ps(), _mm512_max_ps(x, low));
    const __m512 d = _mm512_add_ps(one, ExpNoOverflow(neg));
    __m512 r = _mm512_rcp14_ps(d);
    r = _mm512_fmadd_ps(_mm512_fnmadd_ps(d, r, one), r, r);
    const __m512 y = _mm512_mul_ps(_mm512_mul_ps(x, r), _mm512_maskz_loadu_ps(m, b + i));
    const __mmask16 kept = _mm512_cmp_ps_mask(x, low, _CMP_NLT_UQ);  // NaNs stay NaNs
    _mm512_mask_storeu_ps(a + i, m, _mm512_maskz_mov_ps(kept, y));
  }
}

// The scores of a decode step's attention, one row per head over every cached position: at
// context 3000 the scalar max (a float max does not vectorize without -ffast-math) and the
// separate scaling pass made softmax 8% of a Qwen-1.5B Q4 decode step.
R1_TARGET_AVX512 float SoftmaxUnnormalizedAvx512(float* x, int64_t n, float scale,
                                                 float* max_out) {
  const __m512 sv = _mm512_set1_ps(scale);
  __m512 mv = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    // max(y, m) returns m where y is NaN, as std::max(m, y) does.
    mv = _mm512_mask_max_ps(mv, k, _mm512_mul_ps(sv, _mm512_maskz_loadu_ps(k, x + i)), mv);
  }
  const float m = _mm512_reduce_max_ps(mv);
  const __m512 mb = _mm512_set1_ps(m), low = _mm512_set1_ps(-87.3f);
  __m512 acc = _mm512_setzero_ps();
  for (int64_t i = 0; i < n; i += 16) {
    const __mmask16 k = static_cast<__mmask16>(n - i >= 16 ? 0xffff : (1u << (n - i)) - 1);
    const __m512 d = _mm512_sub_ps(_mm512_mul_ps(sv, _mm512_maskz_loadu_ps(k, x + i)), mb);
    // Below -87.3 the result is 0, as ExpVec's. ExpNoOverflow's clamp turns a NaN into -87.3,
    // so NaNs are put back: a NaN score must make the row's sum NaN, as the portable loop does.
    const __mmask16 kept = _mm512_mask_cmp_ps_mask(k, d, low, _CMP_NLT_UQ);
    __m512 e = _mm512_maskz_mov_ps(kept, ExpNoOverflow(d));
    e = _mm512_mask_mov_ps(e, _mm512_mask_cmp_ps_mask(k, d, d, _CMP_UNORD_Q), d);
    _mm512_mask_storeu_ps(x + i, k, e);
    acc = _mm512_add_ps(acc, e);
  }
  *max_out = m;
  return _mm512_reduce_add_ps(acc);
}
#pragma GCC diagnostic pop
#endif

}  // namespace

void SiluMul(float* a, const float* b, int64_t n) {
#if defined(__x86_64__)
  static const bool avx512 = DetectIsa() == IsaLevel::kAvx512;
  if (avx512) return SiluMulAvx512(a, b, n);
#endif
  SiluMulPortable(a, b, n);
}

float SoftmaxUnnormalized(float* x, int64_t n, float* max_out, float scale) {
#if defined(__x86_64__)
  static const bool avx512 = DetectIsa() == IsaLevel::kAvx512;
  if (avx512) return SoftmaxUnnormalizedAvx512(x, n, scale, max_out);
#endif
  return SoftmaxUnnormalizedPortable(x, n, scale, max_out);
}

R1_ATTENTION_LOOP void Softmax(float* x, int64_t n, float scale) {
  float m;
  const float inv = 1.0f / SoftmaxUnnormalized(x, n, &m, scale);
  for (int64_t k = 0; k < n; ++k) x[k] *= inv;
}

void RopeAngles(int64_t d, int64_t pos, const float* inv_freq, float* cos_sin) {
  const float p = static_cast<float>(pos);
  for (int64_t i = 0; i < d / 2; ++i) {
    const float a = p * inv_freq[i];
    cos_sin[2 * i] = std::cos(a);
    cos_sin[2 * i + 1] = std::sin(a);
  }
}

void RopeInterleaved(float* x, int64_t d, const float* cos_sin) {
  for (int64_t i = 0; i < d / 2; ++i) {
    const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
    const float x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * c - x1 * s;
    x[2 * i + 1] = x0 * s + x1 * c;
  }
}

void RopeHalfSplit(float* x, int64_t d, const float* cos_sin) {
  const int64_t h = d / 2;
  for (int64_t i = 0; i < h; ++i) {
    const float c = cos_sin[2 * i], s = cos_sin[2 * i + 1];
    const float x0 = x[i], x1 = x[i + h];
    x[i] = x0 * c - x1 * s;
    x[i + h] = x1 * c + x0 * s;
  }
}

void RopeInterleaved(float* x, int64_t d, int64_t pos, const float* inv_freq) {
  thread_local std::vector<float> cs;
  cs.resize(d);
  RopeAngles(d, pos, inv_freq, cs.data());
  RopeInterleaved(x, d, cs.data());
}

void RopeHalfSplit(float* x, int64_t d, int64_t pos, const float* inv_freq) {
  thread_local std::vector<float> cs;
  cs.resize(d);
  RopeAngles(d, pos, inv_freq, cs.data());
  RopeHalfSplit(x, d, cs.data());
}

}  // namespace r1
