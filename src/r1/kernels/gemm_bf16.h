// Prefill-time products of BF16 weights with many tokens on AVX512-BF16 (`vdpbf16ps`, twice the
// FP32 FMA rate). Each activation is split into two BF16 terms, x = hi + lo with hi = bf16(x)
// and lo = bf16(x - hi), and both are multiplied with the weights: a BF16 x BF16 product is exact
// in float32, so the only loss beyond float32 accumulation is x's bits past the 16th (relative
// 2^-17), far below the golden tolerance, where one term alone (llama.cpp's way) would round
// every activation to 8 bits. Each thread repacks a panel of 32 weight rows into the pairwise
// layout the instruction wants; a register tile of 32 rows x several tokens accumulates in
// float32.
#pragma once

#include <cstdint>

#include "r1/core/thread_pool.h"
#include "r1/kernels/matrix.h"

namespace r1 {

// Process-wide switch (default on; R1_BF16_GEMM=0 in the environment turns it off, leaving the
// float32 sgemm path).
void SetBf16Gemm(bool on);
bool Bf16GemmEnabled();

// Whether the BF16 GEMM can take this matrix on this CPU (BF16 weights, even row length,
// AVX512-BF16).
bool Bf16GemmApplies(const Matrix& w);

// y[t][r] = sum_c W[r][c] * (hi[t][c] + lo[t][c]) (+ bias[r]); x rows `x_stride` floats apart.
void Bf16Gemm(const Matrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
              int64_t y_stride, const float* bias, ThreadPool& pool);

}  // namespace r1
