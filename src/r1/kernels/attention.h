// Causal attention of a block of query rows against one sequence's cached keys and values, as
// two matrix products (scores = Q K^T, out = softmax(scores) V) instead of one dot product per
// query and key: a prefill's queries then read each key once per block rather than once each,
// at the FMA rate of a blocked GEMM. Runs on the calling thread; the caller splits heads and
// query blocks over the pool.
#pragma once

#include <cstdint>

namespace r1 {

// q: [rows, dim] contiguous. Row r attends key positions [0, limit[r]); keys are `dim` floats at
// k + t * kv_stride, values `dv` floats at v + t * kv_stride. scores are scaled by `scale`
// before the softmax. out: [rows, dv] contiguous.
void AttendBlock(const float* q, int64_t rows, const int64_t* limit, const float* k,
                 const float* v, int64_t kv_stride, int64_t dim, int64_t dv, float scale,
                 float* out);

// One part of an attention split by keys (decode over a long cache, the parts on different
// threads, so each cached row is read once per token instead of once per thread): every row
// attends all `keys` keys from k / v (no mask), without the softmax's division. out[r] = sum_t
// exp(s_rt - m_r) v_t, row_max[r] = m_r = max_t s_rt, row_sum[r] = sum_t exp(s_rt - m_r), s_rt
// the scaled score. Rows are independent of each other, as in AttendBlock.
void AttendPart(const float* q, int64_t rows, int64_t keys, const float* k, const float* v,
                int64_t kv_stride, int64_t dim, int64_t dv, float scale, float* out,
                float* row_max, float* row_sum);

// Combines `parts` AttendPart results over disjoint key ranges into the softmax-weighted output
// of all their keys, for rows [r0, r1): outs [parts][rows][dv], maxes and sums [parts][rows];
// out [rows][dv].
void MergeAttendParts(int64_t parts, int64_t rows, int64_t dv, const float* outs,
                      const float* maxes, const float* sums, int64_t r0, int64_t r1, float* out);

// Query rows per AttendBlock call so that its score matrix stays near `budget_floats`.
int64_t AttendBlockRows(int64_t keys, int64_t budget_floats = 1 << 18);

}  // namespace r1
