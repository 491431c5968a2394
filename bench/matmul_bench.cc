// Matrix-product kernels per weight dtype: decode shape (one token, bandwidth-bound) and
// prefill shape (many tokens, compute-bound). Counters report GB/s of weights read and GFLOP/s;
// compare them with `r1 bench`'s machine limits measured on the same machine.
#include <benchmark/benchmark.h>

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/gemm_bf16.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/ops.h"
#include "r1/kernels/quantize_rows.h"

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
  w.m.dtype = dt;
  w.m.rows = rows;
  w.m.cols = cols;
  if (w.m.quantized()) {
    const int64_t row_bytes = dt == r1::DType::kU8 ? r1::Q4RowBytes(cols) : cols;
    const int64_t blocks = w.m.qblocks();
    w.bytes.assign(w.m.bytes(), 0);
    std::vector<uint8_t> codes(row_bytes);
    std::vector<uint16_t> scales(blocks);
    std::vector<float> row(cols);
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : row) v = nd(rng);
      if (dt == r1::DType::kI8)
        r1::QuantizeRowQ8(row.data(), cols, reinterpret_cast<int8_t*>(codes.data()), scales.data());
      else
        r1::QuantizeRowQ4(row.data(), cols, codes.data(), scales.data());
      r1::StoreQuantRow(dt, cols, r, codes.data(), scales.data(), w.bytes.data());
    }
    w.m.data = w.bytes.data();
    return w;
  }
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
  w.m.data = w.bytes.data();
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

// Anonymous memory in 2 MiB pages, as `r1` maps weight files (io/huge_pages.h). This machine's
// transparent huge pages are madvise-only, and the same kernel read the same copies at 21-22 GB/s
// in 4 KiB pages against 26-28 in 2 MiB pages (a plain sum: 14-22 against 28-29).
class HugePageArena {
 public:
  explicit HugePageArena(size_t bytes) : size_(RoundUp(bytes)) {
    void* p = mmap(nullptr, size_ + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    mapping_ = static_cast<uint8_t*>(p);
    base_ = mapping_ + (kPage - reinterpret_cast<uintptr_t>(mapping_) % kPage) % kPage;
    madvise(base_, size_, MADV_HUGEPAGE);
  }
  ~HugePageArena() { munmap(mapping_, size_ + kPage); }
  HugePageArena(const HugePageArena&) = delete;
  HugePageArena& operator=(const HugePageArena&) = delete;

  // A copy of `bytes` bytes at a 64-byte boundary; the arena must have room.
  const uint8_t* Copy(const uint8_t* src, size_t bytes) {
    uint8_t* dst = base_ + used_;
    std::memcpy(dst, src, bytes);
    used_ += (bytes + 63) / 64 * 64;
    return dst;
  }

 private:
  static constexpr size_t kPage = size_t{2} << 20;
  static size_t RoundUp(size_t n) { return (n + kPage - 1) / kPage * kPage; }
  size_t size_;
  uint8_t* mapping_ = nullptr;
  uint8_t* base_ = nullptr;
  size_t used_ = 0;
};

// Decode as it runs: one token against matrices that are not in any cache. Cycles through
// enough copies (at least 1 GiB) that each product streams its weights from DRAM, which is what
// decode_roofline_ratio measures against.
void BM_MatVecFromDram(benchmark::State& state, r1::DType dt) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const Weights first = MakeWeights(dt, rows, cols);
  const size_t bytes = first.m.bytes();
  const size_t count = ((1ull << 30) + bytes - 1) / bytes;
  HugePageArena arena(count * (bytes + 64));
  std::vector<r1::Matrix> copies(count, first.m);
  for (r1::Matrix& m : copies) m.data = arena.Copy(first.bytes.data(), bytes);
  std::vector<float> x(cols, 0.5f), y(rows);
  r1::ThreadPool& pool = r1::DefaultPool();
  size_t i = 0;
  for (auto _ : state) {
    r1::MatMul(copies[i], x.data(), 1, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % copies.size();
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes),
                                              benchmark::Counter::kIsIterationInvariantRate);
}
// The down projection's long rows (1536 x 8960) too: BF16 walks them in column segments
// (RowsInSegments in matmul.cc), since its float activations overflow L1 beside the stream.
// The attention projections (q/o 1536 x 1536, k/v 256 x 1536) show what each product's start
// and the threads' join cost on short streams.
#define DRAM_SHAPE \
  Args({8960, 1536})->Args({1536, 8960})->Args({1536, 1536})->Args({256, 1536})->UseRealTime()
BENCHMARK_CAPTURE(BM_MatVecFromDram, bf16, r1::DType::kBF16)->DRAM_SHAPE;
BENCHMARK_CAPTURE(BM_MatVecFromDram, q8, r1::DType::kI8)->DRAM_SHAPE;
BENCHMARK_CAPTURE(BM_MatVecFromDram, q4, r1::DType::kU8)->DRAM_SHAPE;

// MoE decode as V2-Lite runs it (Model::MoeExpertsInParallel): 6 experts of gate/up
// [rows, cols] and down [cols, rows], each thread taking whole experts, one token, from DRAM
// (copies past the L3). Against BM_MatVecFromDram it shows what short per-thread streams cost.
void BM_MoeExpertsFromDram(benchmark::State& state, r1::DType dt) {
  const int64_t rows = state.range(0), cols = state.range(1);
  constexpr int kExperts = 6;
  struct Expert {
    r1::Matrix gate, up, down;
  };
  const Weights gate = MakeWeights(dt, rows, cols), up = MakeWeights(dt, rows, cols),
                down = MakeWeights(dt, cols, rows);
  const size_t bytes = gate.m.bytes() + up.m.bytes() + down.m.bytes();
  const size_t count = std::max<size_t>(kExperts, ((1ull << 30) + bytes - 1) / bytes);
  HugePageArena arena(count * (bytes + 3 * 64));
  std::vector<Expert> experts(count, Expert{gate.m, up.m, down.m});
  for (Expert& ex : experts) {
    ex.gate.data = arena.Copy(gate.bytes.data(), gate.m.bytes());
    ex.up.data = arena.Copy(up.bytes.data(), up.m.bytes());
    ex.down.data = arena.Copy(down.bytes.data(), down.m.bytes());
  }
  r1::ThreadPool& pool = r1::DefaultPool();
  std::vector<float> x(cols, 0.5f);
  size_t next = 0;
  for (auto _ : state) {
    const size_t base = next;
    pool.ParallelFor(kExperts, 1, [&](int64_t b, int64_t e, int) {
      std::vector<float> g(rows), u(rows), y(cols);
      for (int64_t k = b; k < e; ++k) {
        const Expert& ex = experts[(base + k) % experts.size()];
        r1::MatMul(ex.gate, x.data(), 1, g.data(), pool);
        r1::MatMul(ex.up, x.data(), 1, u.data(), pool);
        r1::MatMul(ex.down, g.data(), 1, y.data(), pool);
        benchmark::DoNotOptimize(y.data());
      }
    });
    next = (next + kExperts) % experts.size();
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(bytes * kExperts),
                                              benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK_CAPTURE(BM_MoeExpertsFromDram, q4, r1::DType::kU8)->Args({1408, 2048})->UseRealTime();
BENCHMARK_CAPTURE(BM_MoeExpertsFromDram, q8, r1::DType::kI8)->Args({1408, 2048})->UseRealTime();

// R1-Distill-Qwen-1.5B MLP shapes: gate/up [8960, 1536] and down [1536, 8960]; a 512-token
// prompt is r1 bench's prefill.
#define SHAPES \
  Args({8960, 1536, 1})->Args({8960, 1536, 64})->Args({8960, 1536, 512})->Args({1536, 8960, 512}) \
      ->UseRealTime()
BENCHMARK_CAPTURE(BM_MatMul, f32, r1::DType::kF32)->SHAPES;
BENCHMARK_CAPTURE(BM_MatMul, bf16, r1::DType::kBF16)->SHAPES;
// BF16 with activations rounded to one BF16 term (--bf16-activations): half the dot products.
void BM_MatMulBf16Rounded(benchmark::State& state) {
  r1::SetBf16RoundedActivations(true);
  BM_MatMul(state, r1::DType::kBF16);
  r1::SetBf16RoundedActivations(false);
}
BENCHMARK(BM_MatMulBf16Rounded)->SHAPES;
BENCHMARK_CAPTURE(BM_MatMul, fp8, r1::DType::kF8E4M3)->SHAPES;
// Q8/Q4 also at 128 and 256 tokens.
#define QUANT_SHAPES Args({8960, 1536, 128})->Args({8960, 1536, 256})->SHAPES
BENCHMARK_CAPTURE(BM_MatMul, q8, r1::DType::kI8)->QUANT_SHAPES;
BENCHMARK_CAPTURE(BM_MatMul, q4, r1::DType::kU8)->QUANT_SHAPES;

// DeepSeek-V2-Lite routed experts: gate/up [1408, 2048] and down [2048, 1408], each seeing ~48
// tokens of a 512-token prompt (6 of 64 experts per token), so each weight panel's repack is
// shared by few tokens; 16 and 32 tokens bracket where MatMul moves them to AMX tiles.
#define EXPERT_SHAPES Args({1408, 2048, 48})->Args({2048, 1408, 48}) \
  ->Args({1408, 2048, 16})->Args({1408, 2048, 32})->UseRealTime()
BENCHMARK_CAPTURE(BM_MatMul, expert_q8, r1::DType::kI8)->EXPERT_SHAPES;
BENCHMARK_CAPTURE(BM_MatMul, expert_q4, r1::DType::kU8)->EXPERT_SHAPES;

// A SwiGLU MLP (gate/up [ffn, hidden], down [hidden, ffn]) at n tokens three ways: SwiGluMlp
// (on AMX CPUs the hidden activations go straight into the down projection's planes), its two
// steps (MatMulSwiGlu, then MatMul of down), and the products apart (gate, up, SiluMul, down), as
// the model ran them before the fused passes. GFLOP/s counts the three products.
enum class MlpWay { kFused, kTwoSteps, kApart };

void BM_SwiGluMlp(benchmark::State& state, r1::DType dt, MlpWay way) {
  const int64_t ffn = state.range(0), hidden = state.range(1), n = state.range(2);
  Weights gate = MakeWeights(dt, ffn, hidden), up = MakeWeights(dt, ffn, hidden);
  Weights down = MakeWeights(dt, hidden, ffn);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0, 1.0f);
  std::vector<float> x(n * hidden), g(n * ffn), u(n * ffn), y(n * hidden);
  for (float& v : x) v = nd(rng);
  r1::ThreadPool& pool = r1::DefaultPool();
  for (auto _ : state) {
    if (way == MlpWay::kFused) {
      r1::SwiGluMlp(gate.m, up.m, down.m, x.data(), hidden, n, y.data(), hidden, pool);
    } else if (way == MlpWay::kTwoSteps) {
      r1::MatMulSwiGlu(gate.m, up.m, x.data(), hidden, n, g.data(), ffn, pool);
      r1::MatMul(down.m, g.data(), n, y.data(), pool);
    } else {
      r1::MatMul(gate.m, x.data(), n, g.data(), pool);
      r1::MatMul(up.m, x.data(), n, u.data(), pool);
      pool.ParallelFor(n * ffn, 8192, [&](int64_t b, int64_t e, int) {
        r1::SiluMul(g.data() + b, u.data() + b, e - b);
      });
      r1::MatMul(down.m, g.data(), n, y.data(), pool);
    }
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["GFLOP/s"] = benchmark::Counter(6.0 * ffn * hidden * n,
                                                 benchmark::Counter::kIsIterationInvariantRate,
                                                 benchmark::Counter::kIs1000);
}
// R1-Distill-Qwen-1.5B's MLP at r1 bench's 512-token prefill, and a V2-Lite expert at 48 tokens.
#define MLP_SHAPES Args({8960, 1536, 512})->Args({1408, 2048, 48})->UseRealTime()
BENCHMARK_CAPTURE(BM_SwiGluMlp, q8_fused, r1::DType::kI8, MlpWay::kFused)->MLP_SHAPES;
BENCHMARK_CAPTURE(BM_SwiGluMlp, q8_two_steps, r1::DType::kI8, MlpWay::kTwoSteps)->MLP_SHAPES;
BENCHMARK_CAPTURE(BM_SwiGluMlp, q8_apart, r1::DType::kI8, MlpWay::kApart)->MLP_SHAPES;
BENCHMARK_CAPTURE(BM_SwiGluMlp, q4_fused, r1::DType::kU8, MlpWay::kFused)->MLP_SHAPES;
BENCHMARK_CAPTURE(BM_SwiGluMlp, q4_apart, r1::DType::kU8, MlpWay::kApart)->MLP_SHAPES;
BENCHMARK_CAPTURE(BM_SwiGluMlp, bf16_fused, r1::DType::kBF16, MlpWay::kFused)->MLP_SHAPES;
BENCHMARK_CAPTURE(BM_SwiGluMlp, bf16_apart, r1::DType::kBF16, MlpWay::kApart)->MLP_SHAPES;

}  // namespace

BENCHMARK_MAIN();
