// What the BF16 GEMM's two kernels share (gemm_bf16.cc: `vdpbf16ps` on AVX-512 registers;
// gemm_bf16_amx.cc: AMX tiles): the panel repack and the BF16 widening.
#pragma once

#include <cstdint>

#include "r1/core/thread_pool.h"
#include "r1/kernels/gemm_panels.h"
#include "r1/kernels/matrix.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1::bf16_detail {

inline constexpr int kPairBytes = kPanelRows * 4;  // one column pair of a repacked panel

#if defined(__x86_64__)
R1_TARGET_AVX512_BF16 R1_INLINE __m512 WidenBf16(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Rows [r0, r0 + valid) of W: pair p of row i at byte p*128 + i*4 (columns 2p and 2p+1). Rows
// past `valid` are zero. Each group of 16 rows is read 16 pairs (64 bytes) per row at a time.
// Pairs [p0, p1) only (p0 a multiple of 16) with pair p0 at the start of `panel`: the AMX kernel
// repacks long rows a chunk at a time.
R1_TARGET_AVX512_BF16 void RepackPanel(const Matrix& w, int64_t r0, int valid, uint8_t* panel,
                                       int64_t p0 = 0, int64_t p1 = -1);

// Bf16Gemm on AMX tiles (gemm_bf16_amx.cc), for CPUs where AmxEnabled(). With `up` (same shape
// and type as w, bias null), y = SiluMul(w x, up x): SwiGLU's hidden activations in one pass.
void Bf16GemmAmx(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                 int64_t y_stride, const float* bias, bool two_terms, ThreadPool& pool,
                 const Matrix* up = nullptr);

// A SwiGLU MLP on AMX tiles: y = down (SiluMul(gate x, up x)), the hidden activations going from
// the up panels' epilogues straight into the down projection's BF16 planes (one term, or two with
// down_two_terms), never through float32 rows. Same results as Bf16GemmAmx with `up` followed by
// Bf16GemmAmx of down. gate and up of one shape; down.cols == gate.rows; biases none.
void SwiGluDownAmx(const Matrix& gate, const Matrix& up, const Matrix& down, const float* x,
                   int64_t x_stride, int64_t n, bool two_terms, bool down_two_terms, float* y,
                   int64_t y_stride, ThreadPool& pool);
#endif

}  // namespace r1::bf16_detail
