// Float32 matrix products for training (row-major), on OpenBLAS's serial kernels with the rows
// split over the engine's thread pool, so training and inference share one set of threads.
#pragma once

#include <cstdint>

#include "r1/core/thread_pool.h"

namespace r1 {

// C[M,N] = beta*C + A[M,K] . B[N,K]^T     (a Linear layer: y = x W^T)
void GemmNT(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C,
            float beta, ThreadPool& pool);
// C[M,N] = beta*C + A[M,K] . B[K,N]       (input gradient: dx = dy W)
void GemmNN(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C,
            float beta, ThreadPool& pool);
// C[M,N] = beta*C + A[K,M]^T . B[K,N]     (weight gradient: dW += dy^T x)
void GemmTN(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C,
            float beta, ThreadPool& pool);

// The same products on the calling thread only, for callers that already run in parallel
// (one expert or one attention head per thread). Leading dimensions are explicit.
void GemmNTSerial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, float beta);
void GemmNNSerial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, float beta);
void GemmTNSerial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, float beta);

}  // namespace r1
