#include "r1/kernels/attention.h"

#include <algorithm>
#include <vector>

#include "r1/kernels/gemm.h"
#include "r1/kernels/ops.h"

namespace r1 {

void AttendBlock(const float* q, int64_t rows, const int64_t* limit, const float* k,
                 const float* v, int64_t kv_stride, int64_t dim, int64_t dv, float scale,
                 float* out) {
  if (rows <= 0) return;
  const int64_t keys = *std::max_element(limit, limit + rows);
  thread_local std::vector<float> scores;
  if (scores.size() < static_cast<size_t>(rows * keys)) scores.resize(rows * keys);
  GemmNTSerial(rows, keys, dim, q, dim, k, kv_stride, scores.data(), keys, 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    float* s = scores.data() + r * keys;
    for (int64_t t = 0; t < limit[r]; ++t) s[t] *= scale;
    Softmax(s, limit[r]);
    // Masked positions weigh nothing in the product with V.
    std::fill(s + limit[r], s + keys, 0.0f);
  }
  GemmNNSerial(rows, dv, keys, scores.data(), keys, v, kv_stride, out, dv, 0.0f);
}

int64_t AttendBlockRows(int64_t keys, int64_t budget_floats) {
  return std::max<int64_t>(1, budget_floats / std::max<int64_t>(1, keys));
}

}  // namespace r1
