// Decode-time products of Q8/Q4 weights with the activations quantized to int8 per block of 32
// (as llama.cpp does for its q8_0/q4_0 dot products), on AVX512-VNNI `vpdpbusd`: 64 byte
// products per instruction instead of widening every weight to float32, which made the float
// path compute-bound at half the memory bandwidth. Each block's integer sum is exact; the only
// new error is the activations' rounding to 8 bits (about 0.4% of a block's largest value),
// measured in docs/quantization.md. Used by MatMul below kGemmMinTokens tokens when the CPU has
// VNNI and the row length is a multiple of 64; SetInt8Activations(false) turns it off.
#pragma once

#include <cstdint>
#include <vector>

#include "r1/kernels/matrix.h"

namespace r1 {

// Process-wide switch (default on; R1_INT8_ACTIVATIONS=0 in the environment turns it off).
void SetInt8Activations(bool on);
bool Int8ActivationsEnabled();

// Whether the int8 path can take this matrix on this CPU.
bool Int8MatVecApplies(const Matrix& w);

// One token's activations, quantized per block of 32: code = round(x / dx) in [-127, 127],
// dx = max|x| / 127, laid out for the Q8 kernel (natural order) and the Q4 kernel (each
// 64-element group ordered as the nibbles unpack: block 0 elements 0-15, block 1 elements 0-15,
// block 0 elements 16-31, block 1 elements 16-31).
struct Int8Activations {
  int64_t cols = 0;
  std::vector<int8_t> code;       // natural order
  std::vector<float> dx;          // per block of 32
  std::vector<float> q8_dx;       // per group, 16 lanes: lanes 0-7 block 0's dx, 8-15 block 1's
  std::vector<int8_t> q4_code;    // Q4 order
  std::vector<int32_t> q4_bias;   // per group, 16 lanes: -8 x the sum of the lane's 4 codes
  std::vector<float> q4_dx;       // per group, 16 lanes, in the Q4 lane order
};
void QuantizeActivations(const float* x, int64_t cols, Int8Activations& out);

// y[t][r] for rows [r0, r1) and n tokens (x[t] quantized), plus bias[r] if given.
void Int8MatVecRows(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x, int64_t n,
                    float* y, int64_t y_stride, const float* bias);

// The same arithmetic in plain scalar code (exact block sums, then the scales), for tests.
void Int8MatVecReference(const Matrix& w, const float* x, int64_t n, float* y, const float* bias);

}  // namespace r1
