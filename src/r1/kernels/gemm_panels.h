// What the int8 and BF16 prefill GEMMs (gemm_int8.cc, gemm_bf16.cc) share: weight rows in panels
// of 32 (two vectors of 16 lanes) spread over the pool, tokens in register tiles of up to
// kPanelTileTokens, and the masked store of a tile's results with the bias.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "r1/core/thread_pool.h"
#include "r1/kernels/matrix.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1 {

inline constexpr int kPanelRows = 32;
inline constexpr int kPanelTileTokens = 6;

// per_panel(r0, valid) for each 32-row panel of `rows`, the panels split over the pool.
template <class PerPanel>
void ForEachPanel(int64_t rows, ThreadPool& pool, const PerPanel& per_panel) {
  const int64_t panels = (rows + kPanelRows - 1) / kPanelRows;
  pool.ParallelFor(panels, 1, [&](int64_t p0, int64_t p1, int) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t r0 = p * kPanelRows;
      per_panel(r0, static_cast<int>(std::min<int64_t>(kPanelRows, rows - r0)));
    }
  });
}

// tile(std::integral_constant<int, T>{}, t0) over n tokens: full tiles, then the remainder.
template <class Tile>
R1_INLINE void ForEachTokenTile(int64_t n, const Tile& tile) {
  int64_t t = 0;
  for (; t + kPanelTileTokens <= n; t += kPanelTileTokens)
    tile(std::integral_constant<int, kPanelTileTokens>{}, t);
  switch (n - t) {
    case 1: tile(std::integral_constant<int, 1>{}, t); break;
    case 2: tile(std::integral_constant<int, 2>{}, t); break;
    case 3: tile(std::integral_constant<int, 3>{}, t); break;
    case 4: tile(std::integral_constant<int, 4>{}, t); break;
    case 5: tile(std::integral_constant<int, 5>{}, t); break;
    default: break;
  }
  static_assert(kPanelTileTokens == 6, "the remainder cases above cover 1 .. 5");
}

#if defined(__x86_64__)
// In-register transpose of a 16x16 matrix of 32-bit elements: v[i] lane j becomes v[j] lane i.
// The panels' repacks read 16 rows 64 bytes at a time and transpose them (16-row gathers took
// 20-40% of a product's time at prefill sizes, and most of it for experts with few tokens).
// Unpacks build 4x4 blocks inside each 128-bit lane, two rounds of lane shuffles move the blocks.
R1_TARGET_AVX512 R1_INLINE void Transpose16x16(__m512i (&v)[16]) {
  __m512i t[16], u[16];
  for (int p = 0; p < 8; ++p) {
    t[2 * p] = _mm512_unpacklo_epi32(v[2 * p], v[2 * p + 1]);
    t[2 * p + 1] = _mm512_unpackhi_epi32(v[2 * p], v[2 * p + 1]);
  }
  // u[4g + c], lane L: rows 4g..4g+3 of column 4L + c.
  for (int g = 0; g < 4; ++g) {
    u[4 * g + 0] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512i p0 = _mm512_shuffle_i32x4(u[c], u[4 + c], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i p1 = _mm512_shuffle_i32x4(u[c], u[4 + c], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512i q0 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512i q1 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], _MM_SHUFFLE(3, 1, 3, 1));
    v[c] = _mm512_shuffle_i32x4(p0, q0, _MM_SHUFFLE(2, 0, 2, 0));
    v[8 + c] = _mm512_shuffle_i32x4(p0, q0, _MM_SHUFFLE(3, 1, 3, 1));
    v[4 + c] = _mm512_shuffle_i32x4(p1, q1, _MM_SHUFFLE(2, 0, 2, 0));
    v[12 + c] = _mm512_shuffle_i32x4(p1, q1, _MM_SHUFFLE(3, 1, 3, 1));
  }
}

// The first `cols` 32-bit words at `offset` of 16 rows (each `row_bytes` long), one vector per
// row; rows from `rows_here` on are zero and not read. Each live row's line kPrefetchLines ahead
// is prefetched: 16 rows are too many streams for the hardware prefetchers. The rows are at any
// addresses (the Q8/Q4 tiles interleave them) or, in the overload below, `row_bytes` apart.
R1_TARGET_AVX512 R1_INLINE void LoadRows16(const uint8_t* const (&rows)[16], int64_t row_bytes,
                                           int64_t offset, int rows_here, int cols,
                                           __m512i (&v)[16]) {
  constexpr int64_t kPrefetchLines = 2;
  const __mmask16 m = static_cast<__mmask16>(cols >= 16 ? 0xffff : (1u << cols) - 1);
  for (int i = 0; i < 16; ++i) {
    if (i >= rows_here) {
      v[i] = _mm512_setzero_si512();
      continue;
    }
    const uint8_t* src = rows[i] + offset;
    if (offset + 64 * kPrefetchLines < row_bytes)
      _mm_prefetch(reinterpret_cast<const char*>(src + 64 * kPrefetchLines), _MM_HINT_T0);
    v[i] = _mm512_maskz_loadu_epi32(m, src);
  }
}

R1_TARGET_AVX512 R1_INLINE void LoadRows16(const uint8_t* base, int64_t row_bytes, int64_t offset,
                                           int rows_here, int cols, __m512i (&v)[16]) {
  const uint8_t* rows[16];
  for (int i = 0; i < 16; ++i) rows[i] = base + i * row_bytes;
  LoadRows16(rows, row_bytes, offset, rows_here, cols, v);
}

// Q8/Q4 run k of rows r .. r + rows_here - 1, for the panel repacks: each row's codes and scales
// (null from rows_here on; those rows are not read).
struct QuantRunRows16 {
  const uint8_t* codes[16] = {};
  const uint16_t* scales[16] = {};
};
inline QuantRunRows16 RunRows16(const Matrix& w, int64_t r, int rows_here, int64_t k) {
  QuantRunRows16 rows;
  for (int i = 0; i < rows_here; ++i) {
    const QuantRun run = w.Run(r + i, k);
    rows.codes[i] = run.codes;
    rows.scales[i] = run.scales;
  }
  return rows;
}

// Their scales of the run's nb blocks in float32, transposed in one go: v[b] lane i is row i's
// scale of block b (zero from rows_here on).
R1_TARGET_AVX512 R1_INLINE void RunScales16(const QuantRunRows16& rows, int rows_here,
                                            int64_t nb, __m512i (&v)[16]) {
  const __mmask16 blocks = static_cast<__mmask16>(nb >= 16 ? 0xffff : (1u << nb) - 1);
  for (int i = 0; i < 16; ++i)
    v[i] = i < rows_here ? _mm512_castps_si512(
                               _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(blocks, rows.scales[i])))
                         : _mm512_setzero_si512();
  Transpose16x16(v);
}

// Rows 0..15 (lo) and 16..31 (hi) of T tokens' results, stored for the first `valid` rows of the
// panel (rows `y_stride` apart from token t0 on) with bias[r] added when given.
template <int T>
R1_TARGET_AVX512 R1_INLINE void StorePanelTile(const __m512 (&lo)[T], const __m512 (&hi)[T],
                                               int valid, const float* bias, float* y,
                                               int64_t y_stride, int64_t t0) {
  const __mmask16 m0 = static_cast<__mmask16>(valid >= 16 ? 0xffff : (1u << valid) - 1);
  const __mmask16 m1 =
      static_cast<__mmask16>(valid >= 32 ? 0xffff : valid <= 16 ? 0 : (1u << (valid - 16)) - 1);
  __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();
  if (bias) {
    b0 = _mm512_maskz_loadu_ps(m0, bias);
    b1 = _mm512_maskz_loadu_ps(m1, bias + 16);
  }
  for (int t = 0; t < T; ++t) {
    float* yt = y + (t0 + t) * y_stride;
    _mm512_mask_storeu_ps(yt, m0, _mm512_add_ps(lo[t], b0));
    _mm512_mask_storeu_ps(yt + 16, m1, _mm512_add_ps(hi[t], b1));
  }
}
#endif

}  // namespace r1
