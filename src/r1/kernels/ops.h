// Element-wise and row-wise operations of the forward pass, float32 throughout.
#pragma once

#include <cstdint>
#include <vector>

namespace r1 {

// y = w * (x / sqrt(mean(x^2) + eps)); x and y may alias.
void RmsNorm(const float* x, const float* w, int64_t n, float eps, float* y);
// Applies RmsNorm to `rows` rows of width n, `stride` floats apart.
void RmsNormRows(float* x, int64_t rows, int64_t stride, const float* w, int64_t n, float eps);

// In-place softmax of scale * x over n values (max-subtracted, float32).
void Softmax(float* x, int64_t n, float scale = 1.0f);
// x[i] = exp(scale * x[i] - max) without the division, max = the largest scale * x[i] (NaNs
// skipped there, kept in x): returns the sum, stores the max in *max_out. Softmax is this
// followed by x[i] *= 1 / sum.
float SoftmaxUnnormalized(float* x, int64_t n, float* max_out, float scale = 1.0f);

// a[i] = silu(a[i]) * b[i]
void SiluMul(float* a, const float* b, int64_t n);

float Dot(const float* a, const float* b, int64_t n);
// y[i] += a * x[i]
void Axpy(float a, const float* x, float* y, int64_t n);

// Rotary embedding. `inv_freq` holds D/2 frequencies (already YaRN/llama3-adjusted).
// Interleaved: pairs (x[2i], x[2i+1]) as DeepSeek stores them; half-split: (x[i], x[i+D/2]).
void RopeInterleaved(float* x, int64_t d, int64_t pos, const float* inv_freq);
void RopeHalfSplit(float* x, int64_t d, int64_t pos, const float* inv_freq);
// The same rotations with the angles' cosines and sines computed once by RopeAngles (d floats:
// cos, sin of pos * inv_freq[i] for i < d/2), for the many heads of one token.
void RopeAngles(int64_t d, int64_t pos, const float* inv_freq, float* cos_sin);
void RopeInterleaved(float* x, int64_t d, const float* cos_sin);
void RopeHalfSplit(float* x, int64_t d, const float* cos_sin);

}  // namespace r1
