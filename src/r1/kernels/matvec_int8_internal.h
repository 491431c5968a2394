// Shared between the int8-activation decode kernels of matvec_int8.cc (AVX512-VNNI) and
// matvec_int8_avx2.cc (AVX2 and AVX-VNNI): the activation buffers' sizing and lane layout, and
// the AVX2 entry points.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "r1/core/thread_pool.h"
#include "r1/kernels/matvec_int8.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1::int8_detail {

// Activation bytes of one run of kTileBlocks blocks, in each lane layout.
inline constexpr int64_t kRunBytes = kTileBlocks * kQuantBlock;

// Software prefetch distance along the weights. A group's tiles are contiguous, so this runs
// ahead of the hardware prefetchers, which stop at 4 KiB pages: without it two threads read
// DRAM at 0.72-0.85 of a plain read loop, with it 0.90-1.1 (2-8 KiB measured; 16 KiB, right
// for the earlier block-order kernel, was lower).
inline constexpr int64_t kPrefetchBytes = 4096;

// Sizes the buffers (the padding lanes zero); returns the number of runs.
int64_t PrepareActivations(int64_t cols, Int8Activations& out);

// Copies block b's 32 codes (natural order, already in out.code) into both lane layouts and
// sets its biases from their sum. Inline: as a call per block, batch-8 decode ran ~5% slower.
R1_INLINE void SpreadBlock(int64_t b, int code_sum, Int8Activations& o) {
  int32_t words[8];  // the block's codes, 4 per word
  std::memcpy(words, o.code.data() + b * kQuantBlock, kQuantBlock);
  int8_t* q8 = o.q8_lanes.data() + (b / kTileBlocks) * kRunBytes + (b % kTileBlocks) * 4;
  int8_t* q4 = o.q4_lanes.data() + (b / kTileBlocks) * kRunBytes + (b % kTileBlocks) * 4;
  for (int q = 0; q < 8; ++q) std::memcpy(q8 + 64 * q, words + q, 4);
  for (int q = 0; q < 4; ++q) {
    std::memcpy(q4 + 128 * q, words + q, 4);
    std::memcpy(q4 + 128 * q + 64, words + 4 + q, 4);
  }
  o.q8_bias[b] = -128 * code_sum;
  o.q4_bias[b] = -8 * code_sum;
}

// AVX2 (`vpmaddubsw`) or, where the CPU has it, AVX-VNNI (`vpdpbusd` on 256 bits).
void QuantizeActivationsAvx2(const float* x, int64_t cols, Int8Activations& out);
void Int8RowsAvx2(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x, int64_t n,
                  float* y, int64_t y_stride, const float* bias);
// Activations of n tokens for the int8 GEMMs (gemm_int8.cc), quantized per block of 32 exactly
// as QuantizeActivations does, with the correction for the weights' unsigned offset folded into
// one int32 per token and block.
struct QuantizedTokens {
  int64_t cols = 0, blocks = 0;
  std::vector<int8_t> code;   // [n][cols]
  std::vector<float> dx;      // [n][blocks]
  std::vector<int32_t> corr;  // [n][blocks]: -offset x the block's sum of codes
};

// Int8Gemm's AVX2 / AVX-VNNI kernel (gemm_int8_avx2.cc), on tokens Int8Gemm quantized.
void Int8GemmAvx2(const Matrix& w, const QuantizedTokens& q, int64_t n, float* y,
                  int64_t y_stride, const float* bias, ThreadPool& pool);

#if defined(__x86_64__)
// One block of 32 activations to codes (code[0 .. 32)); returns the block's scale dx and sets
// *sum to the codes' sum. Bit-identical to the scalar definition (QuantizeActivations): the same
// float multiplies, vcvtps2dq rounding as nearbyint, and clamping the integers.
R1_TARGET_AVX2 R1_INLINE float QuantizeBlockAvx2(const float* x, int8_t* code, int* sum) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 v[4];
  for (int i = 0; i < 4; ++i) v[i] = _mm256_loadu_ps(x + 8 * i);
  const __m256 m = _mm256_max_ps(
      _mm256_max_ps(_mm256_andnot_ps(sign, v[0]), _mm256_andnot_ps(sign, v[1])),
      _mm256_max_ps(_mm256_andnot_ps(sign, v[2]), _mm256_andnot_ps(sign, v[3])));
  __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
  m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
  m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
  const float d = _mm_cvtss_f32(m4) / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
  const __m256 vi = _mm256_set1_ps(inv);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  __m256i c[4];
  for (int i = 0; i < 4; ++i)
    c[i] = _mm256_max_epi32(_mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(v[i], vi)), hi), lo);
  // vpackssdw/vpacksswb interleave the 128-bit halves: the permutation puts the 4-byte groups
  // back in order.
  const __m256i packed = _mm256_permutevar8x32_epi32(
      _mm256_packs_epi16(_mm256_packs_epi32(c[0], c[1]), _mm256_packs_epi32(c[2], c[3])),
      _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(code), packed);
  const __m256i s = _mm256_add_epi32(_mm256_add_epi32(c[0], c[1]), _mm256_add_epi32(c[2], c[3]));
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(1, 0, 3, 2)));
  s4 = _mm_add_epi32(s4, _mm_shuffle_epi32(s4, _MM_SHUFFLE(2, 3, 0, 1)));
  *sum = _mm_cvtsi128_si32(s4);
  return d;
}
#endif

}  // namespace r1::int8_detail
