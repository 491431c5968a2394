#include "r1/kernels/gemm.h"

#include <algorithm>

#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include <cblas.h>

#include "r1/core/error.h"

namespace r1 {
namespace {

// OpenBLAS is opened at the first product rather than linked, so its kernels can be chosen
// first: 0.3.21 does not know AMD's AVX-512 parts (Zen 4, Zen 5) and falls back to its AVX2
// (Haswell) kernels there, while its AVX-512 (SkylakeX) kernels made a v3-nano training step 24%
// faster on a Zen 5 machine. An OPENBLAS_CORETYPE already in the environment is respected.
struct Blas {
  decltype(&cblas_sgemm) sgemm = nullptr;
};

bool AmdWithAvx512() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_is("amd") && __builtin_cpu_supports("avx512f") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx512vl");
#else
  return false;
#endif
}

Blas LoadBlas() {
  if (!std::getenv("OPENBLAS_CORETYPE") && AmdWithAvx512()) setenv("OPENBLAS_CORETYPE", "SKYLAKEX", 0);
  void* lib = dlopen(R1_OPENBLAS_PATH, RTLD_NOW | RTLD_LOCAL);
  if (!lib) throw Error(std::string("cannot load OpenBLAS (") + R1_OPENBLAS_PATH + "): " + dlerror());
  Blas b;
  b.sgemm = reinterpret_cast<decltype(&cblas_sgemm)>(dlsym(lib, "cblas_sgemm"));
  auto set_threads = reinterpret_cast<void (*)(int)>(dlsym(lib, "openblas_set_num_threads"));
  if (!b.sgemm || !set_threads) throw Error(std::string(R1_OPENBLAS_PATH) + ": not an OpenBLAS");
  // One thread per call: the engine's pool already keeps every core busy, and two sets of
  // spinning threads would fight over them.
  set_threads(1);
  return b;
}

// Rows per task: enough work per call that OpenBLAS's packing pays off, and at least one block
// per thread.
int64_t RowGrain(int64_t M, int64_t N, int64_t K, int threads) {
  const int64_t min_rows = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, N * K / 64 + 1));
  const int64_t per_thread = (M + threads - 1) / threads;
  return std::max<int64_t>(std::min(per_thread, std::max<int64_t>(min_rows, 16)), 1);
}

const Blas& GetBlas() {
  static const Blas blas = LoadBlas();
  return blas;
}

}  // namespace

void GemmNTSerial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, float beta) {
  if (M <= 0 || N <= 0) return;
  GetBlas().sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
              ldc);
}

void GemmNNSerial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, float beta) {
  if (M <= 0 || N <= 0) return;
  GetBlas().sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
              ldc);
}

void GemmTNSerial(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, float* C, int64_t ldc, float beta) {
  if (M <= 0 || N <= 0) return;
  GetBlas().sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, beta, C,
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
