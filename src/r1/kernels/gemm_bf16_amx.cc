// The BF16 GEMM on AMX tiles (`tdpbf16ps`), Bf16Gemm's kernel where AmxEnabled(): see amx.h and
// docs/performance.md for what it is measured against.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "r1/core/scratch.h"
#include "r1/kernels/amx.h"
#include "r1/kernels/gemm_bf16_internal.h"
#include "r1/kernels/gemm_panels.h"
#include "r1/kernels/ops.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1::bf16_detail {

#if defined(__x86_64__)
// GCC 12's AVX-512 headers initialize `_mm512_undefined_*` from themselves, which its own
// -Wmaybe-uninitialized reports at every inlined use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {

// AMX: activations as planes of BF16 pairs, hi and (two terms) lo, in the order the A tiles are
// read: tile (g, j) holds tokens 16g .. 16g+15 x pairs 16j .. 16j+15 as 16 rows of 64 bytes, 1 KiB
// contiguous, at word (g * plane_pairs / 16 + j) * 256. Pairs are rounded up to the tile's 16
// (zero past the columns), tokens to whole tiles of 16 (zero rows). Token-major rows instead put
// a tile's 16 rows a row length apart, on 16 pages at long rows: the tile loads then waited on
// address translation (an 8960-column product ran at 0.55x the rate of a 1536-column one).
struct AmxTokens {
  int64_t plane_pairs = 0, tokens = 0;
  std::vector<uint32_t> hi, lo;
};

constexpr int kAmxTokens = 16, kAmxPairs = 16, kAmxTileWords = kAmxTokens * kAmxPairs;
constexpr int kPrefetchSteps = 4;

R1_INLINE int64_t AmxTileWord(int64_t plane_pairs, int64_t t, int64_t p) {
  return ((t / kAmxTokens) * (plane_pairs / kAmxPairs) + p / kAmxPairs) * kAmxTileWords +
         (t % kAmxTokens) * kAmxPairs + p % kAmxPairs;
}

R1_TARGET_AVX512_BF16 void SplitTokenPlanes(const float* x, int64_t cols, bool two_terms,
                                            int64_t t, int64_t plane_pairs, uint32_t* hi,
                                            uint32_t* lo) {
  // 16 columns are 8 pairs, which never straddle two tiles.
  for (int64_t c = 0; c < cols; c += 16) {
    const int64_t left = cols - c;
    const __mmask16 m = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(m, x + c);
    const __m256i h = reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v));
    const int64_t at = AmxTileWord(plane_pairs, t, c / 2);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + at), h);
    if (two_terms)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + at),
                          reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_sub_ps(v, WidenBf16(h)))));
  }
}

// What the last chunk of a panel does with its results.
enum class Epilogue {
  kStore,     // y = results + bias
  kSwiGlu,    // y holds the gate's results for these rows and tokens: y = SiluMul(y, results)
  kToPlanes,  // as kSwiGlu, then y (scratch) goes on as the next product's BF16 planes
};

// Where kToPlanes writes: the next product's activation planes (its columns are this product's
// rows), at pair `pair0` (the panel's first row / 2) of token `t0`'s row.
struct PlaneTarget {
  uint32_t* hi;
  uint32_t* lo;  // null: one term
  int64_t plane_pairs, pair0, t0;
};

// The results of C tiles 0 .. 2G-1 (token group g's halves in tiles 2g, 2g + 1) for the first
// `tokens` tokens and the first `valid` rows; y is the first token's row. With a SwiGLU epilogue
// the activation is SiluMul itself, so that y equals the unfused path's bit for bit, and the
// planes equal SplitTokenPlanes of it (the same round-to-nearest-even conversions).
template <int G>
R1_TARGET_AMX R1_INLINE void StoreAmxResults(int tokens, int valid, float* y, int64_t y_stride,
                                             const float* bias, Epilogue epilogue,
                                             const PlaneTarget* planes) {
  alignas(64) float out[2 * G][kAmxTokens * 16];
  _tile_stored(0, out[0], 64);
  _tile_stored(1, out[1], 64);
  if constexpr (G == 2) {
    _tile_stored(2, out[2], 64);
    _tile_stored(3, out[3], 64);
  }
  if (epilogue != Epilogue::kStore) {
    alignas(64) float up[kPanelRows];
    const __mmask16 m0 = static_cast<__mmask16>(valid >= 16 ? 0xffff : (1u << valid) - 1);
    const __mmask16 m1 = static_cast<__mmask16>(
        valid >= 32 ? 0xffff : valid <= 16 ? 0 : (1u << (valid - 16)) - 1);
    for (int t = 0; t < tokens; ++t) {
      const float* lo = out[t / kAmxTokens * 2] + t % kAmxTokens * 16;
      const float* hi = out[t / kAmxTokens * 2 + 1] + t % kAmxTokens * 16;
      for (int r = 0; r < 16; ++r) {
        up[r] = lo[r];
        up[16 + r] = hi[r];
      }
      float* g = y + t * y_stride;
      SiluMul(g, up, valid);
      if (epilogue != Epilogue::kToPlanes) continue;
      // Rows past `valid` are the planes' zero padding.
      const __m512 a = _mm512_maskz_loadu_ps(m0, g), b = _mm512_maskz_loadu_ps(m1, g + 16);
      const __m512bh h = _mm512_cvtne2ps_pbh(b, a);
      const int64_t at = AmxTileWord(planes->plane_pairs, planes->t0 + t, planes->pair0);
      _mm512_storeu_si512(planes->hi + at, reinterpret_cast<__m512i>(h));
      if (planes->lo) {
        const __m512i hw = reinterpret_cast<__m512i>(h);
        const __m512 ha = WidenBf16(_mm512_castsi512_si256(hw));
        const __m512 hb = WidenBf16(_mm512_extracti64x4_epi64(hw, 1));
        _mm512_storeu_si512(planes->lo + at, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(
                                                 _mm512_sub_ps(b, hb), _mm512_sub_ps(a, ha))));
      }
    }
    return;
  }
  for (int half = 0; half < 2 && half * 16 < valid; ++half) {
    const int rows = std::min(16, valid - half * 16);
    const __mmask16 m = static_cast<__mmask16>(rows >= 16 ? 0xffff : (1u << rows) - 1);
    const __m512 bv = bias ? _mm512_maskz_loadu_ps(m, bias + half * 16) : _mm512_setzero_ps();
    for (int t = 0; t < tokens; ++t)
      _mm512_mask_storeu_ps(y + t * y_stride + half * 16, m,
                            _mm512_add_ps(_mm512_load_ps(out[t / kAmxTokens * 2 + half] + t % kAmxTokens * 16), bv));
  }
}

// G groups of 16 tokens (t0 on) x a 32-row panel over pairs [p0, p1) of its rows (the panel holds
// that chunk, pairs padded to whole tiles of 16): both 16-row halves accumulate in float32 tiles
// (no per-block scales here, so nothing leaves the matrix unit until the chunk ends). With two
// groups, four C tiles give four independent chains of products, so each product's latency hides
// behind the other three (one group's two chains left the unit waiting: 2x slower per product).
// Rows longer than one chunk carry their sums in `acc` ([token][32] floats) from chunk to chunk;
// the last chunk (or the only one, acc null) stores to y (token t0's row). Tiles: 0-3 C, 4 and
// 5 A (activations), 6 and 7 B (the halves); all 16 rows x 64 bytes.
template <int G>
R1_TARGET_AMX void TileAmx(const uint8_t* panel, const AmxTokens& s, bool two_terms, int64_t t0,
                           int64_t p0, int64_t p1, float* acc, bool first_chunk, bool last_chunk,
                           int tokens, int valid, float* y, int64_t y_stride, const float* bias,
                           Epilogue epilogue, const PlaneTarget* planes) {
  const int64_t group = kAmxTokens * s.plane_pairs;  // words from one token group to the next
  const uint32_t* hi = s.hi.data() + AmxTileWord(s.plane_pairs, t0, 0);
  const uint32_t* lo = two_terms ? s.lo.data() + AmxTileWord(s.plane_pairs, t0, 0) : nullptr;
  constexpr int64_t kAccRow = kPanelRows * 4;  // bytes per token in acc
  float* a0 = acc ? acc + t0 * kPanelRows : nullptr;
  if (first_chunk) {
    _tile_zero(0);
    _tile_zero(1);
    if constexpr (G == 2) {
      _tile_zero(2);
      _tile_zero(3);
    }
  } else {
    _tile_loadd(0, a0, kAccRow);
    _tile_loadd(1, a0 + 16, kAccRow);
    if constexpr (G == 2) {
      _tile_loadd(2, a0 + kAmxTokens * kPanelRows, kAccRow);
      _tile_loadd(3, a0 + kAmxTokens * kPanelRows + 16, kAccRow);
    }
  }
  for (int64_t p = p0; p < p1; p += kAmxPairs) {
    const uint8_t* b = panel + (p - p0) * kPairBytes;
    // Tile loads from L2 fed the unit at about half the rate of loads from L1 (performance.md).
    const char* ahead = reinterpret_cast<const char*>(b) + kPrefetchSteps * kAmxPairs * kPairBytes;
    for (int line = 0; line < kAmxPairs * kPairBytes; line += 64)
      _mm_prefetch(ahead + line, _MM_HINT_T0);
    _tile_loadd(6, b, kPairBytes);
    _tile_loadd(7, b + 64, kPairBytes);
    for (int term = 0; term < (two_terms ? 2 : 1); ++term) {
      const uint32_t* a = (term == 0 ? hi : lo) + p / kAmxPairs * kAmxTileWords;
      _tile_loadd(4, a, 64);
      if constexpr (G == 2) _tile_loadd(5, a + group, 64);
      _tile_dpbf16ps(0, 4, 6);
      _tile_dpbf16ps(1, 4, 7);
      if constexpr (G == 2) {
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
      }
    }
  }
  if (last_chunk) return StoreAmxResults<G>(tokens, valid, y, y_stride, bias, epilogue, planes);
  _tile_stored(0, a0, kAccRow);
  _tile_stored(1, a0 + 16, kAccRow);
  if constexpr (G == 2) {
    _tile_stored(2, a0 + kAmxTokens * kPanelRows, kAccRow);
    _tile_stored(3, a0 + kAmxTokens * kPanelRows + 16, kAccRow);
  }
}

// Sizes s for n tokens of `cols` columns and zeroes what the splits will not write: pairs from
// `written_pairs` to the tile's 16, and whole rows of the tokens that pad the last tile.
void PrepareAmxTokens(AmxTokens& s, int64_t cols, int64_t n, bool two_terms,
                      int64_t written_pairs) {
  s.plane_pairs = (cols / 2 + kAmxPairs - 1) / kAmxPairs * kAmxPairs;
  s.tokens = (n + kAmxTokens - 1) / kAmxTokens * kAmxTokens;
  const size_t words = static_cast<size_t>(s.tokens * s.plane_pairs);
  GrowScratch(s.hi, words);
  if (two_terms) GrowScratch(s.lo, words);
  for (std::vector<uint32_t>* plane : {&s.hi, &s.lo}) {
    if (plane == &s.lo && !two_terms) break;
    for (int64_t t = 0; t < s.tokens; ++t)
      for (int64_t p = t < n ? written_pairs : 0; p < s.plane_pairs; ++p)
        (*plane)[AmxTileWord(s.plane_pairs, t, p)] = 0;
  }
}

void SplitTokens(AmxTokens& s, const float* x, int64_t x_stride, int64_t n, int64_t cols,
                 bool two_terms, ThreadPool& pool) {
  // SplitTokenPlanes writes every real token's pairs up to a multiple of 8.
  PrepareAmxTokens(s, cols, n, two_terms, (cols + 15) / 16 * 8);
  AmxTokens* sp = &s;  // the workers read the calling thread's copy
  pool.ParallelFor(n, 8, [&, sp](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t)
      SplitTokenPlanes(x + t * x_stride, cols, two_terms, t, sp->plane_pairs, sp->hi.data(),
                       two_terms ? sp->lo.data() : nullptr);
  });
}

// The product of w with s's n tokens (x planes): into y, or with `up` SwiGLU's activations into
// y, or (with `mid`, sized by the caller) into mid's planes, each up panel's epilogue writing the
// 16 pairs its 32 rows are of the next product's columns.
void RunAmxPanels(const Matrix& w, const Matrix* up, const AmxTokens& s, bool two_terms,
                  int64_t n, float* y, int64_t y_stride, const float* bias, AmxTokens* mid,
                  bool mid_two_terms, ThreadPool& pool) {
  const int64_t pairs = w.cols / 2;
  const AmxTokens* sp = &s;
  // Each task repacks a few panels and runs every token group over all of them, so a group's
  // activations are read from L2 once per few panels instead of from L3 once per panel: with one
  // panel per pass, 512 tokens' two planes (3 MiB at 1536 columns) streamed from L3 for every 32
  // rows, which left the tile unit idle most of the time. Rows longer than kChunkPairs pairs go a
  // chunk at a time, so several panels of a chunk fit L2 beside a token group's planes: whole
  // 8960-column panels (573 KiB each, one per task) made that product 0.78x as fast (exact) as
  // in chunks of 2048 columns; chunks of 512 or 1024 columns were slower than 2048.
  constexpr int64_t kChunkPairs = 1024;  // 2048 columns; 512 and 1024 and whole rows were slower
  const int64_t chunk = std::min(s.plane_pairs, kChunkPairs);
  const int64_t chunks = (s.plane_pairs + chunk - 1) / chunk;
  const int64_t panel_bytes = chunk * kPairBytes;
  const int64_t panels = (w.rows + kPanelRows - 1) / kPanelRows;
  constexpr int64_t kPanelsBudget = 512 << 10;  // bytes of repacked panels per task, in L2
  // SwiGLU: each of the gate's panels has the up projection's panel of the same rows beside it
  // (`matrices` panels per slot), and the up panel's results meet the gate's while both are in
  // L1: in y, or (mid) in a per-thread block that goes on into mid's planes.
  const int64_t matrices = up ? 2 : 1;
  const int64_t per_task = std::clamp<int64_t>(
      std::min(kPanelsBudget / (matrices * panel_bytes),
               (panels + 2 * pool.size() - 1) / (2 * pool.size())),
      1, 8);
  const int64_t tasks = (panels + per_task - 1) / per_task;
  pool.ParallelFor(tasks, 1, [&, sp](int64_t k0, int64_t k1, int) {
    thread_local std::vector<uint8_t> buffer;
    thread_local std::vector<float> sums;
    alignas(64) float gate_block[2 * kAmxTokens * kPanelRows];
    GrowScratch(buffer, matrices * per_task * panel_bytes);
    if (chunks > 1) GrowScratch(sums, matrices * per_task * sp->tokens * kPanelRows);
    static constexpr uint8_t kRows[8] = {16, 16, 16, 16, 16, 16, 16, 16};
    static constexpr uint16_t kColsb[8] = {64, 64, 64, 64, 64, 64, 64, 64};
    ConfigureTiles(8, kRows, kColsb);
    for (int64_t k = k0; k < k1; ++k) {
      const int64_t first = k * per_task, count = std::min(per_task, panels - first);
      int valid[8];
      for (int64_t i = 0; i < count; ++i)
        valid[i] = static_cast<int>(std::min<int64_t>(kPanelRows, w.rows - (first + i) * kPanelRows));
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t p0 = c * chunk, p1 = std::min(sp->plane_pairs, p0 + chunk);
        for (int64_t slot = 0; slot < matrices * count; ++slot) {
          const Matrix& m = slot % matrices == 0 ? w : *up;
          uint8_t* panel = buffer.data() + slot * panel_bytes;
          const int64_t real_end = std::min(pairs, p1);
          const int64_t i = slot / matrices;
          if (p0 < real_end)
            RepackPanel(m, (first + i) * kPanelRows, valid[i], panel, p0, real_end);
          std::fill(panel + std::max<int64_t>(0, real_end - p0) * kPairBytes,
                    panel + (p1 - p0) * kPairBytes, 0);
        }
        for (int64_t t0 = 0; t0 < n; t0 += 2 * kAmxTokens) {
          const int tokens = static_cast<int>(std::min<int64_t>(2 * kAmxTokens, n - t0));
          for (int64_t slot = 0; slot < matrices * count; ++slot) {
            const int64_t i = slot / matrices;
            const bool is_up = slot % matrices == 1;
            const int64_t r0 = (first + i) * kPanelRows;
            const uint8_t* panel = buffer.data() + slot * panel_bytes;
            float* acc = chunks > 1 ? sums.data() + slot * sp->tokens * kPanelRows : nullptr;
            const float* b = bias && !is_up ? bias + r0 : nullptr;
            float* out = y + t0 * y_stride + r0;
            int64_t out_stride = y_stride;
            if (mid) {
              out = gate_block;
              out_stride = kPanelRows;
            }
            const Epilogue epilogue = !is_up ? Epilogue::kStore
                                      : mid  ? Epilogue::kToPlanes
                                             : Epilogue::kSwiGlu;
            PlaneTarget target{};
            if (mid)
              target = {mid->hi.data(), mid_two_terms ? mid->lo.data() : nullptr,
                        mid->plane_pairs, r0 / 2, t0};
            if (tokens > kAmxTokens)
              TileAmx<2>(panel, *sp, two_terms, t0, p0, p1, acc, c == 0, c == chunks - 1, tokens,
                         valid[i], out, out_stride, b, epilogue, &target);
            else
              TileAmx<1>(panel, *sp, two_terms, t0, p0, p1, acc, c == 0, c == chunks - 1, tokens,
                         valid[i], out, out_stride, b, epilogue, &target);
          }
        }
      }
    }
  });
}

}  // namespace

void Bf16GemmAmx(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                 int64_t y_stride, const float* bias, bool two_terms, ThreadPool& pool,
                 const Matrix* up) {
  thread_local AmxTokens s;
  SplitTokens(s, x, x_stride, n, w.cols, two_terms, pool);
  RunAmxPanels(w, up, s, two_terms, n, y, y_stride, bias, nullptr, false, pool);
}

void SwiGluDownAmx(const Matrix& gate, const Matrix& up, const Matrix& down, const float* x,
                   int64_t x_stride, int64_t n, bool two_terms, bool down_two_terms, float* y,
                   int64_t y_stride, ThreadPool& pool) {
  thread_local AmxTokens s, mid;
  SplitTokens(s, x, x_stride, n, gate.cols, two_terms, pool);
  // Every pair of the hidden activations is written by one up panel's epilogue (rows past the
  // last panel's valid ones as zeros), so only the padding tokens need zeroing.
  const int64_t hidden_panels = (gate.rows + kPanelRows - 1) / kPanelRows;
  PrepareAmxTokens(mid, down.cols, n, down_two_terms, hidden_panels * kPanelRows / 2);
  RunAmxPanels(gate, &up, s, two_terms, n, nullptr, 0, nullptr, &mid, down_two_terms, pool);
  RunAmxPanels(down, nullptr, mid, down_two_terms, n, y, y_stride, nullptr, nullptr, false, pool);
}
#pragma GCC diagnostic pop
#endif

}  // namespace r1::bf16_detail
