// Encoders for the compact weight formats: the inverses of Matrix::DequantRow, used by
// `r1 quantize`. Layouts are defined in matrix.h and docs/quantization.md.
#pragma once

#include <cstdint>

namespace r1 {

// Q8_0: per run of 32 values, scale = max|x| / 127 rounded to F16, code = round(x / scale).
// `codes` has `cols` entries, `scales` ceil(cols / 32).
void QuantizeRowQ8(const float* x, int64_t cols, int8_t* codes, uint16_t* scales);

// Q4_0: per run of 32 values, the value of largest magnitude m maps to code -8 (scale = m / -8,
// rounded to F16), which spends all 16 levels on the block's range; codes are clamped to
// [-8, 7] and packed as matrix.h describes. `packed` has Q4RowBytes(cols) bytes (a short last
// block is padded with code 0's value, 8).
void QuantizeRowQ4(const float* x, int64_t cols, uint8_t* packed, uint16_t* scales);

// FP8 E4M3 with one float32 multiplier per block_rows x block_cols block (DeepSeek-V3's
// layout): scale_inv = max|x| / 448 over the block, code = E4M3(x / scale_inv). `w` is
// [rows, cols]; `codes` [rows, cols]; `scale_inv` [ceil(rows/br), ceil(cols/bc)].
void QuantizeFp8Blocks(const float* w, int64_t rows, int64_t cols, int block_rows,
                       int block_cols, uint8_t* codes, float* scale_inv);

}  // namespace r1
