#include "r1/kernels/gemm.h"

#include <algorithm>

#include <mutex>

#include <cblas.h>

namespace r1 {
namespace {

// OpenBLAS must not start threads of its own: the engine's pool already keeps every core busy,
// and two sets of spinning threads would fight over them.
void SingleThreadedBlas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// Rows per task: enough work per call that OpenBLAS's packing pays off, and at least one block
// per thread.
int64_t RowGrain(int64_t M, int64_t N, int64_t K, int threads) {
  const int64_t min_rows = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, N * K / 64 + 1));
  const int64_t per_thread = (M + threads - 1) / threads;
  return std::max<int64_t>(std::min(per_thread, std::max<int64_t>(min_rows, 16)), 1);
}

}  // namespace

void GemmNTSerial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, float beta) {
  if (M <= 0 || N <= 0) return;
  SingleThreadedBlas();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
              ldc);
}

void GemmNNSerial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, float beta) {
  if (M <= 0 || N <= 0) return;
  SingleThreadedBlas();
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
              ldc);
}

void GemmTNSerial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, float beta) {
  if (M <= 0 || N <= 0) return;
  SingleThreadedBlas();
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
              ldc);
}

void GemmNT(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C,
            float beta, ThreadPool& pool) {
  pool.ParallelFor(M, RowGrain(M, N, K, pool.size()), [&](int64_t b, int64_t e, int) {
    GemmNTSerial(e - b, N, K, A + b * K, K, B, K, C + b * N, N, beta);
  });
}

void GemmNN(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C,
            float beta, ThreadPool& pool) {
  pool.ParallelFor(M, RowGrain(M, N, K, pool.size()), [&](int64_t b, int64_t e, int) {
    GemmNNSerial(e - b, N, K, A + b * K, K, B, N, C + b * N, N, beta);
  });
}

void GemmTN(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C,
            float beta, ThreadPool& pool) {
  // Split the output rows (columns of A): each task reads all K rows of A and B.
  pool.ParallelFor(M, RowGrain(M, N, K, pool.size()), [&](int64_t b, int64_t e, int) {
    GemmTNSerial(e - b, N, K, A + b, M, B, N, C + b * N, N, beta);
  });
}

}  // namespace r1
