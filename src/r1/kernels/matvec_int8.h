// Decode-time products of Q8/Q4 weights with the activations quantized to int8 per block of 32
// (as llama.cpp does for its q8_0/q4_0 dot products), on AVX512-VNNI `vpdpbusd`: 64 byte
// products per instruction instead of widening every weight to float32, which made the float
// path compute-bound at half the memory bandwidth. Each block's integer sum is exact; the only
// new error is the activations' rounding to 8 bits (about 0.4% of a block's largest value),
// measured in docs/quantization.md. Used by MatMul below kGemmMinTokens tokens when the CPU has
// VNNI and the row length is a multiple of 32; SetInt8Activations(false) turns it off.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

#include "r1/kernels/matrix.h"

namespace r1 {

// Process-wide switch (default on; R1_INT8_ACTIVATIONS=0 in the environment turns it off).
void SetInt8Activations(bool on);
bool Int8ActivationsEnabled();

// Whether the int8 path can take this matrix on this CPU.
bool Int8MatVecApplies(const Matrix& w);

// Cache-line aligned storage for the activation layouts, so the kernels' 64-byte loads of them
// never straddle two lines.
template <class T>
struct CacheLineAllocator {
  using value_type = T;
  CacheLineAllocator() = default;
  template <class U>
  CacheLineAllocator(const CacheLineAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const CacheLineAllocator<U>&) const { return true; }
};
template <class T>
using AlignedVector = std::vector<T, CacheLineAllocator<T>>;

// One token's activations, quantized per block of 32: code = round(x / dx) in [-127, 127],
// dx = max|x| / 127, laid out for the kernels. Each `vpdpbusd` multiplies unsigned weight bytes
// (Q8: code + 128, Q4: nibble = code + 8) by these signed codes in the weights' word-interleaved
// order (matrix.h), so int32 lane l of every product sums block l of the run; each lane starts
// from a bias that removes the offset. Per run of 16 blocks (512 elements; lanes past a short
// last run hold zeros):
struct Int8Activations {
  int64_t cols = 0;
  AlignedVector<int8_t> code;  // natural order
  // 16 per run: the blocks' scales, -128 x their sums of codes, -8 x the same.
  AlignedVector<float> dx;
  AlignedVector<int32_t> q8_bias, q4_bias;
  // 512 bytes per run. Q8: word q (codes 4q .. 4q+3) of block l at byte 64q + 4l, q = 0..7.
  // Q4, q = 0..3: codes 4q .. 4q+3 of block l at 128q + 4l (multiplied by the low nibbles of
  // the weights' word q) and codes 16+4q .. 16+4q+3 at 128q + 64 + 4l (by the high ones).
  AlignedVector<int8_t> q8_lanes, q4_lanes;
};
void QuantizeActivations(const float* x, int64_t cols, Int8Activations& out);

// y[t][r] for rows [r0, r1) and n tokens (x[t] quantized), plus bias[r] if given.
void Int8MatVecRows(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x, int64_t n,
                    float* y, int64_t y_stride, const float* bias);

// The same arithmetic in plain scalar code (exact block sums, then the scales), for tests.
void Int8MatVecReference(const Matrix& w, const float* x, int64_t n, float* y, const float* bias);

}  // namespace r1
