// Matrix-product kernels per weight dtype: decode shape (one token, bandwidth-bound) and
// prefill shape (many tokens, compute-bound). Counters report GB/s of weights read and GFLOP/s;
// compare them with `r1 bench`'s machine limits measured on the same machine.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/matmul.h"

namespace {

struct Weights {
  std::vector<uint8_t> bytes;
  std::vector<float> scales;
  r1::Matrix m;
};

Weights MakeWeights(r1::DType dt, int64_t rows, int64_t cols) {
  Weights w;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 0.02f);
  w.bytes.resize(rows * cols * r1::DTypeSize(dt));
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float v = nd(rng);
    switch (dt) {
      case r1::DType::kF32: reinterpret_cast<float*>(w.bytes.data())[i] = v; break;
      case r1::DType::kBF16: reinterpret_cast<uint16_t*>(w.bytes.data())[i] = r1::F32ToBf16(v); break;
      case r1::DType::kF8E4M3: w.bytes[i] = r1::F32ToFp8E4M3(v * 1000); break;
      default: break;
    }
  }
  w.m.dtype = dt;
  w.m.data = w.bytes.data();
  w.m.rows = rows;
  w.m.cols = cols;
  if (dt == r1::DType::kF8E4M3) {
    w.scales.assign(((rows + 127) / 128) * ((cols + 127) / 128), 0.001f);
    w.m.scale = w.scales.data();
  }
  return w;
}

void BM_MatMul(benchmark::State& state, r1::DType dt) {
  const int64_t rows = state.range(0), cols = state.range(1), n = state.range(2);
  Weights w = MakeWeights(dt, rows, cols);
  std::vector<float> x(n * cols, 0.5f), y(n * rows);
  r1::ThreadPool& pool = r1::DefaultPool();
  for (auto _ : state) {
    r1::MatMul(w.m, x.data(), n, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(w.m.bytes()),
                                              benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * rows * cols * n / 1e9 * 1e9,
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}

// R1-Distill-Qwen-1.5B MLP shapes: gate/up [8960, 1536].
#define SHAPES Args({8960, 1536, 1})->Args({8960, 1536, 64})->UseRealTime()
BENCHMARK_CAPTURE(BM_MatMul, f32, r1::DType::kF32)->SHAPES;
BENCHMARK_CAPTURE(BM_MatMul, bf16, r1::DType::kBF16)->SHAPES;
BENCHMARK_CAPTURE(BM_MatMul, fp8, r1::DType::kF8E4M3)->SHAPES;

}  // namespace

BENCHMARK_MAIN();
