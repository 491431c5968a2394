// Products with stored weight matrices, float32 accumulation.
#pragma once

#include <cstdint>
#include <span>

#include "r1/core/thread_pool.h"
#include "r1/kernels/matrix.h"

namespace r1 {

// y[t][r] = sum_c W[r][c] * x[t][c] for t < n_tokens, r < W.rows (plus bias[r] if given).
// x rows are `x_stride` floats apart, y rows `y_stride` floats apart.
void MatMul(const Matrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
            int64_t y_stride, const float* bias, ThreadPool& pool);

inline void MatMul(const Matrix& w, const float* x, int64_t n_tokens, float* y, ThreadPool& pool,
                   const float* bias = nullptr) {
  MatMul(w, x, w.cols, n_tokens, y, w.rows, bias, pool);
}

// One product of a MatMulShared call: W times the shared input into y (rows `y_stride` apart).
struct MatMulJob {
  const Matrix* w;
  float* y;
  int64_t y_stride;
  const float* bias = nullptr;
};

// Several products of the same input rows (q/k/v, gate/up), with equal column counts. Below
// kGemmMinTokens they share one parallel region and one int8 quantization of the input: a
// decode step otherwise synchronized the threads once per matrix, and each short region ended
// with one thread waiting for the other. From kGemmMinTokens on, one MatMul each.
void MatMulShared(std::span<const MatMulJob> jobs, const float* x, int64_t x_stride,
                  int64_t n_tokens, ThreadPool& pool);

// SwiGLU's hidden activations: y[t] = silu(gate x[t]) * (up x[t]) (SiluMul), rows `y_stride`
// apart; gate and up have equal column counts and no bias. Where MatMul would run both on AMX,
// in one pass (SwiGluAmx, no intermediate in memory); else MatMulShared and SiluMul. Both give
// the same y.
void MatMulSwiGlu(const Matrix& gate, const Matrix& up, const float* x, int64_t x_stride,
                  int64_t n_tokens, float* y, int64_t y_stride, ThreadPool& pool);

// A SwiGLU MLP: y[t] = down (silu(gate x[t]) * (up x[t])), rows `y_stride` apart. Where MatMul
// would run all three on AMX, in one pass whose hidden activations never leave BF16 tile planes
// (SwiGluMlpAmx); else MatMulSwiGlu and MatMul. Both give the same y.
void SwiGluMlp(const Matrix& gate, const Matrix& up, const Matrix& down, const float* x,
               int64_t x_stride, int64_t n_tokens, float* y, int64_t y_stride, ThreadPool& pool);

// From this many tokens on, MatMul widens panels of weight rows to float32 and runs OpenBLAS's
// sgemm on them (compute-bound regime); below, a streaming kernel reads each weight once.
inline constexpr int64_t kGemmMinTokens = 12;

// y[0 .. r1-r0) = rows [r0, r1) of W times one token's x, on the calling thread with the kernel
// MatMul would use for one token (int8 activations for Q8/Q4): per-head products inside a
// parallel loop, such as MLA's W_UV in decode.
void MatVecRowRange(const Matrix& w, int64_t r0, int64_t r1, const float* x, float* y);

// The streaming kernel at any token count (benchmarks and tests of both paths).
void MatMulRows(const Matrix& w, const float* x, int64_t x_stride, int64_t n_tokens, float* y,
                int64_t y_stride, const float* bias, ThreadPool& pool);

// Rows [r0, r1) of W in float32, `cols` apart, computed as DequantRow does (vectorized).
void WidenRows(const Matrix& w, int64_t r0, int64_t r1, float* out);

// The plain reference: dequantize each row, then dot products in order. Used by tests to check
// the fast kernel on odd shapes.
void MatMulReference(const Matrix& w, const float* x, int64_t n_tokens, float* y,
                     const float* bias);

}  // namespace r1
