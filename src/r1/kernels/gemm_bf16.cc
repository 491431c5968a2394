#include "r1/kernels/gemm_bf16.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/kernels/amx.h"
#include "r1/kernels/gemm_panels.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1 {

namespace {

constexpr int kPairBytes = kPanelRows * 4;       // one column pair of a repacked panel

std::atomic<bool>& Enabled() {
  static std::atomic<bool> on = [] {
    const char* e = std::getenv("R1_BF16_GEMM");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

std::atomic<bool>& Rounded() {
  static std::atomic<bool> on = [] {
    const char* e = std::getenv("R1_BF16_ACTIVATIONS");
    return e && std::string(e) == "1";
  }();
  return on;
}

thread_local int t_exact_scopes = 0;

// Activations of n tokens as BF16 pairs: for column pair p of token t, 4 bytes of hi terms, then
// (two terms) 4 bytes of lo terms, at (t * pairs + p) * terms words.
struct SplitTokens {
  int64_t pairs = 0;
  int terms = 2;
  std::vector<uint32_t> words;  // [n][pairs][terms]
};

// Tokens per register tile with one term: 32 rows x 12 tokens is 24 accumulators, so each pair
// of weight vectors loaded feeds 24 dot products, as 6 tokens x two terms do.
constexpr int kRoundedTileTokens = 12;

}  // namespace

void SetBf16Gemm(bool on) { Enabled() = on; }
bool Bf16GemmEnabled() { return Enabled(); }
void SetBf16RoundedActivations(bool on) { Rounded() = on; }
bool Bf16RoundedActivations() { return Rounded(); }
ExactBf16Activations::ExactBf16Activations() { ++t_exact_scopes; }
ExactBf16Activations::~ExactBf16Activations() { --t_exact_scopes; }

bool Bf16GemmApplies(const Matrix& w) {
  return w.dtype == DType::kBF16 && w.cols > 0 && w.cols % 2 == 0 && CpuHasAvx512Bf16();
}

#if defined(__x86_64__)
// GCC 12's AVX-512 headers initialize `_mm512_undefined_*` from themselves, which its own
// -Wmaybe-uninitialized reports at every inlined use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {

R1_TARGET_AVX512_BF16 R1_INLINE __m512 WidenBf16(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

template <bool kTwoTerms>
R1_TARGET_AVX512_BF16 void SplitToken(const float* x, int64_t cols, uint32_t* out) {
  int64_t c = 0;
  // 16 columns (8 pairs) per step: hi and lo as 16 BF16 each, then interleaved per pair.
  for (; c + 16 <= cols; c += 16) {
    const __m512 v = _mm512_loadu_ps(x + c);
    const __m256i hi = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
    if constexpr (!kTwoTerms) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c / 2), hi);
      continue;
    }
    const __m256i lo =
        reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_sub_ps(v, WidenBf16(hi))));
    // As 32-bit words: hi pairs in words 0-7, lo pairs in words 8-15, then interleaved.
    const __m512i both = _mm512_inserti64x4(_mm512_castsi256_si512(hi), lo, 1);
    const __m512i words = _mm512_permutexvar_epi32(
        _mm512_setr_epi32(0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15), both);
    _mm512_storeu_si512(out + c, words);
  }
  for (; c < cols; c += 2) {
    uint16_t h[2], l[2];
    for (int j = 0; j < 2; ++j) {
      h[j] = F32ToBf16(x[c + j]);
      l[j] = F32ToBf16(x[c + j] - Bf16ToF32(h[j]));
    }
    const int terms = kTwoTerms ? 2 : 1;
    out[c / 2 * terms] = h[0] | (static_cast<uint32_t>(h[1]) << 16);
    if (kTwoTerms) out[c / 2 * terms + 1] = l[0] | (static_cast<uint32_t>(l[1]) << 16);
  }
}

// Rows [r0, r0 + valid) of W: pair p of row i at byte p*128 + i*4 (columns 2p and 2p+1). Rows
// past `valid` are zero. Each group of 16 rows is read 16 pairs (64 bytes) per row at a time.
R1_TARGET_AVX512_BF16 void RepackPanel(const Matrix& w, int64_t r0, int valid, uint8_t* panel) {
  const int64_t pairs = w.cols / 2, row_bytes = w.cols * 2;
  for (int half = 0; half < 2; ++half) {
    const int first = 16 * half;
    const int rows_here = std::clamp(valid - first, 0, 16);
    const uint8_t* base = w.data + (r0 + first) * row_bytes;
    for (int64_t p = 0; p < pairs; p += 16) {
      const int64_t np = std::min<int64_t>(16, pairs - p);
      __m512i v[16];
      LoadRows16(base, row_bytes, p * 4, rows_here, static_cast<int>(np), v);
      Transpose16x16(v);
      for (int64_t j = 0; j < np; ++j)
        _mm512_storeu_si512(panel + (p + j) * kPairBytes + first * 4, v[j]);
    }
  }
}

template <int T, bool kTwoTerms>
R1_TARGET_AVX512_BF16 void Tile(const uint8_t* panel, const SplitTokens& s, int64_t t0, int valid,
                                float* y, int64_t y_stride, const float* bias) {
  const int64_t pairs = s.pairs;
  constexpr int kTerms = kTwoTerms ? 2 : 1;
  __m512 h0[T], h1[T], l0[T], l1[T];
  for (int t = 0; t < T; ++t) h0[t] = h1[t] = l0[t] = l1[t] = _mm512_setzero_ps();
  const uint32_t* xs = s.words.data() + t0 * pairs * kTerms;
  for (int64_t p = 0; p < pairs; ++p) {
    const __m512bh w0 = reinterpret_cast<__m512bh>(_mm512_loadu_si512(panel + p * kPairBytes));
    const __m512bh w1 =
        reinterpret_cast<__m512bh>(_mm512_loadu_si512(panel + p * kPairBytes + 64));
    for (int t = 0; t < T; ++t) {
      const uint32_t* xp = xs + (t * pairs + p) * kTerms;
      const __m512bh hi = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(xp[0])));
      h0[t] = _mm512_dpbf16_ps(h0[t], w0, hi);
      h1[t] = _mm512_dpbf16_ps(h1[t], w1, hi);
      if constexpr (kTwoTerms) {
        const __m512bh lo = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(xp[1])));
        l0[t] = _mm512_dpbf16_ps(l0[t], w0, lo);
        l1[t] = _mm512_dpbf16_ps(l1[t], w1, lo);
      }
    }
  }
  if constexpr (kTwoTerms) {
    for (int t = 0; t < T; ++t) {
      h0[t] = _mm512_add_ps(h0[t], l0[t]);
      h1[t] = _mm512_add_ps(h1[t], l1[t]);
    }
  }
  StorePanelTile<T>(h0, h1, valid, bias, y, y_stride, t0);
}

// AMX: activations as planes of BF16 pairs, [token][pair] for hi and (two terms) lo, each row
// `plane_pairs` words (the pairs rounded up to the tile's 16, zero past the columns), rows padded
// with zeros to whole tiles of 16 tokens.
struct AmxTokens {
  int64_t plane_pairs = 0, tokens = 0;
  std::vector<uint32_t> hi, lo;
};

constexpr int kAmxTokens = 16, kAmxPairs = 16;

R1_TARGET_AVX512_BF16 void SplitTokenPlanes(const float* x, int64_t cols, bool two_terms,
                                            uint32_t* hi, uint32_t* lo) {
  for (int64_t c = 0; c < cols; c += 16) {
    const int64_t left = cols - c;
    const __mmask16 m = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + c);
    const __m256i h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + c / 2), h);
    if (two_terms)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + c / 2),
                          reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_sub_ps(v, WidenBf16(h)))));
  }
}

// The results of C tiles 0 .. 2G-1 (token group g's halves in tiles 2g, 2g + 1) to y, for the
// first `tokens` tokens from t0 and the first `valid` rows, plus the bias.
template <int G>
R1_TARGET_AMX R1_INLINE void StoreAmxResults(int64_t t0, int tokens, int valid, float* y,
                                             int64_t y_stride, const float* bias) {
  alignas(64) float out[2 * G][kAmxTokens * 16];
  _tile_stored(0, out[0], 64);
  _tile_stored(1, out[1], 64);
  if constexpr (G == 2) {
    _tile_stored(2, out[2], 64);
    _tile_stored(3, out[3], 64);
  }
  for (int half = 0; half < 2 && half * 16 < valid; ++half) {
    const int rows = std::min(16, valid - half * 16);
    const __mmask16 m = static_cast<__mmask16>(rows >= 16 ? 0xffff : (1u << rows) - 1);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + half * 16) : _mm512_setzero_ps();
    for (int t = 0; t < tokens; ++t)
      _mm512_mask_storeu_ps(y + (t0 + t) * y_stride + half * 16, m,
                            _mm512_add_ps(_mm512_load_ps(out[t / kAmxTokens * 2 + half] + t % kAmxTokens * 16), bv));
  }
}

// G groups of 16 tokens (t0 on) x a 32-row panel with its pairs padded to whole tiles of 16:
// both 16-row halves accumulate in float32 tiles over the whole row (no per-block scales here,
// so nothing leaves the matrix unit until the end). With two groups, four C tiles give four
// independent chains of products, so each product's latency hides behind the other three (one
// group's two chains left the unit waiting: 2x slower per product). Tiles: 0-3 C, 4 and 5 A
// (activations), 6 and 7 B (the halves); all 16 rows x 64 bytes.
template <int G>
R1_TARGET_AMX void TileAmx(const uint8_t* panel, const AmxTokens& s, bool two_terms, int64_t t0,
                           int tokens, int valid, float* y, int64_t y_stride, const float* bias) {
  const int64_t stride = s.plane_pairs * 4, group = kAmxTokens * s.plane_pairs;
  const uint32_t* hi = s.hi.data() + t0 * s.plane_pairs;
  const uint32_t* lo = two_terms ? s.lo.data() + t0 * s.plane_pairs : nullptr;
  _tile_zero(0);
  _tile_zero(1);
  if constexpr (G == 2) {
    _tile_zero(2);
    _tile_zero(3);
  }
  for (int64_t p = 0; p < s.plane_pairs; p += kAmxPairs) {
    _tile_loadd(6, panel + p * kPairBytes, kPairBytes);
    _tile_loadd(7, panel + p * kPairBytes + 64, kPairBytes);
    for (int term = 0; term < (two_terms ? 2 : 1); ++term) {
      const uint32_t* a = (term == 0 ? hi : lo) + p;
      _tile_loadd(4, a, stride);
      if constexpr (G == 2) _tile_loadd(5, a + group, stride);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      if constexpr (G == 2) {
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
  }
  StoreAmxResults<G>(t0, tokens, valid, y, y_stride, bias);
}

}  // namespace
#pragma GCC diagnostic pop
#endif

namespace {

#if defined(__x86_64__)
void Bf16GemmAmx(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                 int64_t y_stride, const float* bias, bool two_terms, ThreadPool& pool) {
  thread_local AmxTokens s;
  const int64_t pairs = w.cols / 2;
  s.plane_pairs = (pairs + kAmxPairs - 1) / kAmxPairs * kAmxPairs;
  s.tokens = (n + kAmxTokens - 1) / kAmxTokens * kAmxTokens;
  s.hi.assign(s.tokens * s.plane_pairs, 0);
  if (two_terms) s.lo.assign(s.tokens * s.plane_pairs, 0);
  AmxTokens* sp = &s;  // the workers read the calling thread's copy
  const int64_t cols = w.cols;
  pool.ParallelFor(n, 8, [&, sp](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t)
      SplitTokenPlanes(x + t * x_stride, cols, two_terms, sp->hi.data() + t * sp->plane_pairs,
                       two_terms ? sp->lo.data() + t * sp->plane_pairs : nullptr);
  });
  // Each task repacks a few panels and runs every token group over all of them, so a group's
  // activations are read from L2 once per few panels instead of from L3 once per panel: with one
  // panel per pass, 512 tokens' two planes (3 MiB at 1536 columns) streamed from L3 for every 32
  // rows, which left the tile unit idle most of the time.
  const int64_t panel_bytes = sp->plane_pairs * kPairBytes;
  const int64_t panels = (w.rows + kPanelRows - 1) / kPanelRows;
  constexpr int64_t kPanelsBudget = 512 << 10;  // bytes of repacked panels per task, in L2
  const int64_t per_task = std::clamp<int64_t>(
      std::min(kPanelsBudget / panel_bytes, (panels + 2 * pool.size() - 1) / (2 * pool.size())), 1, 8);
  const int64_t tasks = (panels + per_task - 1) / per_task;
  pool.ParallelFor(tasks, 1, [&, sp](int64_t k0, int64_t k1, int) {
    thread_local std::vector<uint8_t> buffer;
    buffer.resize(per_task * panel_bytes);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t first = k * per_task, count = std::min(per_task, panels - first);
      int valid[8];
      for (int64_t i = 0; i < count; ++i) {
        const int64_t r0 = (first + i) * kPanelRows;
        valid[i] = static_cast<int>(std::min<int64_t>(kPanelRows, w.rows - r0));
        uint8_t* panel = buffer.data() + i * panel_bytes;
        RepackPanel(w, r0, valid[i], panel);
        std::fill(panel + pairs * kPairBytes, panel + panel_bytes, 0);
      }
      static constexpr uint8_t kRows[8] = {16, 16, 16, 16, 16, 16, 16, 16};
      static constexpr uint16_t kColsb[8] = {64, 64, 64, 64, 64, 64, 64, 64};
      ConfigureTiles(8, kRows, kColsb);
      for (int64_t t0 = 0; t0 < n; t0 += 2 * kAmxTokens) {
        const int tokens = static_cast<int>(std::min<int64_t>(2 * kAmxTokens, n - t0));
        for (int64_t i = 0; i < count; ++i) {
          const int64_t r0 = (first + i) * kPanelRows;
          const uint8_t* panel = buffer.data() + i * panel_bytes;
          const float* b = bias ? bias + r0 : nullptr;
          if (tokens > kAmxTokens)
            TileAmx<2>(panel, *sp, two_terms, t0, tokens, valid[i], y + r0, y_stride, b);
          else
            TileAmx<1>(panel, *sp, two_terms, t0, tokens, valid[i], y + r0, y_stride, b);
        }
      }
    }
  });
}
#endif

}  // namespace

void Bf16Gemm(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
              int64_t y_stride, const float* bias, ThreadPool& pool) {
  if (!Bf16GemmApplies(w))
    throw Error(w.name + ": the BF16 GEMM needs BF16 weights, an even row length and "
                         "AVX512-BF16");
#if defined(__x86_64__)
  if (n <= 0 || w.rows <= 0) return;
  const bool two_terms = !Bf16RoundedActivations() || t_exact_scopes > 0;
  if (AmxEnabled()) return Bf16GemmAmx(w, x, x_stride, n, y, y_stride, bias, two_terms, pool);
  thread_local SplitTokens s;
  s.pairs = w.cols / 2;
  s.terms = two_terms ? 2 : 1;
  s.words.resize(n * s.pairs * s.terms);
  SplitTokens* sp = &s;  // the workers read the calling thread's copy
  const int64_t cols = w.cols;
  pool.ParallelFor(n, 8, [&, sp](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      uint32_t* out = sp->words.data() + t * sp->pairs * sp->terms;
      if (two_terms)
        SplitToken<true>(x + t * x_stride, cols, out);
      else
        SplitToken<false>(x + t * x_stride, cols, out);
    }
  });
  ForEachPanel(w.rows, pool, [&, sp](int64_t r0, int valid) {
    thread_local std::vector<uint8_t> panel;
    panel.resize(sp->pairs * kPairBytes);
    RepackPanel(w, r0, valid, panel.data());
    float* out = y + r0;
    const float* b = bias ? bias + r0 : nullptr;
    if (two_terms) {
      ForEachTokenTile(n, [&](auto tokens, int64_t t0) {
        Tile<decltype(tokens)::value, true>(panel.data(), *sp, t0, valid, out, y_stride, b);
      });
      return;
    }
    int64_t t = 0;
    for (; t + kRoundedTileTokens <= n; t += kRoundedTileTokens)
      Tile<kRoundedTileTokens, false>(panel.data(), *sp, t, valid, out, y_stride, b);
    ForEachTokenTile(n - t, [&](auto tokens, int64_t t0) {
      Tile<decltype(tokens)::value, false>(panel.data(), *sp, t + t0, valid, out, y_stride, b);
    });
  });
#else
  (void)x, (void)x_stride, (void)y, (void)y_stride, (void)bias, (void)pool;
#endif
}

}  // namespace r1
