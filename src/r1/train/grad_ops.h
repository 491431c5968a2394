// Forward ops that keep what their backward needs, and the backward ops of the training pass.
// Float32 throughout; every backward has a finite-difference test (tests/unit/train_grad_test.cc).
// Backward functions accumulate (+=) into their input and weight gradients, since a tensor can
// feed several consumers (the residual stream, shared heads).
#pragma once

#include <cstdint>

#include "r1/core/thread_pool.h"

namespace r1 {

// y = w * x * rstd per row, rstd = 1 / sqrt(mean(x^2) + eps); rstd[rows] is kept for backward.
// Rows are `stride` floats apart in x and `n` floats apart in y.
void RmsNormForward(const float* x, int64_t stride, const float* w, int64_t rows, int64_t n,
                    float eps, float* y, float* rstd, ThreadPool& pool);
// dx (stride `stride`) += d/dx, dw += d/dw, given dy [rows, n].
void RmsNormBackward(const float* x, int64_t stride, const float* w, const float* rstd,
                     const float* dy, int64_t rows, int64_t n, float* dx, float* dw,
                     ThreadPool& pool);

// a = silu(g) * u.
void SiluMulForward(const float* g, const float* u, int64_t n, float* a, ThreadPool& pool);
// dg = da * u * silu'(g), du = da * silu(g) (overwritten, not accumulated).
void SiluMulBackward(const float* g, const float* u, const float* da, int64_t n, float* dg,
                     float* du, ThreadPool& pool);

// Cross-entropy of each row's logits against its target, for rows whose mask is set. Returns
// the sum of the per-row losses; replaces logits by d(scale * sum)/d logits (zero for masked-out
// rows).
double CrossEntropyForwardBackward(float* logits, int64_t rows, int64_t vocab,
                                   const int32_t* targets, const uint8_t* mask, float scale,
                                   ThreadPool& pool);

// Bias gradient: db[j] += sum over rows of dy[r][j].
void BiasBackward(const float* dy, int64_t rows, int64_t n, float* db);

}  // namespace r1
