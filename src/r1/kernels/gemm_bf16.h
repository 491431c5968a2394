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

// Process-wide switch (default off; R1_BF16_ACTIVATIONS=1 in the environment or the commands'
// --bf16-activations turns it on): one BF16 term per activation, as llama.cpp and PyTorch's
// BF16 inference do. Half the dot products (prefill near twice as fast), at the cost of rounding
// every activation to 8 significant bits (relative 2^-9): the golden folders' logits move by
// 0.2-0.6% of their range instead of ~0.001% (docs/quantization.md).
void SetBf16RoundedActivations(bool on);
bool Bf16RoundedActivations();

// While one lives, this thread's products keep both terms whatever the switch says: for products
// that make discrete choices, such as an MoE router's scores, where a rounding could flip an
// expert and move the output far more than the rounding itself (the V3 golden folders' logits
// moved by 0.4 of their range).
class ExactBf16Activations {
 public:
  ExactBf16Activations();
  ~ExactBf16Activations();
  ExactBf16Activations(const ExactBf16Activations&) = delete;
  ExactBf16Activations& operator=(const ExactBf16Activations&) = delete;
};

// Whether the BF16 GEMM can take this matrix on this CPU (BF16 weights, even row length,
// AVX512-BF16).
bool Bf16GemmApplies(const Matrix& w);

// y[t][r] = sum_c W[r][c] * (hi[t][c] + lo[t][c]) (+ bias[r]), without lo under
// SetBf16RoundedActivations(true); x rows `x_stride` floats apart.
void Bf16Gemm(const Matrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
              int64_t y_stride, const float* bias, ThreadPool& pool);

}  // namespace r1
