// A weight matrix [rows, cols] in its stored type, used by every Linear layer. Weights are never
// expanded to float32 copies: kernels convert them on the fly (BF16/F16 widening, FP8 codes times
// their 128x128 block scale, Q8/Q4 codes times their per-32 scale).
#pragma once

#include <cstdint>
#include <string>

#include "r1/core/dtype.h"

namespace r1 {

// Elements per scale of the Q8 and Q4 formats (r1cpp's own, docs/quantization.md): each run of
// 32 elements of a row shares one F16 scale; the last run of a row may be shorter.
inline constexpr int kQuantBlock = 32;

struct Matrix {
  std::string name;
  // kF32/kF16/kBF16: plain values. kF8E4M3: codes x block scale. kI8: Q8, one int8 code per
  // element. kU8: Q4, two 4-bit codes per byte; within each block of 32 elements, byte j holds
  // element j in its low nibble and element j+16 in its high one, code = value + 8, and every
  // row is padded to whole blocks (16 bytes per block).
  DType dtype = DType::kF32;
  const uint8_t* data = nullptr;
  int64_t rows = 0, cols = 0;
  // FP8 only: one float multiplier per block_rows x block_cols block, [ceil(rows/br), ceil(cols/bc)].
  const float* scale = nullptr;
  int block_rows = 128, block_cols = 128;
  // Q8/Q4 only: F16 scales, [rows, ceil(cols / kQuantBlock)].
  const uint16_t* qscale = nullptr;

  bool empty() const { return data == nullptr; }
  bool quantized() const { return dtype == DType::kI8 || dtype == DType::kU8; }
  size_t bytes() const;  // stored bytes, scales included
  int64_t scale_cols() const { return (cols + block_cols - 1) / block_cols; }
  int64_t qblocks() const { return (cols + kQuantBlock - 1) / kQuantBlock; }
  // Bytes from one row to the next.
  int64_t row_bytes() const;

  // out[0 .. c1-c0) = W[r][c0 .. c1) in float32, computed exactly as the reference does
  // (FP8, Q8, Q4: code value x scale, one float32 rounding).
  void DequantRow(int64_t r, int64_t c0, int64_t c1, float* out) const;
  // out[c - c0] += a * W[r][c] for c in [c0, c1).
  void AxpyRow(int64_t r, int64_t c0, int64_t c1, float a, float* out) const;
};

// The stored shape of a Q4 matrix's codes: [rows, ceil(cols / 32) * 16] bytes.
inline int64_t Q4RowBytes(int64_t cols) {
  return (cols + kQuantBlock - 1) / kQuantBlock * (kQuantBlock / 2);
}

}  // namespace r1
