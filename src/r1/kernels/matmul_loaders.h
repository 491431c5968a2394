// What the portable, AVX2 (matmul_avx2.cc) and AVX-512 (matmul.cc) float-activation products
// share: scalar decoders of every stored weight format into float32 (the vector loaders follow
// the same arithmetic, and tails go through these), and the column-segment walk for long rows.
#pragma once

#include <cstdint>
#include <cstring>

#include "r1/core/dtype.h"
#include "r1/kernels/matrix.h"
#include "r1/kernels/simd.h"

namespace r1::matmul_detail {

// F16 -> F32 by moving the bits into place and rebiasing the exponent with one multiply, exact
// for every finite value (subnormals included), and vectorizable where F16ToF32 is not.
R1_INLINE float HalfBitsToFloat(uint16_t h) {
  const uint32_t bits = (static_cast<uint32_t>(h) & 0x7fffu) << 13;
  float f;
  std::memcpy(&f, &bits, 4);
  f *= 5.192296858534828e+33f;  // 2^112 rebiases the exponent from 15 to 127
  return (h & 0x8000u) ? -f : f;
}

// FP8 E4M3 by moving the code's bits into a float32 and rebiasing the exponent, exact for every
// finite code; the NaN codes (0x7F/0xFF, absent from real checkpoints) decode as +-480, as in
// every vectorized loader, so a product's result does not depend on which path took it.
R1_INLINE float Fp8BitsToFloat(uint8_t code) {
  const uint32_t bits = ((code & 0x7fu) << 20) | ((code & 0x80u) << 24);
  float f;
  std::memcpy(&f, &bits, 4);
  return f * 1.329227995784916e+36f;  // 2^120 rebiases the exponent from 7 to 127
}

// The signed code of element c of a Q4 row.
R1_INLINE int Q4Code(const uint8_t* row, int64_t c) {
  const int j = static_cast<int>(c % kQuantBlock);
  const uint8_t byte = row[(c / kQuantBlock) * (kQuantBlock / 2) + (j & 15)];
  return (j < 16 ? (byte & 15) : (byte >> 4)) - 8;
}

// Loaders turn a run of stored weights into float32 lanes. FP8 and F16 decode by moving the
// code's bits into a float32 and rescaling by a power of two, which vectorizes (a table lookup
// would not); both are exact for every finite code. FP8 NaN codes (0x7F/0xFF) never occur in real
// checkpoints and decode as +-480 here.
struct LoadF32 {
  const float* row;
  R1_INLINE float operator()(int64_t c) const { return row[c]; }
};
struct LoadBf16 {
  const uint16_t* row;
  R1_INLINE float operator()(int64_t c) const {
    const uint32_t bits = static_cast<uint32_t>(row[c]) << 16;
    float f;
    std::memcpy(&f, &bits, 4);
    return f;
  }
};
struct LoadF16 {
  const uint16_t* row;
  R1_INLINE float operator()(int64_t c) const {
    const uint32_t h = row[c];
    const uint32_t bits = (h & 0x7fffu) << 13;
    float f;
    std::memcpy(&f, &bits, 4);
    f *= 5.192296858534828e+33f;  // 2^112 rebiases the exponent from 15 to 127
    return (h & 0x8000u) ? -f : f;
  }
};
struct LoadFp8 {
  const uint8_t* row;
  float scale;
  R1_INLINE float operator()(int64_t c) const { return Fp8BitsToFloat(row[c]) * scale; }
};

struct LoadQ8 {
  const int8_t* row;
  const uint16_t* qs;
  R1_INLINE float operator()(int64_t c) const {
    return static_cast<float>(row[c]) * HalfBitsToFloat(qs[c / kQuantBlock]);
  }
};
struct LoadQ4 {
  const uint8_t* row;
  const uint16_t* qs;
  R1_INLINE float operator()(int64_t c) const {
    return static_cast<float>(Q4Code(row, c)) * HalfBitsToFloat(qs[c / kQuantBlock]);
  }
};

// Rows whose activations (NT tokens x cols float32) overflow L1 beside the weight stream: a
// 1536 x 8960 BF16 product (x 35 KiB) read DRAM at 0.74x the speed of 8960 x 1536 (x 6 KiB),
// while Q8/Q4 (int8 activations) kept 0.95-0.98x. Blocks of kSegmentRows rows are walked 512
// columns at a time, each row segment prefetching the one kSegmentsAhead later in that order:
// the long shape went from 38-40 to 54-59 GB/s (with the prefetch one segment ahead: no gain;
// each segment prefetched at once instead of step by step: 1.25x; 256-2048 columns and 8-32
// rows measured lower). Whole-model decode, alternating with the row-by-row kernel every 4
// steps: Qwen-1.5B BF16 median step 9-12% shorter at batch 1, +7% tokens/s at batch 8
// (docs/performance.md).
inline constexpr int64_t kSegmentColumns = 512;
inline constexpr int64_t kSegmentRows = 16;
inline constexpr int64_t kSegmentsAhead = 8;
inline constexpr int64_t kSegmentBelowBytes = 20 << 10;  // x of up to 5120 columns read at full speed

inline bool SegmentsApply(const Matrix& w, int nt) {
  const bool dense = w.dtype == DType::kF32 || w.dtype == DType::kBF16 ||
                     w.dtype == DType::kF16 || w.dtype == DType::kF8E4M3;
  return dense && nt * w.cols * 4 > kSegmentBelowBytes;
}

// The row segment kSegmentsAhead after row rb + i's segment s in that walk (rows of the block
// by segment), or past the block the next rows' first segment; past the matrix, this one again.
// `eb` is DTypeSize(w.dtype), taken once by the caller: a call per segment made BF16 decode
// steps ~10% longer.
R1_INLINE const char* SegmentAhead(const Matrix& w, int64_t eb, int64_t rb, int64_t rows,
                                   int64_t i, int64_t s, int64_t segments) {
  const int64_t later = s * rows + i + kSegmentsAhead;
  int64_t row = later < segments * rows ? rb + later % rows : rb + rows + (later - segments * rows);
  int64_t col = later < segments * rows ? later / rows * kSegmentColumns : 0;
  if (row >= w.rows) row = rb + i, col = s * kSegmentColumns;
  return reinterpret_cast<const char*>(w.data) + (row * w.cols + col) * eb;
}

}  // namespace r1::matmul_detail
