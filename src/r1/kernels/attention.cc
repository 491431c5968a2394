#include "r1/kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "r1/kernels/gemm.h"
#include "r1/kernels/gemm_panels.h"
#include "r1/kernels/ops.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1 {

namespace {

// Few query rows (decode: one token's heads, 8 per thread for V2-Lite, 6 per KV head for Qwen)
// against many keys: sgemm spent more time packing the keys and values than multiplying (a
// V2-Lite decode at context 600 spent 17% of its time in attention, two thirds of it packing).
// These kernels read each key and value row once per call, straight from the cache.
constexpr int64_t kFewRows = 16;

#if defined(__x86_64__)
// GCC 12's AVX-512 headers initialize `_mm512_undefined_*` from themselves, which its own
// -Wuninitialized reports at every inlined _mm512_reduce_add_ps.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// Scores of NR rows x NT keys. Each (row, key) pair has one accumulator, summed over the
// dimension in order and reduced the same way whatever the blocking, so a row's scores do not
// depend on how many rows or keys share the call.
template <int NR, int NT>
R1_TARGET_AVX512 void ScoresBlock(const float* q, int64_t dim, const float* k, int64_t stride,
                                  int64_t keys, float* scores) {
  // Fully unrolled, so the NR x NT accumulators live in registers.
  __m512 acc[NR][NT];
#pragma GCC unroll 4
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NT; ++j) acc[i][j] = _mm512_setzero_ps();
  for (int64_t c = 0; c < dim; c += 16) {
    const __mmask16 m = dim - c >= 16 ? 0xffff : static_cast<__mmask16>((1u << (dim - c)) - 1);
    __m512 kv[NT];
#pragma GCC unroll 4
    for (int j = 0; j < NT; ++j) kv[j] = _mm512_maskz_loadu_ps(m, k + j * stride + c);
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) {
      const __m512 qv = _mm512_maskz_loadu_ps(m, q + i * dim + c);
#pragma GCC unroll 4
      for (int j = 0; j < NT; ++j) acc[i][j] = _mm512_fmadd_ps(qv, kv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NT; ++j) scores[i * keys + j] = _mm512_reduce_add_ps(acc[i][j]);
}

// Prefetches `width` floats of rows [t, t + 4) (those below `keys`), `stride` floats apart. A
// GQA head's keys are 512-byte slices of 2 KiB cache rows (Qwen-1.5B), a stride the hardware
// prefetchers did not follow: 8 keys ahead, a Qwen q4 decode step at context 576 went from
// 1.15-1.16x to 1.10-1.11x the step at context 16 (16 keys ahead 1.11-1.12, 32 1.12-1.13).
// MLA's latent rows are contiguous, and V2-Lite measured the same with and without it.
R1_TARGET_AVX512 R1_INLINE void PrefetchRows(const float* base, int64_t t, int64_t keys,
                                             int64_t stride, int64_t width) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(base);
  for (int64_t j = t; j < std::min(keys, t + 4); ++j)
    for (int64_t c = 0; c < width; c += 16)
      _mm_prefetch(reinterpret_cast<const char*>(p + (j * stride + c) * sizeof(float)), _MM_HINT_T0);
}
constexpr int64_t kKeysAhead = 8;

// Keys outside, rows inside: each block of key rows is read from memory once per call and
// stays in L1 while every query row meets it (a latent row of V2-Lite is 2.3 KB; the cache of a
// layer at context 1000 is 2.3 MB, more than L2).
R1_TARGET_AVX512 void ScoresFewRows(const float* q, int64_t rows, const float* k, int64_t stride,
                                    int64_t dim, int64_t keys, float* scores) {
  int64_t t = 0;
  for (; t + 4 <= keys; t += 4) {
    PrefetchRows(k, t + kKeysAhead, keys, stride, dim);
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
      ScoresBlock<4, 4>(q + r * dim, dim, k + t * stride, stride, keys, scores + r * keys + t);
    // The rest of the rows in one block: a GQA group of 6 ran its last two rows as two 1 x 4
    // blocks, 5 loads per 4 multiply-adds, which took 40% of its score time.
    const float* qr = q + r * dim;
    float* sr = scores + r * keys + t;
    switch (rows - r) {
      case 3: ScoresBlock<3, 4>(qr, dim, k + t * stride, stride, keys, sr); break;
      case 2: ScoresBlock<2, 4>(qr, dim, k + t * stride, stride, keys, sr); break;
      case 1: ScoresBlock<1, 4>(qr, dim, k + t * stride, stride, keys, sr); break;
      default: break;
    }
  }
  for (; t < keys; ++t) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
      ScoresBlock<4, 1>(q + r * dim, dim, k + t * stride, stride, keys, scores + r * keys + t);
    for (; r < rows; ++r)
      ScoresBlock<1, 1>(q + r * dim, dim, k + t * stride, stride, keys, scores + r * keys + t);
  }
}

// out[r][c0, c0 + 16 NC) = sum over keys t in order of w[r][t] x value row t, for NR rows from
// r0: the NR x NC sums stay in registers over every key (16 at 4 x 4), so each key costs NC
// loads and NR broadcasts for NR x NC multiply-adds. Loading and storing the sums at every key
// instead (four keys per pass) left V2-Lite's MLA attention at a quarter of the FMA peak.
template <int NR, int NC>
R1_TARGET_AVX512 void ValuesBlock(const float* w, int64_t keys, const float* v, int64_t stride,
                                  int64_t c0, int64_t dv, bool prefetch, float* out) {
  __m512 acc[NR][NC];
  __mmask16 m[NC];
#pragma GCC unroll 4
  for (int j = 0; j < NC; ++j) {
    const int64_t left = dv - c0 - 16 * j;
    m[j] = left >= 16 ? 0xffff : left <= 0 ? 0 : static_cast<__mmask16>((1u << left) - 1);
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) acc[i][j] = _mm512_setzero_ps();
  }
  const uintptr_t ahead = reinterpret_cast<uintptr_t>(v + c0 + kKeysAhead * stride);
  for (int64_t t = 0; t < keys; ++t) {
    if (prefetch && t + kKeysAhead < keys)
      for (int j = 0; j < NC; ++j)
        _mm_prefetch(reinterpret_cast<const char*>(ahead + (t * stride + 16 * j) * sizeof(float)),
                     _MM_HINT_T0);
    __m512 vv[NC];
#pragma GCC unroll 4
    for (int j = 0; j < NC; ++j) vv[j] = _mm512_maskz_loadu_ps(m[j], v + t * stride + c0 + 16 * j);
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) {
      const __m512 wb = _mm512_set1_ps(w[i * keys + t]);
#pragma GCC unroll 4
      for (int j = 0; j < NC; ++j) acc[i][j] = _mm512_fmadd_ps(wb, vv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NC; ++j) _mm512_mask_storeu_ps(out + i * dv + c0 + 16 * j, m[j], acc[i][j]);
}

// Columns in blocks of 64 outside, rows in blocks of 4 inside: a block's slice of the value
// rows (64 floats x keys) stays in L1 while every row block takes it, and is prefetched on the
// first. Each sum adds its keys in order from zero, as the row-at-a-time loop did.
R1_TARGET_AVX512 void ValuesFewRows(const float* w, int64_t rows, const float* v, int64_t stride,
                                    int64_t keys, int64_t dv, float* out) {
  for (int64_t c0 = 0; c0 < dv; c0 += 64) {
    int64_t r = 0;
    for (; r + 4 <= rows; r += 4)
      ValuesBlock<4, 4>(w + r * keys, keys, v, stride, c0, dv, r == 0, out + r * dv);
    const float* wr = w + r * keys;
    float* o = out + r * dv;
    switch (rows - r) {
      case 3: ValuesBlock<3, 4>(wr, keys, v, stride, c0, dv, r == 0, o); break;
      case 2: ValuesBlock<2, 4>(wr, keys, v, stride, c0, dv, r == 0, o); break;
      case 1: ValuesBlock<1, 4>(wr, keys, v, stride, c0, dv, r == 0, o); break;
      default: break;
    }
  }
}

// Rows in lanes, for long key rows (MLA's 576-float latent rows): each of a vector's 16 lanes
// is one query row, so a (row, key) score is one lane's chain of multiply-adds over the
// dimension, with a key element broadcast from memory, and no horizontal sums. The dot products
// above spent about a quarter of their instructions reducing 16-lane sums (once per 36
// multiply-adds at 576 floats): a stand-alone loop of V2-Lite's scores (16 rows, 512 keys in L2,
// one thread) ran at 79 GFLOP/s that way and 134 this way, one load per multiply-add (the load
// ports' rate). Every sum still runs over its own terms in order, whatever the number of rows
// or keys in the call. Queries and weights go into lanes, and results out of them, through
// Transpose16x16 (gemm_panels.h).
constexpr int64_t kLanesMinDim = 256;
constexpr int kLanes = 16;
static_assert(kFewRows <= kLanes, "a call's rows fit one vector's lanes");

// Query rows transposed to [dim][16] (lanes past `rows` zero), or weights to [keys][16], from
// the buffer's first 64-byte aligned float, which it returns.
R1_TARGET_AVX512 const float* ToLanes(const float* x, int64_t rows, int64_t n,
                                      std::vector<float>& lanes) {
  if (lanes.size() < static_cast<size_t>(n * kLanes + kLanes)) lanes.resize(n * kLanes + kLanes);
  float* t =
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(lanes.data()) + 63) & ~uintptr_t{63});
  for (int64_t i0 = 0; i0 < n; i0 += 16) {
    const int64_t left = n - i0;
    const __mmask16 m = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
    __m512i a[16];
    for (int r = 0; r < 16; ++r)
      a[r] = r < rows ? _mm512_castps_si512(_mm512_maskz_loadu_ps(m, x + r * n + i0))
                      : _mm512_setzero_si512();
    Transpose16x16(a);
    for (int i = 0; i < std::min<int64_t>(16, left); ++i)
      _mm512_store_ps(t + (i0 + i) * kLanes, _mm512_castsi512_ps(a[i]));
  }
  return t;
}

// Lane sums of NT keys from k (rows `stride` apart): acc[j] lane r = q_r . k_j, the even and
// the odd elements in two chains added at the end (one chain of 576 terms lost about twice the
// digits of the 16-lane sums it replaces).
template <int NT>
R1_TARGET_AVX512 R1_INLINE void LaneScores(const float* qt, int64_t dim, const float* k,
                                           int64_t stride, __m512 (&acc)[NT]) {
  __m512 odd[NT];
#pragma GCC unroll 8
  for (int j = 0; j < NT; ++j) acc[j] = odd[j] = _mm512_setzero_ps();
  int64_t d = 0;
  for (; d + 2 <= dim; d += 2) {
    const __m512 q0 = _mm512_load_ps(qt + d * kLanes), q1 = _mm512_load_ps(qt + (d + 1) * kLanes);
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j) {
      acc[j] = _mm512_fmadd_ps(q0, _mm512_set1_ps(k[j * stride + d]), acc[j]);
      odd[j] = _mm512_fmadd_ps(q1, _mm512_set1_ps(k[j * stride + d + 1]), odd[j]);
    }
  }
  if (d < dim) {
    const __m512 q0 = _mm512_load_ps(qt + d * kLanes);
#pragma GCC unroll 8
    for (int j = 0; j < NT; ++j)
      acc[j] = _mm512_fmadd_ps(q0, _mm512_set1_ps(k[j * stride + d]), acc[j]);
  }
#pragma GCC unroll 8
  for (int j = 0; j < NT; ++j) acc[j] = _mm512_add_ps(acc[j], odd[j]);
}

// Lane r of acc[j] to out[r * out_stride + j], for rows r < rows and j < N (N <= 16).
template <int N>
R1_TARGET_AVX512 R1_INLINE void StoreLanes(const __m512 (&acc)[N], int64_t rows, float* out,
                                           int64_t out_stride) {
  __m512i a[16];
  for (int j = 0; j < 16; ++j) a[j] = j < N ? _mm512_castps_si512(acc[j]) : _mm512_setzero_si512();
  Transpose16x16(a);
  constexpr __mmask16 m = static_cast<__mmask16>((1u << N) - 1);
  for (int64_t r = 0; r < rows; ++r)
    _mm512_mask_storeu_ps(out + r * out_stride, m, _mm512_castsi512_ps(a[r]));
}

R1_TARGET_AVX512 void ScoresLanes(const float* q, int64_t rows, const float* k, int64_t stride,
                                  int64_t dim, int64_t keys, float* scores) {
  thread_local std::vector<float> buffer;
  const float* qt = ToLanes(q, rows, dim, buffer);
  constexpr int kKeys = 8;
  int64_t t = 0;
  for (; t + kKeys <= keys; t += kKeys) {
    // The next block's rows (two blocks ahead was slower from DRAM, none 1.5x slower).
    PrefetchRows(k, t + kKeys, keys, stride, dim);
    PrefetchRows(k, t + kKeys + 4, keys, stride, dim);
    __m512 acc[kKeys];
    LaneScores<kKeys>(qt, dim, k + t * stride, stride, acc);
    StoreLanes<kKeys>(acc, rows, scores + t, keys);
  }
  for (; t < keys; ++t) {
    __m512 acc[1];
    LaneScores<1>(qt, dim, k + t * stride, stride, acc);
    StoreLanes<1>(acc, rows, scores + t, keys);
  }
}

// out[r][c] = sum over keys t in order of w[r][t] x v[t][c]: NC columns' lane sums over every
// key, a weight vector (16 rows' weights of key t) times a broadcast value element.
template <int NC>
R1_TARGET_AVX512 R1_INLINE void LaneValues(const float* wt, int64_t keys, const float* v,
                                           int64_t stride, int64_t rows, int64_t dv, float* out) {
  __m512 acc[NC];
#pragma GCC unroll 16
  for (int j = 0; j < NC; ++j) acc[j] = _mm512_setzero_ps();
  for (int64_t t = 0; t < keys; ++t) {
    const __m512 w = _mm512_load_ps(wt + t * kLanes);
    const float* vt = v + t * stride;
#pragma GCC unroll 16
    for (int j = 0; j < NC; ++j) acc[j] = _mm512_fmadd_ps(w, _mm512_set1_ps(vt[j]), acc[j]);
  }
  StoreLanes<NC>(acc, rows, out, dv);
}

R1_TARGET_AVX512 void ValuesLanes(const float* w, int64_t rows, const float* v, int64_t stride,
                                  int64_t keys, int64_t dv, float* out) {
  thread_local std::vector<float> buffer;
  const float* wt = ToLanes(w, rows, keys, buffer);
  int64_t c = 0;
  for (; c + 16 <= dv; c += 16) LaneValues<16>(wt, keys, v + c, stride, rows, dv, out + c);
  for (; c < dv; ++c) LaneValues<1>(wt, keys, v + c, stride, rows, dv, out + c);
}

// The same kernels on 8-wide AVX2 vectors (masked tails through vmaskmovps), for CPUs without
// AVX-512. Without them those CPUs ran every decode attention through sgemm, whose result for a
// query row changed with the number of rows in the call.
namespace avx2 {

R1_TARGET_AVX2 R1_INLINE __m256i TailMask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(std::min<int64_t>(n, 8))),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

R1_TARGET_AVX2 R1_INLINE float Sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

template <int NR, int NT>
R1_TARGET_AVX2 void ScoresBlock(const float* q, int64_t dim, const float* k, int64_t stride,
                                int64_t keys, float* scores) {
  __m256 acc[NR][NT];
#pragma GCC unroll 4
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NT; ++j) acc[i][j] = _mm256_setzero_ps();
  for (int64_t c = 0; c < dim; c += 8) {
    const __m256i m = TailMask(dim - c);
    __m256 kv[NT];
#pragma GCC unroll 4
    for (int j = 0; j < NT; ++j) kv[j] = _mm256_maskload_ps(k + j * stride + c, m);
#pragma GCC unroll 4
    for (int i = 0; i < NR; ++i) {
      const __m256 qv = _mm256_maskload_ps(q + i * dim + c, m);
#pragma GCC unroll 4
      for (int j = 0; j < NT; ++j) acc[i][j] = _mm256_fmadd_ps(qv, kv[j], acc[i][j]);
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < NR; ++i)
#pragma GCC unroll 4
    for (int j = 0; j < NT; ++j) scores[i * keys + j] = Sum(acc[i][j]);
}

R1_TARGET_AVX2 R1_INLINE void PrefetchRows(const float* base, int64_t t, int64_t keys,
                                           int64_t stride, int64_t width) {
  const uintptr_t p = reinterpret_cast<uintptr_t>(base);
  for (int64_t j = t; j < std::min(keys, t + 4); ++j)
    for (int64_t c = 0; c < width; c += 16)
      _mm_prefetch(reinterpret_cast<const char*>(p + (j * stride + c) * sizeof(float)), _MM_HINT_T0);
}

R1_TARGET_AVX2 void ScoresFewRows(const float* q, int64_t rows, const float* k, int64_t stride,
                                  int64_t dim, int64_t keys, float* scores) {
  int64_t t = 0;
  for (; t + 4 <= keys; t += 4) {
    PrefetchRows(k, t + kKeysAhead, keys, stride, dim);
    int64_t r = 0;
    for (; r + 2 <= rows; r += 2)
      ScoresBlock<2, 4>(q + r * dim, dim, k + t * stride, stride, keys, scores + r * keys + t);
    for (; r < rows; ++r)
      ScoresBlock<1, 4>(q + r * dim, dim, k + t * stride, stride, keys, scores + r * keys + t);
  }
  for (; t < keys; ++t)
    for (int64_t r = 0; r < rows; ++r)
      ScoresBlock<1, 1>(q + r * dim, dim, k + t * stride, stride, keys, scores + r * keys + t);
}

template <int NT>
R1_TARGET_AVX2 void ValuesKeys(const float* w, int64_t rows, int64_t keys, int64_t t,
                               const float* v, int64_t stride, int64_t dv, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    __m256 wb[NT];
#pragma GCC unroll 4
    for (int j = 0; j < NT; ++j) wb[j] = _mm256_set1_ps(w[r * keys + t + j]);
    float* o = out + r * dv;
    for (int64_t c = 0; c < dv; c += 8) {
      const __m256i m = TailMask(dv - c);
      __m256 acc = _mm256_maskload_ps(o + c, m);
#pragma GCC unroll 4
      for (int j = 0; j < NT; ++j)
        acc = _mm256_fmadd_ps(wb[j], _mm256_maskload_ps(v + (t + j) * stride + c, m), acc);
      _mm256_maskstore_ps(o + c, m, acc);
    }
  }
}

R1_TARGET_AVX2 void ValuesFewRows(const float* w, int64_t rows, const float* v, int64_t stride,
                                  int64_t keys, int64_t dv, float* out) {
  std::fill(out, out + rows * dv, 0.0f);
  int64_t t = 0;
  for (; t + 4 <= keys; t += 4) {
    PrefetchRows(v, t + kKeysAhead, keys, stride, dv);
    ValuesKeys<4>(w, rows, keys, t, v, stride, dv, out);
  }
  for (; t < keys; ++t) ValuesKeys<1>(w, rows, keys, t, v, stride, dv, out);
}

}  // namespace avx2
#pragma GCC diagnostic pop
#endif

}  // namespace

namespace {

// Scores of `rows` query rows against `keys` keys, `weigh(r, scores_row)` turning row r's scores
// into the weights of its values, then out = weights V: the few-row kernels straight from the
// cache for up to kFewRows rows (AVX-512 or AVX2; with `lanes`, rows in lanes for long rows),
// else two sgemm calls.
template <class Weigh>
void Attend(const float* q, int64_t rows, int64_t keys, const float* k, const float* v,
            int64_t kv_stride, int64_t dim, int64_t dv, bool lanes, float* out,
            const Weigh& weigh) {
  thread_local std::vector<float> scores;
  if (scores.size() < static_cast<size_t>(rows * keys)) scores.resize(rows * keys);
#if defined(__x86_64__)
  static const IsaLevel isa = DetectIsa();
  if (lanes && rows <= kFewRows && isa == IsaLevel::kAvx512 && dim >= kLanesMinDim) {
    ScoresLanes(q, rows, k, kv_stride, dim, keys, scores.data());
    for (int64_t r = 0; r < rows; ++r) weigh(r, scores.data() + r * keys);
    ValuesLanes(scores.data(), rows, v, kv_stride, keys, dv, out);
    return;
  }
  if (rows <= kFewRows && isa >= IsaLevel::kAvx2) {
    const bool wide = isa == IsaLevel::kAvx512;
    (wide ? ScoresFewRows : avx2::ScoresFewRows)(q, rows, k, kv_stride, dim, keys, scores.data());
    for (int64_t r = 0; r < rows; ++r) weigh(r, scores.data() + r * keys);
    (wide ? ValuesFewRows : avx2::ValuesFewRows)(scores.data(), rows, v, kv_stride, keys, dv, out);
    return;
  }
#endif
  if (rows <= kFewRows) {
    // Portable: one row per sgemm call, so a row's result never depends on its neighbours.
    for (int64_t r = 0; r < rows; ++r) {
      float* s = scores.data() + r * keys;
      GemmNTSerial(1, keys, dim, q + r * dim, dim, k, kv_stride, s, keys, 0.0f);
      weigh(r, s);
      GemmNNSerial(1, dv, keys, s, keys, v, kv_stride, out + r * dv, dv, 0.0f);
    }
    return;
  }
  GemmNTSerial(rows, keys, dim, q, dim, k, kv_stride, scores.data(), keys, 0.0f);
  for (int64_t r = 0; r < rows; ++r) weigh(r, scores.data() + r * keys);
  GemmNNSerial(rows, dv, keys, scores.data(), keys, v, kv_stride, out, dv, 0.0f);
}

}  // namespace

void AttendBlock(const float* q, int64_t rows, const int64_t* limit, const float* k,
                 const float* v, int64_t kv_stride, int64_t dim, int64_t dv, float scale,
                 float* out) {
  if (rows <= 0) return;
  const int64_t keys = *std::max_element(limit, limit + rows);
  Attend(q, rows, keys, k, v, kv_stride, dim, dv, /*lanes=*/false, out, [&](int64_t r, float* s) {
    Softmax(s, limit[r], scale);
    // Masked positions weigh nothing in the product with V.
    std::fill(s + limit[r], s + keys, 0.0f);
  });
}

void AttendPart(const float* q, int64_t rows, int64_t keys, const float* k, const float* v,
                int64_t kv_stride, int64_t dim, int64_t dv, float scale, float* out,
                float* row_max, float* row_sum) {
  if (rows <= 0 || keys <= 0) return;
  // Parts of a long context: rows in lanes. (A short context's few keys and, in MLA, 8 heads per
  // call left half the lanes idle, and the transposes took longer than the dot products.)
  Attend(q, rows, keys, k, v, kv_stride, dim, dv, /*lanes=*/true, out, [&](int64_t r, float* s) {
    row_sum[r] = SoftmaxUnnormalized(s, keys, &row_max[r], scale);
  });
}

void MergeAttendParts(int64_t parts, int64_t rows, int64_t dv, const float* outs,
                      const float* maxes, const float* sums, int64_t r0, int64_t r1, float* out) {
  thread_local std::vector<float> weight;
  weight.resize(parts);
  for (int64_t r = r0; r < r1; ++r) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t p = 0; p < parts; ++p) m = std::max(m, maxes[p * rows + r]);
    float total = 0;
    for (int64_t p = 0; p < parts; ++p) {
      weight[p] = std::exp(maxes[p * rows + r] - m);
      total += weight[p] * sums[p * rows + r];
    }
    for (int64_t p = 0; p < parts; ++p) weight[p] /= total;
    float* o = out + r * dv;
    std::fill(o, o + dv, 0.0f);
    for (int64_t p = 0; p < parts; ++p) Axpy(weight[p], outs + (p * rows + r) * dv, o, dv);
  }
}

int64_t AttendBlockRows(int64_t keys, int64_t budget_floats) {
  return std::max<int64_t>(1, budget_floats / std::max<int64_t>(1, keys));
}

}  // namespace r1
