// Decode attention over a long float32 KV cache, as Model::GqaAttention and the absorbed MLA
// attention run it: the keys split into kMlaKeyParts parts over the pool (AttendPart), then the
// parts merged per head (MergeAttendParts). The caches of many layers are cycled through so that
// they come from DRAM, as in a decode step, where the weights between two layers' attention
// evict them; GB/s counts the cache bytes read.
//
//   build/bench/attention_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "r1/core/thread_pool.h"
#include "r1/kernels/attention.h"
#include "r1/model/model_internal.h"

namespace {

// Queries per KV head (group), KV heads, and the width of one head's key or value (Dh). MLA
// attends all its heads over one shared row: group = heads, kv_heads = 1, the row the latent and
// rope key (dim) of which the first dv floats are the values.
struct Shape {
  int64_t group, kv_heads, dim, dv, row_width;
  int64_t value_offset;  // floats from a head's key to its value in a row
};

void RunDecodeAttention(benchmark::State& state, const Shape& sh) {
  const int64_t T = state.range(0);
  const bool from_l2 = state.range(1) != 0;  // one layer, read again and again
  const int64_t H = sh.group * sh.kv_heads;
  const int64_t layer_floats = T * sh.row_width;
  // About 1 GiB of cache in all (more than this machine's L3), at least two layers.
  const int64_t layers =
      from_l2 ? 1 : std::max<int64_t>(2, (int64_t{1} << 28) / layer_floats);
  std::vector<float> cache(static_cast<size_t>(layers * layer_floats));
  for (size_t i = 0; i < cache.size(); ++i) cache[i] = std::sin(0.001f * static_cast<float>(i));
  std::vector<float> q(H * sh.dim), out(H * sh.dv);
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::cos(0.01f * static_cast<float>(i));
  constexpr int64_t kParts = r1::kMlaKeyParts;
  std::vector<float> part_out(kParts * H * sh.dv), part_max(kParts * H), part_sum(kParts * H);
  const float scale = 1.0f / std::sqrt(static_cast<float>(sh.dim));
  r1::ThreadPool& pool = r1::DefaultPool();
  int64_t layer = 0;
  for (auto _ : state) {
    const float* rows0 = cache.data() + layer * layer_floats;
    pool.ParallelFor(kParts, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t part = b; part < e; ++part) {
        const int64_t t0 = T * part / kParts, t1 = T * (part + 1) / kParts;
        for (int64_t g = 0; g < sh.kv_heads; ++g) {
          const float* key = rows0 + t0 * sh.row_width + g * sh.dim;
          const float* value = key + sh.value_offset;
          const int64_t r = part * H + g * sh.group;
          r1::AttendPart(q.data() + g * sh.group * sh.dim, sh.group, t1 - t0, key, value,
                         sh.row_width, sh.dim, sh.dv, scale, part_out.data() + r * sh.dv,
                         part_max.data() + r, part_sum.data() + r);
        }
      }
    });
    pool.ParallelFor(H, 1, [&](int64_t b, int64_t e, int) {
      r1::MergeAttendParts(kParts, H, sh.dv, part_out.data(), part_max.data(), part_sum.data(),
                           b, e, out.data());
    });
    benchmark::DoNotOptimize(out.data());
    layer = (layer + 1) % layers;
  }
  state.counters["GB/s"] = benchmark::Counter(static_cast<double>(layer_floats) * sizeof(float),
                                              benchmark::Counter::kIsIterationInvariantRate);
}

// R1-Distill-Qwen-1.5B: 12 query heads over 2 KV heads of 128; a cache row holds both heads'
// keys, then both heads' values.
void BM_GqaDecodeAttention(benchmark::State& state) {
  RunDecodeAttention(state, {6, 2, 128, 128, 512, 256});
}
// Second argument 1: one layer's cache, resident in L2 at 512 positions (the kernels' own rate).
BENCHMARK(BM_GqaDecodeAttention)
    ->Args({512, 1})
    ->Args({512, 0})
    ->Args({3000, 0})
    ->Args({8000, 0})
    ->UseRealTime();

// The same heads with each KV head's rows (its key, then its value) contiguous: one KV head's
// cache alone, as a head-major cache layout would read it (r1's rows hold every head).
void BM_GqaDecodeAttentionOneHead(benchmark::State& state) {
  RunDecodeAttention(state, {6, 1, 128, 128, 256, 128});
}
BENCHMARK(BM_GqaDecodeAttentionOneHead)->Args({512, 1})->Args({3000, 0})->UseRealTime();

// DeepSeek-V2-Lite's absorbed MLA: 16 heads over one 576-float row (512 latent + 64 rope key).
void BM_MlaDecodeAttention(benchmark::State& state) {
  RunDecodeAttention(state, {16, 1, 576, 512, 576, 0});
}
BENCHMARK(BM_MlaDecodeAttention)->Args({512, 1})->Args({512, 0})->Args({3000, 0})->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
