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

// Q8/Q4 products with many tokens on AMX: the weight panels are dequantized to BF16 as they are
// repacked (code x scale, rounded to 8 significant bits) and the activations rounded to one BF16
// term, so `tdpbf16ps` accumulates in float32 across blocks. The int8 GEMM (gemm_int8.h) has to
// take every 32 columns' sums out of the tiles to scale them, which held AMX int8 to the VNNI
// kernel's rate; here nothing leaves the tiles until the row ends (docs/performance.md). Both
// roundings are of the size of the int8 activations' own (relative 2^-9 per value against up to
// 2^-8 of a block's largest), so MatMul takes it where the int8 GEMM would run with int8
// activations on, on CPUs where AmxEnabled(). Inside an ExactBf16Activations scope the
// activations keep both terms.
bool QuantizedAmxGemmApplies(const Matrix& w);
void QuantizedAmxGemm(const Matrix& w, const float* x, int64_t x_stride, int64_t n_tokens,
                      float* y, int64_t y_stride, const float* bias, ThreadPool& pool);

// SwiGLU's hidden activations, y = SiluMul(gate x, up x), on AMX in one pass (gate and up of the
// same shape and type, Q8/Q4 or BF16): each 32-row panel of the up projection runs right after
// the gate's panel of the same rows, and its results meet the gate's in y while both are in L1.
// Apart, the two products wrote 2 x 18 MB per layer of a 512-token Qwen-1.5B prefill and SiluMul
// read them back, 4% of its time. Each product is the one QuantizedAmxGemm or Bf16Gemm computes,
// and the activation is SiluMul itself, so y equals the unfused path's. The caller picks it where
// MatMul would take those kernels for both (MatMulSwiGlu).
void SwiGluAmx(const Matrix& gate, const Matrix& up, const float* x, int64_t x_stride,
               int64_t n_tokens, float* y, int64_t y_stride, ThreadPool& pool);

// A whole SwiGLU MLP on AMX, y = down (SiluMul(gate x, up x)), with SwiGluAmx's hidden
// activations written by its epilogues straight into the down projection's BF16 activation
// planes: SwiGluAmx's output then went through 18 MB of float32 rows per layer of a 512-token
// Qwen-1.5B prefill, written and read back to be rounded to BF16. The same roundings of the same
// values, so the same y as SwiGluAmx followed by MatMul of down. down takes the path MatMul would
// (QuantizedAmxGemm or Bf16Gemm, by its type); the caller checks that (SwiGluMlp).
void SwiGluMlpAmx(const Matrix& gate, const Matrix& up, const Matrix& down, const float* x,
                  int64_t x_stride, int64_t n_tokens, float* y, int64_t y_stride,
                  ThreadPool& pool);

// Below this many tokens the per-panel dequantization costs more than the tiles save. On a
// V2-Lite expert (1408 x 2048, matmul_bench, Xeon) the int8 GEMM was 1.2-1.7x faster at 12-16
// tokens and 1.05-1.2x at 24; this one 1.0-1.2x faster at 32 and 1.1-1.2x at 48. On the 8960 x
// 1536 products: 1.3-1.5x at 64 tokens, 1.9-2.1x at 512.
inline constexpr int64_t kQuantizedAmxMinTokens = 32;

}  // namespace r1
