#include "r1/core/machine_limits.h"

#include <unistd.h>

#include <algorithm>
#include <barrier>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif
#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/kernels/amx.h"

namespace r1 {
namespace {

// Floats per step of the read loop: 4 accumulators of 16 lanes, i.e. 4 zmm / 8 ymm registers.
constexpr size_t kReadStep = 64;

// The build targets generic x86-64, so the hot loops are cloned per ISA and picked at load time.
// Written as independent per-lane accumulators, GCC vectorizes the lanes without having to
// reassociate float adds (which it won't do without -ffast-math); several accumulators keep
// enough loads in flight that the add latency never limits the rate.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
float SumRange(const float* p, size_t n) {
  float acc[4][16] = {};
  for (size_t i = 0; i + kReadStep <= n; i += kReadStep) {
    for (int a = 0; a < 4; ++a) {
      for (int l = 0; l < 16; ++l) acc[a][l] += p[i + a * 16 + l];
    }
  }
  float s = 0.0f;
  for (int a = 0; a < 4; ++a) {
    for (int l = 0; l < 16; ++l) s += acc[a][l];
  }
  return s;
}

// Owns a 2 MiB-aligned buffer; huge pages keep TLB misses out of the bandwidth figure.
struct AlignedFree {
  void operator()(float* p) const { std::free(p); }
};

std::unique_ptr<float, AlignedFree> AllocateBuffer(size_t bytes) {
  constexpr size_t kAlign = 2u << 20;
  size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  auto* p = static_cast<float*>(std::aligned_alloc(kAlign, rounded));
  if (p == nullptr) {
    throw Error("machine limits: cannot allocate a " + std::to_string(bytes) +
                "-byte buffer for the bandwidth measurement");
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, rounded, MADV_HUGEPAGE);  // A hint: failure only costs some TLB misses.
#endif
  return std::unique_ptr<float, AlignedFree>(p);
}

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Runs body(thread_index, rep) on `threads` threads `reps` times, all threads released together
// by a barrier, and returns the shortest wall time of a rep. `prepare(thread_index)` runs once on
// each thread before the first rep and is not timed.
template <typename Prepare, typename Body>
double BestTimeOnThreads(int threads, int reps, Prepare prepare, Body body) {
  std::barrier sync(threads);
  std::vector<double> times(reps, 0.0);
  auto worker = [&](int t) {
    prepare(t);
    for (int r = 0; r < reps; ++r) {
      sync.arrive_and_wait();
      auto t0 = std::chrono::steady_clock::now();
      body(t, r);
      sync.arrive_and_wait();
      // Thread 0 started no earlier than the others were released and stops after all finished.
      if (t == 0) times[r] = Seconds(t0, std::chrono::steady_clock::now());
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; ++t) pool.emplace_back(worker, t);
  worker(0);
  for (auto& th : pool) th.join();
  return *std::min_element(times.begin(), times.end());
}

// --- FP32 FMA peak -----------------------------------------------------------------------------
// Explicit GCC vector types rather than auto-vectorized arrays: with arrays GCC interchanges the
// loops and runs each chain to completion, which measures FMA latency instead of throughput.
// Each ISA gets its own width and chain count (enough chains to cover latency x FMA ports, few
// enough to stay in registers), so this is dispatched by hand instead of with target_clones.
// fp-contract is off under -std=c++20, and the a * b + c below must become one FMA.
#pragma GCC push_options
#pragma GCC optimize("fp-contract=fast")

typedef float Vec4 __attribute__((vector_size(16)));
typedef float Vec8 __attribute__((vector_size(32)));
typedef float Vec16 __attribute__((vector_size(64)));

template <typename Vec, int kChains>
[[gnu::always_inline]] inline float FmaChains(int64_t iters, float x, float y) {
  constexpr int kLanes = sizeof(Vec) / sizeof(float);
  Vec acc[kChains];
  Vec vx = x - Vec{};
  Vec vy = y - Vec{};
  for (int j = 0; j < kChains; ++j) acc[j] = static_cast<float>(j) - Vec{};
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kChains; ++j) acc[j] = acc[j] * vx + vy;
  }
  Vec t = acc[0];
  for (int j = 1; j < kChains; ++j) t += acc[j];
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += t[l];
  return s;
}

struct FmaKernel {
  float (*fn)(int64_t iters, float x, float y);
  int flops_per_iter;
};

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx512f,fma"))) float FmaAvx512(int64_t iters, float x, float y) {
  return FmaChains<Vec16, 16>(iters, x, y);
}
__attribute__((target("avx2,fma"))) float FmaAvx2(int64_t iters, float x, float y) {
  return FmaChains<Vec8, 12>(iters, x, y);
}
#endif
// Without FMA hardware this is a multiply and an add: still two flops, and the real limit there.
float FmaGeneric(int64_t iters, float x, float y) { return FmaChains<Vec4, 12>(iters, x, y); }

#pragma GCC pop_options

// R1_ISA (baseline|avx2|avxvnni) caps the kernels' instruction sets (kernels/simd.h); the peaks
// follow it, so a capped run is rated against the instructions it actually runs.
std::string IsaCap() {
  const char* cap = std::getenv("R1_ISA");
  return cap ? cap : "";
}
bool Avx512Allowed() {
  const std::string cap = IsaCap();
  return cap != "baseline" && cap != "avx2" && cap != "avxvnni";
}

FmaKernel PickFmaKernel() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (IsaCap() == "baseline") return {FmaGeneric, 2 * 4 * 12};
  if (Avx512Allowed() && __builtin_cpu_supports("avx512f")) return {FmaAvx512, 2 * 16 * 16};
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return {FmaAvx2, 2 * 8 * 12};
#endif
  return {FmaGeneric, 2 * 4 * 12};
}

// --- BF16 and INT8 dot-product peaks -----------------------------------------------------------
// Intrinsics rather than vector types: there is no plain-C spelling of these instructions. 16
// independent accumulators cover a latency of up to 8 cycles at two instructions per cycle and
// leave half the 32 zmm registers free, so nothing spills.
constexpr int kDotChains = 16;

struct DotKernel {
  // Returns a value depending on every accumulator, so the chains cannot be dropped.
  double (*fn)(int64_t iters, float x);
  int ops_per_iter;
};

#if defined(__x86_64__) && defined(__GNUC__)
// Inputs near 1 and 1/2: each lane grows by about 1 per instruction, so even the longest run
// (millions of iterations) stays a normal float far below overflow.
__attribute__((target("avx512f,avx512bf16"))) double DotBf16(int64_t iters, float x) {
  const __m512bh a = _mm512_cvtne2ps_pbh(_mm512_set1_ps(x), _mm512_set1_ps(x));
  const __m512bh b = _mm512_cvtne2ps_pbh(_mm512_set1_ps(0.5f), _mm512_set1_ps(0.5f));
  __m512 acc[kDotChains];
#pragma GCC unroll 16
  for (int j = 0; j < kDotChains; ++j) acc[j] = _mm512_set1_ps(static_cast<float>(j));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kDotChains; ++j) acc[j] = _mm512_dpbf16_ps(acc[j], a, b);
  }
  __m512 t = acc[0];
#pragma GCC unroll 16
  for (int j = 1; j < kDotChains; ++j) t = _mm512_add_ps(t, acc[j]);
  // Summed through memory: GCC 12's _mm512_reduce_add_* trip -Wuninitialized in its own header.
  float lanes[16];
  _mm512_storeu_ps(lanes, t);
  double s = 0;
  for (float v : lanes) s += v;
  return s;
}

// Small codes (3 x -2, four products per lane per instruction) keep the int32 sums from
// wrapping over the few million iterations of a run. The start values depend on x because with
// constant ones GCC 12 copied every accumulator through another register each iteration.
__attribute__((target("avx512f,avx512vnni"))) double DotInt8(int64_t iters, float x) {
  const __m512i a = _mm512_set1_epi8(static_cast<char>(2 + static_cast<int>(x)));
  const __m512i b = _mm512_set1_epi8(-2);
  __m512i acc[kDotChains];
#pragma GCC unroll 16
  for (int j = 0; j < kDotChains; ++j) acc[j] = _mm512_set1_epi32(j + static_cast<int>(x));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kDotChains; ++j) acc[j] = _mm512_dpbusd_epi32(acc[j], a, b);
  }
  __m512i t = acc[0];
#pragma GCC unroll 16
  for (int j = 1; j < kDotChains; ++j) t = _mm512_add_epi32(t, acc[j]);
  int32_t lanes[16];
  _mm512_storeu_si512(lanes, t);
  double s = 0;
  for (int32_t v : lanes) s += v;
  return s;
}

// The int8 dot instructions of CPUs without AVX512-VNNI, which the AVX2 kernels use: AVX-VNNI's
// 256-bit `vpdpbusd` (32 products), and plain AVX2's `vpmaddubsw` + `vpaddw` (32 products into
// int16; the pair is what a dot product costs there). 12 chains: the 16 ymm registers also hold
// the operands. Wrapping int16 sums are harmless here.
constexpr int kDotChains256 = 12;

__attribute__((target("avx2,avxvnni"))) double DotInt8AvxVnni(int64_t iters, float x) {
  const __m256i a = _mm256_set1_epi8(static_cast<char>(2 + static_cast<int>(x)));
  const __m256i b = _mm256_set1_epi8(-2);
  __m256i acc[kDotChains256];
#pragma GCC unroll 16
  for (int j = 0; j < kDotChains256; ++j) acc[j] = _mm256_set1_epi32(j + static_cast<int>(x));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kDotChains256; ++j) acc[j] = _mm256_dpbusd_avx_epi32(acc[j], a, b);
  }
  __m256i t = acc[0];
#pragma GCC unroll 16
  for (int j = 1; j < kDotChains256; ++j) t = _mm256_add_epi32(t, acc[j]);
  int32_t lanes[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), t);
  double s = 0;
  for (int32_t v : lanes) s += v;
  return s;
}

__attribute__((target("avx2"))) double DotInt8Avx2(int64_t iters, float x) {
  __m256i a = _mm256_set1_epi8(static_cast<char>(2 + static_cast<int>(x)));
  const __m256i b = _mm256_set1_epi8(-2);
  __m256i acc[kDotChains256];
#pragma GCC unroll 16
  for (int j = 0; j < kDotChains256; ++j) acc[j] = _mm256_set1_epi16(static_cast<short>(j + static_cast<int>(x)));
  for (int64_t i = 0; i < iters; ++i) {
#pragma GCC unroll 16
    for (int j = 0; j < kDotChains256; ++j) {
      // Opaque to the compiler: otherwise the one product of constant inputs is hoisted out of
      // the loop (or shared by the chains) and only the adds are timed.
      asm volatile("" : "+x"(a));
      acc[j] = _mm256_add_epi16(acc[j], _mm256_maddubs_epi16(a, b));
    }
  }
  __m256i t = acc[0];
#pragma GCC unroll 16
  for (int j = 1; j < kDotChains256; ++j) t = _mm256_add_epi16(t, acc[j]);
  int16_t lanes[16];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(lanes), t);
  double s = 0;
  for (int16_t v : lanes) s += v;
  return s;
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
// Four C tiles, each its own chain, with A and B loaded once: as the BF16 GEMM's inner loop, minus
// its tile loads. Inputs 1 and 1/2 grow each sum by 16 per instruction, far from overflow.
R1_TARGET_AMX double DotAmxBf16(int64_t iters, float x) {
  static constexpr uint8_t kRows[8] = {16, 16, 16, 16, 16, 16, 16, 16};
  static constexpr uint16_t kColsb[8] = {64, 64, 64, 64, 64, 64, 64, 64};
  ConfigureTiles(8, kRows, kColsb);
  alignas(64) uint16_t a[16 * 32], b[16 * 32];
  for (uint16_t& v : a) v = F32ToBf16(x);
  for (uint16_t& v : b) v = F32ToBf16(0.5f);
  _tile_loadd(4, a, 64);
  _tile_loadd(5, a, 64);
  _tile_loadd(6, b, 64);
  _tile_loadd(7, b, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t i = 0; i < iters; ++i) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  alignas(64) float c[4][256];
  _tile_stored(0, c[0], 64);
  _tile_stored(1, c[1], 64);
  _tile_stored(2, c[2], 64);
  _tile_stored(3, c[3], 64);
  double s = 0;
  for (const auto& tile : c)
    for (float v : tile) s += v;
  return s;
}
#endif

// `feature` is the __builtin_cpu_supports name; libgcc's check includes the OS saving zmm state.
DotKernel PickDotKernel(bool bf16) {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (IsaCap() == "baseline") return {nullptr, 0};
  const bool avx512 = Avx512Allowed() && __builtin_cpu_supports("avx512f");
  if (bf16 && avx512 && __builtin_cpu_supports("avx512bf16")) return {DotBf16, 64 * kDotChains};
  if (!bf16 && avx512 && __builtin_cpu_supports("avx512vnni")) return {DotInt8, 128 * kDotChains};
  if (!bf16 && IsaCap() != "avx2" && __builtin_cpu_supports("avxvnni"))
    return {DotInt8AvxVnni, 64 * kDotChains256};
  if (!bf16 && __builtin_cpu_supports("avx2")) return {DotInt8Avx2, 64 * kDotChains256};
#else
  (void)bf16;
#endif
  return {nullptr, 0};
}

void CheckThreadsAndReps(int threads, int reps) {
  if (threads < 1) {
    throw Error("machine limits: threads must be >= 1, got " + std::to_string(threads));
  }
  if (reps < 1) throw Error("machine limits: reps must be >= 1, got " + std::to_string(reps));
}

}  // namespace

double MeasureReadBandwidthGBs(int threads, size_t bytes, int reps) {
  CheckThreadsAndReps(threads, reps);
  const size_t n = bytes / sizeof(float);
  const size_t chunk = n / threads / kReadStep * kReadStep;
  if (chunk == 0) {
    throw Error("machine limits: a " + std::to_string(bytes) + "-byte buffer is too small for " +
                std::to_string(threads) + " threads");
  }
  auto buffer = AllocateBuffer(bytes);
  float* data = buffer.get();
  std::vector<float> sums(threads, 0.0f);

  const double seconds = BestTimeOnThreads(
      threads, reps,
      [&](int t) {
        // Each thread pages in its own slice, so on NUMA machines it lands on that thread's node,
        // and page faults stay out of the timed passes.
        std::fill(data + t * chunk, data + (t + 1) * chunk, 1.0f);
      },
      [&](int t, int) { sums[t] += SumRange(data + t * chunk, chunk); });

  // Publishing the sums through a volatile keeps the compiler from dropping the loads.
  volatile float sink = 0.0f;
  for (float s : sums) sink = sink + s;
  const double read_bytes = static_cast<double>(chunk) * threads * sizeof(float);
  return read_bytes / seconds / 1e9;
}

double MeasurePeakFp32Gflops(int threads, int reps) {
  CheckThreadsAndReps(threads, reps);
  static const FmaKernel kernel = PickFmaKernel();
  // About 4 GFLOP per thread per rep: tens of milliseconds, long beyond barrier and timer noise.
  const int64_t iters = int64_t{4'000'000'000} / kernel.flops_per_iter;
  // Read through volatiles so the compiler cannot fold the chains; x < 1 makes every chain
  // converge to y / (1 - x) = 1, so no value overflows or goes subnormal however long it runs.
  volatile float vx = 0.9999999f;
  volatile float vy = 1e-7f;
  const float x = vx;
  const float y = vy;
  std::vector<float> sums(threads, 0.0f);

  const double seconds = BestTimeOnThreads(
      threads, reps, [](int) {},
      [&](int t, int) { sums[t] += kernel.fn(iters, x, y); });

  volatile float sink = 0.0f;
  for (float s : sums) sink = sink + s;
  return static_cast<double>(kernel.flops_per_iter) * iters * threads / seconds / 1e9;
}

namespace {
double MeasureDotPeak(const DotKernel& kernel, int threads, int reps) {
  CheckThreadsAndReps(threads, reps);
  if (kernel.fn == nullptr) return 0.0;
  // About 8 G operations per thread per rep: tens of milliseconds at these rates.
  const int64_t iters = int64_t{8'000'000'000} / kernel.ops_per_iter;
  volatile float vx = 1.0f;  // opaque to the compiler, so the loop is not folded
  const float x = vx;
  std::vector<double> sums(threads, 0.0);
  const double seconds = BestTimeOnThreads(
      threads, reps, [](int) {}, [&](int t, int) { sums[t] += kernel.fn(iters, x); });
  volatile double sink = 0.0;
  for (double s : sums) sink = sink + s;
  return static_cast<double>(kernel.ops_per_iter) * iters * threads / seconds / 1e9;
}
}  // namespace

double MeasurePeakBf16Gflops(int threads, int reps) {
  static const DotKernel kernel = PickDotKernel(true);
  return MeasureDotPeak(kernel, threads, reps);
}

double MeasurePeakInt8Gops(int threads, int reps) {
  static const DotKernel kernel = PickDotKernel(false);

  return MeasureDotPeak(kernel, threads, reps);
}

double MeasurePeakAmxBf16Gflops(int threads, int reps) {
#if defined(__x86_64__) && defined(__GNUC__)
  static const DotKernel kernel =
      CpuHasAmx() ? DotKernel{DotAmxBf16, 4 * 16 * 16 * 32 * 2} : DotKernel{nullptr, 0};
#else
  static const DotKernel kernel{nullptr, 0};
#endif
  return MeasureDotPeak(kernel, threads, reps);
}

size_t BandwidthBufferBytes() {
  size_t bytes = size_t{1} << 30;
#if defined(_SC_LEVEL3_CACHE_SIZE) && defined(_SC_PHYS_PAGES)
  // Servers with huge L3s need a bigger buffer to measure DRAM, but not so big it swaps.
  const long llc = sysconf(_SC_LEVEL3_CACHE_SIZE);
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (llc > 0) bytes = std::max(bytes, static_cast<size_t>(llc) * 8);
  if (pages > 0 && page_size > 0) {
    const size_t quarter_of_ram = static_cast<size_t>(pages) * static_cast<size_t>(page_size) / 4;
    bytes = std::min(bytes, quarter_of_ram);
  }
#endif
  return bytes;
}

MachineLimits MeasureMachineLimits(int threads) {
  MachineLimits limits;
  limits.read_bandwidth_gb_s = MeasureReadBandwidthGBs(threads, BandwidthBufferBytes());
  limits.peak_fp32_gflops = MeasurePeakFp32Gflops(threads);
  limits.peak_bf16_gflops = MeasurePeakBf16Gflops(threads);
  limits.peak_int8_gops = MeasurePeakInt8Gops(threads);
  limits.peak_amx_bf16_gflops = MeasurePeakAmxBf16Gflops(threads);
  limits.threads = threads;
  return limits;
}

std::string CpuModelName() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) != 0) continue;
    const size_t colon = line.find(':');
    if (colon == std::string::npos) break;
    const size_t begin = line.find_first_not_of(" \t", colon + 1);
    return begin == std::string::npos ? "unknown" : line.substr(begin);
  }
  return "unknown";
}

}  // namespace r1
