// Google Highway (runtime dispatch, as gemma.cpp uses it) against r1's hand-written AVX-512
// kernels, on identical data, one thread each (and two in BM_*Pair_2threads): the decode matrix-vector products of BF16
// weights with a float32 vector (r1::MatMul, n = 1) and of Q8 weights with an activation
// quantized to int8 per block of 32 (r1::Int8MatVecRows, the kernel MatMul and MatMulShared run
// for decode). Shapes: [64, 1536] (stays in L2: compute speed) and [8960, 1536] (Qwen-1.5B's
// gate/up) cycled over 512 MiB of copies so every product streams its weights from DRAM.
//
// BM_*Pair run the kernels alternately inside one benchmark and report each one's GB/s of
// weight bytes (scales included) and the ratio Highway / r1 from the same seconds, which holds
// up where absolute speeds on a shared machine swing by 2x. Setup aborts unless each Highway
// result equals r1's within 1e-3 of the largest |y| (measured error in the `err` counters).
//
// Highway 1.0.3 has no op for vpdpbusd/vpdpwssd (VNNI) or vdpbf16ps (AVX512-BF16): its int16
// ReorderWidenMulAccumulate is vpmaddwd, its bf16 one is shifts/ands plus float32 FMAs and needs
// both operands in bf16 (rounding x to bf16 would change the results). So the Q8 kernel widens
// codes to int16 (vpmovsxbw) for vpmaddwd, and the BF16 kernels widen the weights to float32
// and FMA with the float32 vector: PromoteTo (vpmovzxwd + shift) one row at a time as r1 does,
// PromoteTo four rows per load of x, or four rows split into even/odd elements with x
// deinterleaved once per call (shift for the even element of each 32-bit pair, mask for the
// odd one). Highway target: AVX3_DL where the CPU has it (HWY_WANT_AVX3_DL), printed in the
// context lines.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

// The best Highway target for this CPU family (Ice Lake / Zen 4 and later) is opt-in in 1.0.3.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "bench/highway_bench.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/cache_control.h"
#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace r1hwy {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr size_t kBlock = 32;          // Q8 block
constexpr size_t kPrefetchBytes = 8192;  // as r1's int8 kernel

int64_t Target() { return HWY_TARGET; }

// ---------------------------------------------------------------- BF16, PromoteTo + MulAdd
// R rows at a time share each load of x; U accumulators per row. R = 1, U = 4 is the structure
// of r1's AVX-512 kernel (matmul.cc, Rows<1>); R = 4 loads x once for four rows, which is faster
// in cache and slower from DRAM on this machine (R = 2 and 4 measured slower from DRAM than 1,
// with or without software prefetch).
template <int R, int U>
HWY_INLINE void Bf16PromoteGroup(const uint16_t* HWY_RESTRICT w, size_t cols,
                                 const float* HWY_RESTRICT x, float* HWY_RESTRICT y) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::bfloat16_t, decltype(df)> dbf;
  const size_t N = hn::Lanes(df);
  const auto* wb = reinterpret_cast<const hwy::bfloat16_t*>(w);
  hn::Vec<decltype(df)> acc[R][U];
  for (int i = 0; i < R; ++i)
    for (int u = 0; u < U; ++u) acc[i][u] = hn::Zero(df);
  size_t c = 0;
  for (; c + U * N <= cols; c += U * N) {
    for (int u = 0; u < U; ++u) {
      const auto xv = hn::LoadU(df, x + c + u * N);
      for (int i = 0; i < R; ++i)
        acc[i][u] = hn::MulAdd(hn::PromoteTo(df, hn::LoadU(dbf, wb + i * cols + c + u * N)), xv,
                               acc[i][u]);
    }
  }
  for (int i = 0; i < R; ++i) {
    for (int u = 1; u < U; ++u) acc[i][0] = hn::Add(acc[i][0], acc[i][u]);
    float s = hn::GetLane(hn::SumOfLanes(df, acc[i][0]));
    for (size_t k = c; k < cols; ++k) s += hwy::F32FromBF16(wb[i * cols + k]) * x[k];
    y[i] = s;
  }
}

template <int R, int U>
HWY_INLINE void Bf16PromoteRows(const uint16_t* w, int64_t rows, int64_t cols, const float* x,
                                float* y) {
  int64_t r = 0;
  for (; r + R <= rows; r += R) Bf16PromoteGroup<R, U>(w + r * cols, cols, x, y + r);
  for (; r < rows; ++r) Bf16PromoteGroup<1, U>(w + r * cols, cols, x, y + r);
}

void Bf16Promote(const uint16_t* w, int64_t rows, int64_t cols, const float* x, float* y,
                 float* /*scratch*/) {
  Bf16PromoteRows<1, 4>(w, rows, cols, x, y);
}
void Bf16Promote4(const uint16_t* w, int64_t rows, int64_t cols, const float* x, float* y,
                  float* /*scratch*/) {
  Bf16PromoteRows<4, 2>(w, rows, cols, x, y);
}

// ---------------------------------------------------------------- BF16, even/odd split
// Each 32-bit lane of the weights holds elements 2j (low half) and 2j+1 (high half): shifting
// left by 16 gives element 2j as a float32, masking the low half gives element 2j+1, and they
// multiply the vector's even and odd elements (deinterleaved once per call into scratch).
#if HWY_TARGET != HWY_SCALAR
template <int R>
HWY_INLINE void Bf16EvenOddGroup(const uint16_t* HWY_RESTRICT w, size_t cols,
                                 const float* HWY_RESTRICT xe, const float* HWY_RESTRICT xo,
                                 float* HWY_RESTRICT y) {
  const hn::ScalableTag<float> df;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Repartition<uint16_t, decltype(du)> du16;
  const size_t N = hn::Lanes(df);
  const auto hi = hn::Set(du, 0xFFFF0000u);
  hn::Vec<decltype(df)> ae[R], ao[R];
  for (int i = 0; i < R; ++i) ae[i] = ao[i] = hn::Zero(df);
  size_t c = 0;
  for (; c + 2 * N <= cols; c += 2 * N) {
    const auto ve = hn::LoadU(df, xe + c / 2), vo = hn::LoadU(df, xo + c / 2);
    for (int i = 0; i < R; ++i) {
      const auto v = hn::BitCast(du, hn::LoadU(du16, w + i * cols + c));
      ae[i] = hn::MulAdd(hn::BitCast(df, hn::ShiftLeft<16>(v)), ve, ae[i]);
      ao[i] = hn::MulAdd(hn::BitCast(df, hn::And(v, hi)), vo, ao[i]);
    }
  }
  for (int i = 0; i < R; ++i) {
    float s = hn::GetLane(hn::SumOfLanes(df, hn::Add(ae[i], ao[i])));
    for (size_t k = c; k < cols; ++k) {
      uint32_t bits = static_cast<uint32_t>(w[i * cols + k]) << 16;
      float f;
      std::memcpy(&f, &bits, 4);
      s += f * (k % 2 ? xo[k / 2] : xe[k / 2]);
    }
    y[i] = s;
  }
}
#endif

// scratch: cols + 2 * Lanes floats.
void Bf16EvenOdd(const uint16_t* w, int64_t rows, int64_t cols, const float* x, float* y,
                 float* scratch) {
#if HWY_TARGET == HWY_SCALAR  // one lane: no pairs to split
  return Bf16Promote(w, rows, cols, x, y, scratch);
#endif
  const hn::ScalableTag<float> df;
  const size_t N = hn::Lanes(df);
  float* xe = scratch;
  float* xo = scratch + (cols + 1) / 2 + N;
  size_t j = 0;
  for (; 2 * (j + N) <= static_cast<size_t>(cols); j += N) {
    hn::Vec<decltype(df)> e, o;
    hn::LoadInterleaved2(df, x + 2 * j, e, o);
    hn::StoreU(e, df, xe + j);
    hn::StoreU(o, df, xo + j);
  }
  for (size_t k = 2 * j; k < static_cast<size_t>(cols); ++k) (k % 2 ? xo : xe)[k / 2] = x[k];
#if HWY_TARGET != HWY_SCALAR
  constexpr int R = 4;
  int64_t r = 0;
  for (; r + R <= rows; r += R) Bf16EvenOddGroup<R>(w + r * cols, cols, xe, xo, y + r);
  for (; r < rows; ++r) Bf16EvenOddGroup<1>(w + r * cols, cols, xe, xo, y + r);
#endif
}

// ---------------------------------------------------------------- Q8 x int8 activations
// Per block of 32: the weight codes widened to int16 (PromoteTo), multiplied pairwise with the
// activation codes (widened once per call) and summed into int32 lanes (vpmaddwd through
// ReorderWidenMulAccumulate), the lanes converted to float32 and multiply-added with the
// block's scale (the row's F16 scale times the activation's dx, computed per run of 16 blocks).
// Four rows per load of x and a software prefetch 8 KiB ahead, as r1's kernel (without it,
// 0.5-0.75x from DRAM; 2 rows: slower; 8 rows: a little faster in cache, not from DRAM).
template <int R>
HWY_INLINE void Q8Group(const int8_t* HWY_RESTRICT w, const uint16_t* HWY_RESTRICT qs,
                        size_t cols, const int16_t* HWY_RESTRICT x16,
                        const float* HWY_RESTRICT dx, float* HWY_RESTRICT y) {
  const hn::ScalableTag<int16_t> d16;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const hn::Repartition<int32_t, decltype(d16)> d32;
  const hn::Rebind<float, decltype(d32)> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const size_t N16 = hn::Lanes(d16), NF = hn::Lanes(df);
  const size_t blocks = cols / kBlock;
  hn::Vec<decltype(df)> acc[R];
  for (int i = 0; i < R; ++i) acc[i] = hn::Zero(df);
  float s[R][16];
  for (size_t b0 = 0; b0 < blocks; b0 += 16) {
    const size_t nb = std::min<size_t>(16, blocks - b0);
    for (int i = 0; i < R; ++i) {
      uint16_t qpad[16] = {};
      float dpad[16] = {};
      const uint16_t* q = qs + i * blocks + b0;
      const float* d = dx + b0;
      if (nb < 16) {
        std::memcpy(qpad, q, nb * 2);
        std::memcpy(dpad, d, nb * 4);
        q = qpad;
        d = dpad;
      }
      for (size_t j = 0; j < 16; j += NF) {
        const auto h = hn::PromoteTo(df, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(q + j)));
        hn::StoreU(hn::Mul(h, hn::LoadU(df, d + j)), df, s[i] + j);
      }
    }
    for (size_t b = 0; b < nb; ++b) {
      const size_t c = (b0 + b) * kBlock;
      if (b % 2 == 0)
        for (int i = 0; i < R; ++i) hwy::Prefetch(w + i * cols + c + kPrefetchBytes);
      for (int i = 0; i < R; ++i) {
        auto sum0 = hn::Zero(d32), sum1 = hn::Zero(d32);
        for (size_t k = 0; k < kBlock; k += N16) {
          const auto wv = hn::PromoteTo(d16, hn::LoadU(d8, w + i * cols + c + k));
          sum0 = hn::ReorderWidenMulAccumulate(d32, wv, hn::LoadU(d16, x16 + c + k), sum0, sum1);
        }
        sum0 = hn::RearrangeToOddPlusEven(sum0, sum1);
        acc[i] = hn::MulAdd(hn::ConvertTo(df, sum0), hn::Set(df, s[i][b]), acc[i]);
      }
    }
  }
  for (int i = 0; i < R; ++i) y[i] = hn::GetLane(hn::SumOfLanes(df, acc[i]));
}

// cols a multiple of 32; scratch: cols int16.
void Q8(const int8_t* w, const uint16_t* qs, int64_t rows, int64_t cols, const int8_t* code,
        const float* dx, float* y, int16_t* scratch) {
  const hn::ScalableTag<int16_t> d16;
  const hn::Rebind<int8_t, decltype(d16)> d8;
  const size_t N16 = hn::Lanes(d16);
  for (size_t c = 0; c < static_cast<size_t>(cols); c += N16)
    hn::StoreU(hn::PromoteTo(d16, hn::LoadU(d8, code + c)), d16, scratch + c);
  const int64_t blocks = cols / static_cast<int64_t>(kBlock);
  constexpr int R = 4;
  int64_t r = 0;
  for (; r + R <= rows; r += R)
    Q8Group<R>(w + r * cols, qs + r * blocks, cols, scratch, dx, y + r);
  for (; r < rows; ++r) Q8Group<1>(w + r * cols, qs + r * blocks, cols, scratch, dx, y + r);
}

}  // namespace HWY_NAMESPACE
}  // namespace r1hwy
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include "r1/core/dtype.h"
#include "r1/core/thread_pool.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/matvec_int8.h"
#include "r1/kernels/quantize_rows.h"
#include "r1/kernels/simd.h"

namespace r1hwy {
HWY_EXPORT(Target);
HWY_EXPORT(Bf16Promote);
HWY_EXPORT(Bf16Promote4);
HWY_EXPORT(Bf16EvenOdd);
HWY_EXPORT(Q8);

namespace {

constexpr int64_t kCols = 1536;
constexpr int64_t kCacheRows = 64;    // 192 KiB of BF16, 99 KiB of Q8: L2
constexpr int64_t kDramRows = 8960;   // Qwen-1.5B gate/up
constexpr size_t kDramBytes = 512ull << 20;  // copies cycled per DRAM benchmark

struct Weights {
  r1::DType dtype;
  int64_t rows = 0, cols = 0;
  std::vector<uint8_t> bytes;
  std::vector<uint16_t> qscales;
  std::vector<uint8_t> tiles;  // Q8: r1's layout of the same codes and scales (matrix.h)
  r1::Matrix Mat() const {
    r1::Matrix m;
    m.dtype = dtype;
    m.rows = rows;
    m.cols = cols;
    m.data = dtype == r1::DType::kI8 ? tiles.data() : bytes.data();
    return m;
  }
  size_t WeightBytes() const { return bytes.size() + qscales.size() * 2; }
};

Weights MakeWeights(r1::DType dt, int64_t rows, int64_t cols) {
  Weights w;
  w.dtype = dt;
  w.rows = rows;
  w.cols = cols;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0, 0.02f);
  std::vector<float> row(cols);
  if (dt == r1::DType::kI8) {
    const int64_t blocks = cols / r1::kQuantBlock;
    w.bytes.resize(rows * cols);
    w.qscales.resize(rows * blocks);
    for (int64_t r = 0; r < rows; ++r) {
      for (float& v : row) v = nd(rng);
      r1::QuantizeRowQ8(row.data(), cols, reinterpret_cast<int8_t*>(w.bytes.data()) + r * cols,
                        w.qscales.data() + r * blocks);
    }
    w.tiles.assign(w.Mat().bytes(), 0);
    for (int64_t r = 0; r < rows; ++r)
      r1::StoreQuantRow(dt, cols, r, w.bytes.data() + r * cols, w.qscales.data() + r * blocks,
                        w.tiles.data());
  } else {
    w.bytes.resize(rows * cols * 2);
    auto* p = reinterpret_cast<uint16_t*>(w.bytes.data());
    for (int64_t i = 0; i < rows * cols; ++i) p[i] = r1::F32ToBf16(nd(rng));
  }
  return w;
}

std::vector<float> MakeX(int64_t cols) {
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0, 1.0f);
  std::vector<float> x(cols);
  for (float& v : x) v = nd(rng);
  return x;
}

// One matrix for the in-cache shape; for the DRAM shape, copies filling kDramBytes (built once
// per dtype and kept: the Pair and single benchmarks share them).
const std::vector<Weights>& Copies(r1::DType dt, int64_t rows) {
  static std::vector<Weights> cache[2][2];
  std::vector<Weights>& v = cache[dt == r1::DType::kI8][rows == kDramRows];
  if (v.empty()) {
    v.push_back(MakeWeights(dt, rows, kCols));
    if (rows == kDramRows)
      while (v.size() * v[0].WeightBytes() < kDramBytes) v.push_back(v[0]);
  }
  return v;
}

// Products per timed segment: enough that a segment of the in-cache shape lasts tens of
// microseconds (clock reads negligible), one for the DRAM shape.
int Reps(const Weights& w) {
  return static_cast<int>(std::max<size_t>(1, (4u << 20) / w.WeightBytes()));
}

enum Impl { kR1, kHwyPromote, kHwyPromote4, kHwyEvenOdd4, kHwyQ8 };
const char* kImplName[] = {"r1", "hwy_promote", "hwy_promote_4rows", "hwy_evenodd_4rows", "hwy"};

struct Bf16Runner {
  std::vector<float> x = MakeX(kCols), scratch = std::vector<float>(kCols + 64);
  r1::ThreadPool pool{1};
  void Run(Impl impl, const Weights& w, float* y) {
    const auto* p = reinterpret_cast<const uint16_t*>(w.bytes.data());
    switch (impl) {
      case kR1: r1::MatMul(w.Mat(), x.data(), 1, y, pool); break;
      case kHwyPromote:
        HWY_DYNAMIC_DISPATCH(Bf16Promote)(p, w.rows, w.cols, x.data(), y, scratch.data());
        break;
      case kHwyPromote4:
        HWY_DYNAMIC_DISPATCH(Bf16Promote4)(p, w.rows, w.cols, x.data(), y, scratch.data());
        break;
      default:
        HWY_DYNAMIC_DISPATCH(Bf16EvenOdd)(p, w.rows, w.cols, x.data(), y, scratch.data());
        break;
    }
  }
};

struct Q8Runner {
  r1::Int8Activations act;
  std::vector<int16_t> scratch = std::vector<int16_t>(kCols);
  Q8Runner() {
    const std::vector<float> x = MakeX(kCols);
    r1::QuantizeActivations(x.data(), kCols, act);
  }
  void Run(Impl impl, const Weights& w, float* y) {
    if (impl == kR1) {
      r1::Int8MatVecRows(w.Mat(), 0, w.rows, &act, 1, y, w.rows, nullptr);
    } else {
      HWY_DYNAMIC_DISPATCH(Q8)(reinterpret_cast<const int8_t*>(w.bytes.data()),
                               w.qscales.data(), w.rows, w.cols, act.code.data(), act.dx.data(),
                               y, scratch.data());
    }
  }
};

// The same kernels on two threads sharing the memory bandwidth, as decode runs them (`r1 bench`
// uses every core): r1's products as MatMul splits them (BF16: MatMul on a 2-thread pool; Q8:
// Int8MatVecRows over ParallelFor's row chunks, as MatMul does after quantizing), Highway's over
// the same chunks, each thread with its own scratch.
constexpr int64_t kRowGrain = 32;

struct Bf16Runner2 {
  std::vector<float> x = MakeX(kCols);
  std::vector<float> scratch[2] = {std::vector<float>(kCols + 64), std::vector<float>(kCols + 64)};
  r1::ThreadPool pool{2};
  void Run(Impl impl, const Weights& w, float* y) {
    if (impl == kR1) return r1::MatMul(w.Mat(), x.data(), 1, y, pool);
    const auto* p = reinterpret_cast<const uint16_t*>(w.bytes.data());
    pool.ParallelFor(w.rows, kRowGrain, [&](int64_t r0, int64_t r1, int t) {
      const uint16_t* rows = p + r0 * w.cols;
      float* s = scratch[t].data();
      switch (impl) {
        case kHwyPromote:
          HWY_DYNAMIC_DISPATCH(Bf16Promote)(rows, r1 - r0, w.cols, x.data(), y + r0, s);
          break;
        case kHwyPromote4:
          HWY_DYNAMIC_DISPATCH(Bf16Promote4)(rows, r1 - r0, w.cols, x.data(), y + r0, s);
          break;
        default:
          HWY_DYNAMIC_DISPATCH(Bf16EvenOdd)(rows, r1 - r0, w.cols, x.data(), y + r0, s);
          break;
      }
    });
  }
};

struct Q8Runner2 {
  r1::Int8Activations act;
  std::vector<int16_t> scratch[2] = {std::vector<int16_t>(kCols), std::vector<int16_t>(kCols)};
  r1::ThreadPool pool{2};
  Q8Runner2() {
    const std::vector<float> x = MakeX(kCols);
    r1::QuantizeActivations(x.data(), kCols, act);
  }
  void Run(Impl impl, const Weights& w, float* y) {
    const int64_t blocks = w.cols / r1::kQuantBlock;
    pool.ParallelFor(w.rows, kRowGrain, [&](int64_t r0, int64_t r1, int t) {
      if (impl == kR1) {
        r1::Int8MatVecRows(w.Mat(), r0, r1, &act, 1, y, w.rows, nullptr);
        return;
      }
      HWY_DYNAMIC_DISPATCH(Q8)(reinterpret_cast<const int8_t*>(w.bytes.data()) + r0 * w.cols,
                               w.qscales.data() + r0 * blocks, r1 - r0, w.cols, act.code.data(),
                               act.dx.data(), y + r0, scratch[t].data());
    });
  }
};

// max |y - ref| / max |ref|; aborts above 1e-3.
template <class Runner>
double Check(Runner& run, Impl impl, const Weights& w) {
  std::vector<float> ref(w.rows), y(w.rows);
  run.Run(kR1, w, ref.data());
  run.Run(impl, w, y.data());
  double amax = 0, emax = 0;
  for (int64_t r = 0; r < w.rows; ++r) {
    amax = std::max(amax, std::fabs(static_cast<double>(ref[r])));
    emax = std::max(emax, std::fabs(static_cast<double>(y[r]) - ref[r]));
  }
  const double rel = amax > 0 ? emax / amax : emax;
  if (!(rel <= 1e-3)) {
    std::fprintf(stderr, "%s differs from r1 on [%lld, %lld]: max error %g of max |y| %g\n",
                 kImplName[impl], static_cast<long long>(w.rows),
                 static_cast<long long>(w.cols), emax, amax);
    std::abort();
  }
  return rel;
}

template <class Runner>
void Single(benchmark::State& state, Runner& run, r1::DType dt, Impl impl) {
  const std::vector<Weights>& ws = Copies(dt, state.range(0));
  if (impl != kR1) state.counters["err"] = Check(run, impl, ws[0]);
  std::vector<float> y(ws[0].rows);
  const int reps = ws.size() == 1 ? Reps(ws[0]) : 1;
  size_t i = 0;
  for (auto _ : state) {
    for (int k = 0; k < reps; ++k) run.Run(impl, ws[i], y.data());
    benchmark::DoNotOptimize(y.data());
    i = (i + 1) % ws.size();
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(ws[0].WeightBytes()) * reps,
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// The implementations one after the other in every iteration (order reversed every other
// iteration), each timed on its own (a fresh copy each from DRAM), so the ratios come from the
// same seconds.
template <class Runner>
void Pair(benchmark::State& state, Runner& run, r1::DType dt, std::vector<Impl> impls) {
  const std::vector<Weights>& ws = Copies(dt, state.range(0));
  for (Impl impl : impls)
    if (impl != kR1) state.counters[std::string("err_") + kImplName[impl]] = Check(run, impl, ws[0]);
  std::vector<float> y(ws[0].rows);
  const int reps = ws.size() == 1 ? Reps(ws[0]) : 1;
  std::vector<double> seconds(impls.size());
  size_t i = 0;
  bool reverse = false;
  for (auto _ : state) {
    // Every other iteration in reverse order, so neither side always follows the other.
    for (size_t jj = 0; jj < impls.size(); ++jj) {
      const size_t j = reverse ? impls.size() - 1 - jj : jj;
      const auto t0 = std::chrono::steady_clock::now();
      for (int k = 0; k < reps; ++k) run.Run(impls[j], ws[i], y.data());
      benchmark::DoNotOptimize(y.data());
      seconds[j] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      i = (i + 1) % ws.size();
    }
    reverse = !reverse;
  }
  const double bytes =
      static_cast<double>(ws[0].WeightBytes()) * reps * static_cast<double>(state.iterations());
  for (size_t j = 0; j < impls.size(); ++j) {
    state.counters[std::string(kImplName[impls[j]]) + "_GB/s"] = bytes / seconds[j] / 1e9;
    if (impls[j] != kR1)
      state.counters[std::string("ratio_") + kImplName[impls[j]]] = seconds[0] / seconds[j];
  }
}

Bf16Runner& Bf16() {
  static Bf16Runner r;
  return r;
}
Q8Runner& Q8Run() {
  static Q8Runner r;
  return r;
}

// r1 against the same algorithm in Highway on its own (from DRAM, a slower third kernel in the
// rotation moved r1's figure by up to 1.4x), then against the 4-row variants.
void BM_Bf16Pair(benchmark::State& s) { Pair(s, Bf16(), r1::DType::kBF16, {kR1, kHwyPromote}); }
void BM_Bf16Pair4Rows(benchmark::State& s) {
  Pair(s, Bf16(), r1::DType::kBF16, {kR1, kHwyPromote4, kHwyEvenOdd4});
}
void BM_Q8Pair(benchmark::State& s) { Pair(s, Q8Run(), r1::DType::kI8, {kR1, kHwyQ8}); }
Bf16Runner2& Bf16TwoThreads() {
  static Bf16Runner2 r;
  return r;
}
Q8Runner2& Q8TwoThreads() {
  static Q8Runner2 r;
  return r;
}
void BM_Bf16Pair_2threads(benchmark::State& s) {
  Pair(s, Bf16TwoThreads(), r1::DType::kBF16, {kR1, kHwyPromote});
}
void BM_Q8Pair_2threads(benchmark::State& s) {
  Pair(s, Q8TwoThreads(), r1::DType::kI8, {kR1, kHwyQ8});
}
void BM_Bf16(benchmark::State& s, Impl impl) { Single(s, Bf16(), r1::DType::kBF16, impl); }
void BM_Q8(benchmark::State& s, Impl impl) { Single(s, Q8Run(), r1::DType::kI8, impl); }

#define SHAPES Arg(kCacheRows)->Arg(kDramRows)->UseRealTime()
BENCHMARK(BM_Bf16Pair)->SHAPES;
BENCHMARK(BM_Bf16Pair4Rows)->SHAPES;
BENCHMARK(BM_Q8Pair)->SHAPES;
BENCHMARK(BM_Bf16Pair_2threads)->SHAPES;
BENCHMARK(BM_Q8Pair_2threads)->SHAPES;
BENCHMARK_CAPTURE(BM_Bf16, r1, kR1)->SHAPES;
BENCHMARK_CAPTURE(BM_Bf16, hwy_promote, kHwyPromote)->SHAPES;
BENCHMARK_CAPTURE(BM_Bf16, hwy_promote_4rows, kHwyPromote4)->SHAPES;
BENCHMARK_CAPTURE(BM_Bf16, hwy_evenodd_4rows, kHwyEvenOdd4)->SHAPES;
BENCHMARK_CAPTURE(BM_Q8, r1, kR1)->SHAPES;
BENCHMARK_CAPTURE(BM_Q8, hwy, kHwyQ8)->SHAPES;

}  // namespace
}  // namespace r1hwy

int main(int argc, char** argv) {
  const int64_t target = HWY_DYNAMIC_DISPATCH(r1hwy::Target)();
  benchmark::AddCustomContext("highway_version", std::to_string(HWY_MAJOR) + "." +
                                                     std::to_string(HWY_MINOR) + "." +
                                                     std::to_string(HWY_PATCH));
  benchmark::AddCustomContext("highway_target", hwy::TargetName(target));
  benchmark::AddCustomContext("threads", "1 (both sides); 2 in *_2threads");
  if (!r1::CpuHasAvx512Vnni()) {
    std::fprintf(stderr, "r1's int8 kernel needs AVX512-VNNI; this CPU lacks it\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
#endif  // HWY_ONCE
