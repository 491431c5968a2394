#include "r1/kernels/quantize_rows.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/kernels/matrix.h"

namespace r1 {

namespace {

// The scale as the kernels will read it back, so codes are chosen against the rounded value.
// A block whose scale does not fit F16 cannot be stored faithfully: say so rather than write
// infinities.
uint16_t HalfScale(float scale, float& rounded) {
  const uint16_t h = F32ToF16(scale);
  rounded = F16ToF32(h);
  if (!std::isfinite(rounded))
    throw Error("quantize: a block's scale " + std::to_string(scale) +
                " does not fit F16 (weights above ~8e6 in magnitude, or not finite)");
  return h;
}

}  // namespace

void QuantizeRowQ8(const float* x, int64_t cols, int8_t* codes, uint16_t* scales) {
  for (int64_t b = 0, c0 = 0; c0 < cols; ++b, c0 += kQuantBlock) {
    const int64_t c1 = std::min<int64_t>(cols, c0 + kQuantBlock);
    float amax = 0;
    for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(x[c]));
    float d = 0;
    scales[b] = HalfScale(amax / 127.0f, d);
    const float inv = d > 0 ? 1.0f / d : 0.0f;
    for (int64_t c = c0; c < c1; ++c) {
      // F16 rounding of the scale can push the largest value just past 127.
      const float q = std::clamp(std::nearbyint(x[c] * inv), -127.0f, 127.0f);
      codes[c] = static_cast<int8_t>(q);
    }
  }
}

void QuantizeRowQ4(const float* x, int64_t cols, uint8_t* packed, uint16_t* scales) {
  constexpr int kHalf = kQuantBlock / 2;
  for (int64_t b = 0, c0 = 0; c0 < cols; ++b, c0 += kQuantBlock) {
    const int64_t c1 = std::min<int64_t>(cols, c0 + kQuantBlock);
    float amax = 0, m = 0;
    for (int64_t c = c0; c < c1; ++c) {
      if (std::fabs(x[c]) > amax) {
        amax = std::fabs(x[c]);
        m = x[c];
      }
    }
    float d = 0;
    scales[b] = HalfScale(m / -8.0f, d);
    const float inv = d != 0 ? 1.0f / d : 0.0f;
    uint8_t code[kQuantBlock];
    for (int j = 0; j < kQuantBlock; ++j) {
      const int64_t c = c0 + j;
      const float q = c < c1 ? std::clamp(std::nearbyint(x[c] * inv), -8.0f, 7.0f) : 0.0f;
      code[j] = static_cast<uint8_t>(static_cast<int>(q) + 8);
    }
    uint8_t* out = packed + b * kHalf;
    for (int j = 0; j < kHalf; ++j) out[j] = static_cast<uint8_t>(code[j] | (code[j + kHalf] << 4));
  }
}

void QuantizeFp8Blocks(const float* w, int64_t rows, int64_t cols, int block_rows,
                       int block_cols, uint8_t* codes, float* scale_inv) {
  const int64_t scale_cols = (cols + block_cols - 1) / block_cols;
  for (int64_t br = 0, r0 = 0; r0 < rows; ++br, r0 += block_rows) {
    const int64_t r1 = std::min<int64_t>(rows, r0 + block_rows);
    for (int64_t bc = 0, c0 = 0; c0 < cols; ++bc, c0 += block_cols) {
      const int64_t c1 = std::min<int64_t>(cols, c0 + block_cols);
      float amax = 0;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
      if (!std::isfinite(amax)) throw Error("quantize: weights are not finite");
      // An all-zero block still needs a usable multiplier; any positive one decodes zeros.
      const float s = amax > 0 ? amax / 448.0f : 1.0f;
      scale_inv[br * scale_cols + bc] = s;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) codes[r * cols + c] = F32ToFp8E4M3(w[r * cols + c] / s);
    }
  }
}

}  // namespace r1
