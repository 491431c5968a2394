// What the int8 and BF16 prefill GEMMs (gemm_int8.cc, gemm_bf16.cc) share: weight rows in panels
// of 32 (two vectors of 16 lanes) spread over the pool, tokens in register tiles of up to
// kPanelTileTokens, and the masked store of a tile's results with the bias.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "r1/core/thread_pool.h"
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
