// Prefill-time products of Q8/Q4 weights with many tokens on AVX512-VNNI: the activations are
// quantized to int8 per block of 32 (as the decode path in matvec_int8.h does), each thread
// repacks a panel of 32 weight rows into the layout `vpdpbusd` wants (4 consecutive codes of one
// row per 32-bit lane, 16 rows per vector), and a register tile of 32 rows x several tokens
// accumulates exact int32 block sums that are scaled into float32 once per block. Widening the
// weights to float32 for sgemm, the fallback, uses a quarter of the int8 instructions' peak.
// On CPUs with AMX, MatMul gives prompts of kQuantizedAmxMinTokens or more to QuantizedAmxGemm
// (gemm_bf16.h) instead.
#pragma once

#include <cstdint>

#include "r1/core/thread_pool.h"
#include "r1/kernels/matrix.h"

namespace r1 {

// Whether the int8 GEMM can take this matrix on this CPU (Q8/Q4, rows of whole blocks of 32,
// AVX512-VNNI). The caller also checks Int8ActivationsEnabled().
bool Int8GemmApplies(const Matrix& w);

// y[t][r] = sum over blocks b of (exact int32 block sum of w codes x activation codes) x
// w_scale[r][b] x x_scale[t][b], plus bias[r] if given; x rows `x_stride` floats apart.
void Int8Gemm(const Matrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
              int64_t y_stride, const float* bias, ThreadPool& pool);

}  // namespace r1
