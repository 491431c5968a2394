// Float-activation products and weight widening on AVX2+FMA (8-lane vectors), for CPUs without
// AVX-512: decode products of the dense formats (and of Q8/Q4 where the int8 path does not apply),
// and the widening that feeds sgemm in prefill. The portable loops they replace, compiled for
// AVX2, left BF16 decode at 0.45x and Q8/Q4 prefill at 0.1x of the AVX-512 kernels.
#pragma once

#include <cstdint>

#include "r1/kernels/matrix.h"

namespace r1::matmul_detail {

// y[t][r] (+ bias[r]) for rows [r0, r1) and nt <= 4 tokens, every weight format.
void RowsAvx2(const Matrix& w, int64_t r0, int64_t r1, const float* const* x, int nt,
              float* const* y, const float* bias);

// Rows [r0, r1) in float32 into out (rows `cols` apart), bit-identical to DequantRow.
void WidenRowsAvx2(const Matrix& w, int64_t r0, int64_t r1, float* out);

// Elements [c0, c1) of row r (c0 a multiple of 32) for BF16, F16, Q8 and Q4; false for the
// other formats.
bool WidenRangeAvx2(const Matrix& w, int64_t r, int64_t c0, int64_t c1, float* out);

// out[c] += sum of a[r - r0] * W[r][c] over rows [r0, r1) for a Q8/Q4 matrix (Matrix::AxpyRows):
// MLA's absorbed decode runs it over 128 rows of kv_b per head and token.
void AxpyQuantRowsAvx2(const Matrix& w, int64_t r0, int64_t r1, const float* a, float* out);

}  // namespace r1::matmul_detail
