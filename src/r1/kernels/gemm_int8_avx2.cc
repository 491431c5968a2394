// The int8 prefill GEMM for CPUs without AVX512-VNNI (gemm_int8.h): AVX2's `vpmaddubsw` or
// AVX-VNNI's 256-bit `vpdpbusd`, panels of 8 rows (one vector) x tiles of 4 tokens. The same
// activation rounding and exact block sums as the AVX-512 kernel; widening the weights to
// float32 for sgemm, the fallback, ran at the FP32 FMA peak's share.
#include <algorithm>
#include <cstring>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/gemm_int8.h"
#include "r1/kernels/matvec_int8_internal.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace r1::int8_detail {

namespace {

constexpr int kRows = 8;
constexpr int kTokens = 4;

// In-register transpose of 8x8 32-bit elements: v[i] lane j becomes v[j] lane i.
R1_TARGET_AVX2 R1_INLINE void Transpose8x8(__m256i (&v)[8]) {
  __m256i t[8], u[8];
  for (int p = 0; p < 4; ++p) {
    t[2 * p] = _mm256_unpacklo_epi32(v[2 * p], v[2 * p + 1]);
    t[2 * p + 1] = _mm256_unpackhi_epi32(v[2 * p], v[2 * p + 1]);
  }
  for (int g = 0; g < 2; ++g) {
    u[4 * g + 0] = _mm256_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm256_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm256_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm256_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    v[c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x20);
    v[4 + c] = _mm256_permute2x128_si256(u[c], u[4 + c], 0x31);
  }
}

}  // namespace

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi2")
namespace gemm_avx2 {
namespace {
#define R1_INT8_AVX_VNNI 0
#include "r1/kernels/gemm_int8_avx2_body.h"
#undef R1_INT8_AVX_VNNI
}  // namespace
}  // namespace gemm_avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi2,avxvnni")
namespace gemm_avx_vnni {
namespace {
#define R1_INT8_AVX_VNNI 1
#include "r1/kernels/gemm_int8_avx2_body.h"
#undef R1_INT8_AVX_VNNI
}  // namespace
}  // namespace gemm_avx_vnni
#pragma GCC pop_options

void Int8GemmAvx2(const Matrix& w, const QuantizedTokens& q, int64_t n, float* y,
                  int64_t y_stride, const float* bias, ThreadPool& pool) {
  if (CpuHasAvxVnni())
    gemm_avx_vnni::Gemm(w, q, n, y, y_stride, bias, pool);
  else
    gemm_avx2::Gemm(w, q, n, y, y_stride, bias, pool);
}

}  // namespace r1::int8_detail
#endif
