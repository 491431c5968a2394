// A weight matrix [rows, cols] in its stored type, used by every Linear layer. Weights are never
// expanded to float32 copies: kernels convert them on the fly (BF16/F16 widening, FP8 codes times
// their 128x128 block scale).
#pragma once

#include <cstdint>
#include <string>

#include "r1/core/dtype.h"

namespace r1 {

struct Matrix {
  std::string name;
  DType dtype = DType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0, cols = 0;
  // FP8 only: one float multiplier per block_rows x block_cols block, [ceil(rows/br), ceil(cols/bc)].
  const float* scale = nullptr;
  int block_rows = 128, block_cols = 128;

  bool empty() const { return data == nullptr; }
  size_t bytes() const;  // stored bytes, scales included
  int64_t scale_cols() const { return (cols + block_cols - 1) / block_cols; }

  // out[0 .. c1-c0) = W[r][c0 .. c1) in float32, computed exactly as the reference does
  // (FP8: value x scale, one float32 rounding).
  void DequantRow(int64_t r, int64_t c0, int64_t c1, float* out) const;
  // out[c - c0] += a * W[r][c] for c in [c0, c1).
  void AxpyRow(int64_t r, int64_t c0, int64_t c1, float a, float* out) const;
};

}  // namespace r1
