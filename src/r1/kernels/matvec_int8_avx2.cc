// The int8-activation decode kernel for CPUs without AVX512-VNNI: AVX2's `vpmaddubsw`
// (Haswell to Comet Lake, Zen 1-3, and AVX-512 CPUs without VNNI such as Skylake-SP) or
// AVX-VNNI's 256-bit `vpdpbusd` (Alder Lake and later Intel client CPUs). Same tiles, activation
// layout and exact per-block integer sums as the AVX512-VNNI kernel in matvec_int8.cc, half the
// vector width. Without it these CPUs widened every Q8/Q4 weight to float32 in portable code,
// 50-75x slower in decode (docs/performance.md).
#include <algorithm>
#include <cstring>

#include "r1/core/dtype.h"
#include "r1/kernels/matvec_int8_internal.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace r1::int8_detail {

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi2")
namespace avx2 {
#define R1_INT8_AVX_VNNI 0
#include "r1/kernels/matvec_int8_avx2_body.h"
#undef R1_INT8_AVX_VNNI

// Bit-identical to QuantizeActivationsScalar, as the AVX-512 version is: the same float
// multiplies, vcvtps2dq rounding as nearbyint, and clamping the integers.
void QuantizeActivations(const float* x, int64_t cols, Int8Activations& o) {
  PrepareActivations(cols, o);
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i lo_clamp = _mm256_set1_epi32(-127), hi_clamp = _mm256_set1_epi32(127);
  // vpackssdw/vpacksswb interleave the 128-bit halves: this puts the 4-byte groups back in order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < cols / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    __m256 v[4];
    for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(xb + 8 * i);
    const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
                                   _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
    o.dx[b] = d;
    const __m256 vi = _mm256_set1_ps(inv);
    __m256i c[4];
    for (int i = 0; i < 4; ++i)
      c[i] = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v[i], vi)), hi_clamp),
                              lo_clamp);
    const __m256i packed = _mm256_permutevar8x32_epi32(
        _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3])), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.code.data() + b * kQuantBlock), packed);
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));
    __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
    s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
    SpreadBlock(b, _mm_cvtsi128_si32(s4), o);
  }
}
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi2,avxvnni")
namespace avx_vnni {
#define R1_INT8_AVX_VNNI 1
#include "r1/kernels/matvec_int8_avx2_body.h"
#undef R1_INT8_AVX_VNNI
}  // namespace avx_vnni
#pragma GCC pop_options

void QuantizeActivationsAvx2(const float* x, int64_t cols, Int8Activations& out) {
  avx2::QuantizeActivations(x, cols, out);
}

void Int8RowsAvx2(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x, int64_t n,
                  float* y, int64_t y_stride, const float* bias) {
  if (CpuHasAvxVnni()) return avx_vnni::Rows(w, r0, r1, x, n, y, y_stride, bias);
  avx2::Rows(w, r0, r1, x, n, y, y_stride, bias);
}

}  // namespace r1::int8_detail
#endif
