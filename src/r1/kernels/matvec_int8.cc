#include "r1/kernels/matvec_int8.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <type_traits>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/kernels/matvec_int8_internal.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define R1_TARGET_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c,gfni")))
#endif

namespace r1 {

namespace {


std::atomic<bool>& Enabled() {
  static std::atomic<bool> on = [] {
    const char* e = std::getenv("R1_INT8_ACTIVATIONS");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

// GFNI (Ice Lake, Zen 4 and later; not Cascade Lake) shifts the Q4 high nibbles down in one
// instruction instead of a shift and a mask.
bool CpuHasGfni() {
#if defined(__x86_64__)
  static const bool yes = __builtin_cpu_supports("gfni");
  return yes;
#else
  return false;
#endif
}

float Half(uint16_t h) { return F16ToF32(h); }

// Integer weight code of element c of row r (Q8: stored; Q4: nibble - 8), and its block's scale.
int WeightCode(const Matrix& w, int64_t r, int64_t c) {
  const QuantRun run = w.Run(r, c / (kTileBlocks * kQuantBlock));
  const int64_t j = c - run.c0, b = j / kQuantBlock, e = j % kQuantBlock;
  if (w.dtype == DType::kI8) return static_cast<int8_t>(run.codes[RunByte(run.nb, b, e)]);
  const uint8_t byte = run.codes[RunByte(run.nb, b, e % 16)];
  return (e < 16 ? (byte & 15) : (byte >> 4)) - 8;
}
uint16_t WeightScale(const Matrix& w, int64_t r, int64_t b) {
  return w.Run(r, b / kTileBlocks).scales[b % kTileBlocks];
}

}  // namespace

void SetInt8Activations(bool on) { Enabled() = on; }
bool Int8ActivationsEnabled() { return Enabled(); }

bool Int8MatVecApplies(const Matrix& w) {
  return w.quantized() && w.data && w.cols > 0 && w.cols % kQuantBlock == 0 &&
         (CpuHasAvx512Vnni() || DetectIsa() >= IsaLevel::kAvx2);
}

namespace int8_detail {

int64_t PrepareActivations(int64_t cols, Int8Activations& o) {
  if (cols % kQuantBlock) throw Error("QuantizeActivations: row length must be a multiple of 32");
  const int64_t runs = (cols / kQuantBlock + kTileBlocks - 1) / kTileBlocks;
  o.cols = cols;
  o.code.resize(cols);
  o.dx.assign(runs * kTileBlocks, 0.0f);
  o.q8_bias.assign(runs * kTileBlocks, 0);
  o.q4_bias.assign(runs * kTileBlocks, 0);
  o.q8_lanes.assign(runs * kRunBytes, 0);
  o.q4_lanes.assign(runs * kRunBytes, 0);
  return runs;
}

}  // namespace int8_detail

namespace {

using int8_detail::kPrefetchBytes;
using int8_detail::kRunBytes;
using int8_detail::PrepareActivations;
using int8_detail::SpreadBlock;

void QuantizeActivationsScalar(const float* x, int64_t cols, Int8Activations& o) {
  PrepareActivations(cols, o);
  for (int64_t b = 0; b < cols / kQuantBlock; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
    o.dx[b] = d;
    int8_t* c = o.code.data() + b * kQuantBlock;
    int sum = 0;
    for (int j = 0; j < kQuantBlock; ++j) {
      c[j] = static_cast<int8_t>(std::clamp(std::nearbyint(xb[j] * inv), -127.0f, 127.0f));
      sum += c[j];
    }
    SpreadBlock(b, sum, o);
  }
}

}  // namespace

#if defined(__x86_64__)
// GCC 12's AVX-512 headers initialize `_mm512_undefined_*` from themselves, which its own
// -Wmaybe-uninitialized (or -Wuninitialized) reports at every inlined use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
namespace {

// Bit-identical to the scalar version: the products x * inv are the same float multiplies,
// vcvtps2dq rounds in the current mode as nearbyint does, and |x * inv| stays near 127, so
// clamping the integers equals clamping the rounded floats.
R1_TARGET_VNNI void QuantizeActivationsVnni(const float* x, int64_t cols, Int8Activations& o) {
  PrepareActivations(cols, o);
  const __m512i lo_clamp = _mm512_set1_epi32(-127), hi_clamp = _mm512_set1_epi32(127);
  for (int64_t b = 0; b < cols / kQuantBlock; ++b) {
    const __m512 a = _mm512_loadu_ps(x + b * kQuantBlock);
    const __m512 c = _mm512_loadu_ps(x + b * kQuantBlock + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
    const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
    o.dx[b] = d;
    const __m512 vi = _mm512_set1_ps(inv);
    auto codes = [&](__m512 v) R1_TARGET_VNNI {
      const __m512i i = _mm512_cvtps_epi32(_mm512_mul_ps(v, vi));
      return _mm512_max_epi32(_mm512_min_epi32(i, hi_clamp), lo_clamp);
    };
    const __m512i ia = codes(a), ic = codes(c);
    int8_t* out = o.code.data() + b * kQuantBlock;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm512_cvtepi32_epi8(ia));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 16), _mm512_cvtepi32_epi8(ic));
    SpreadBlock(b, _mm512_reduce_add_epi32(_mm512_add_epi32(ia, ic)), o);
  }
}

// Lane i of the result: the sum of acc[i]'s 16 lanes (i < R <= 4; the others zero).
template <int R>
R1_TARGET_VNNI __attribute__((always_inline)) inline __m128 SumLanes(const __m512* acc) {
  const __m512 z = _mm512_setzero_ps();
  const __m512 a0 = acc[0], a1 = R > 1 ? acc[1] : z, a2 = R > 2 ? acc[2] : z,
               a3 = R > 3 ? acc[3] : z;
  // Per 128-bit lane: [a0 a1 a0 a1] and [a2 a3 a2 a3] partial sums, then [a0 a1 a2 a3].
  const __m512 t0 = _mm512_add_ps(_mm512_unpacklo_ps(a0, a1), _mm512_unpackhi_ps(a0, a1));
  const __m512 t1 = _mm512_add_ps(_mm512_unpacklo_ps(a2, a3), _mm512_unpackhi_ps(a2, a3));
  const __m512 t = _mm512_add_ps(_mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(1, 0, 1, 0)),
                                 _mm512_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 2, 3, 2)));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(t), _mm512_extractf32x8_ps(t, 1));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// Each byte's bits 4-7 moved to bits 0-3, bits 4-7 cleared (GFNI: one instruction).
template <bool kGfni>
R1_TARGET_VNNI __attribute__((always_inline)) inline __m512i HighNibbles(__m512i v) {
  if constexpr (kGfni)
    return _mm512_gf2p8affine_epi64_epi8(v, _mm512_set1_epi64(0x1020408000000000), 0);
  return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(15));
}

// The weights kPrefetchBytes past p, into L2 only (kL2) or into L1 as well.
template <bool kL2>
R1_TARGET_VNNI __attribute__((always_inline)) inline void PrefetchAhead(const void* p) {
  const char* ahead = static_cast<const char*>(p) + kPrefetchBytes;
  if constexpr (kL2)
    _mm_prefetch(ahead, _MM_HINT_T1);
  else
    _mm_prefetch(ahead, _MM_HINT_T0);
}

// The tile's scales kPrefetchBytes on: two lines (4 rows x 16 F16) after the codes, which the
// code prefetches do not reach (the batched steps prefetched neither). From DRAM on the Xeon
// the second made no measurable difference (the L2 streamer finds it); no line of the stream is
// left to it.
template <bool kL2>
R1_TARGET_VNNI __attribute__((always_inline)) inline void PrefetchScalesAhead(const QuantRun& run) {
  const uint8_t* scales = reinterpret_cast<const uint8_t*>(run.scales);
  PrefetchAhead<kL2>(scales);
  PrefetchAhead<kL2>(scales + 64);
}

// Rows r .. r+R-1 (one tile group) against one token, lane i of the result row r+i's dot product
// (no bias). Per run, each row's word-interleaved codes (matrix.h) go through `vpdpbusd` against
// the activations' lanes, so int32 lane l ends with block l's exact sum; then one conversion and
// one multiply-add by (token scale x weight scale) per row, lane by lane. kFull: a whole run of
// 16 blocks (the short last run of a row loads nb words per read, the other lanes zero).
template <int R, bool kQ4, bool kGfni, bool kL2, bool kFull>
R1_TARGET_VNNI __attribute__((always_inline)) inline void RunDotsOne(
    const QuantRun& run, const int8_t* xl, const int32_t* xb, const float* xd, __m512* acc) {
  const __m512i nib = _mm512_set1_epi8(15), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __mmask16 m = kFull ? 0xffff : static_cast<__mmask16>((1u << run.nb) - 1);
  const int64_t word_stride = run.nb * 4;
  auto load = [&](const uint8_t* p) R1_TARGET_VNNI {
    PrefetchAhead<kL2>(p);
    return kFull ? _mm512_loadu_si512(p) : _mm512_maskz_loadu_epi32(m, p);
  };
  const __m512i bias = _mm512_loadu_si512(xb);
  const __m512 d = _mm512_loadu_ps(xd);
  PrefetchScalesAhead<kL2>(run);
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) {
    const uint8_t* p = run.codes + i * run.code_stride;
    __m512i d0 = bias, d1 = _mm512_setzero_si512();
    if constexpr (kQ4) {
#pragma GCC unroll 4
      for (int q = 0; q < 4; ++q) {
        const __m512i v = load(p + q * word_stride);
        const __m512i lo = _mm512_and_si512(v, nib), hi = HighNibbles<kGfni>(v);
        d0 = _mm512_dpbusd_epi32(d0, lo, _mm512_load_si512(xl + 128 * q));
        d1 = _mm512_dpbusd_epi32(d1, hi, _mm512_load_si512(xl + 128 * q + 64));
      }
    } else {
#pragma GCC unroll 8
      for (int q = 0; q < 8; q += 2) {
        d0 = _mm512_dpbusd_epi32(d0, _mm512_xor_si512(load(p + q * word_stride), flip),
                                 _mm512_load_si512(xl + 64 * q));
        d1 = _mm512_dpbusd_epi32(d1, _mm512_xor_si512(load(p + (q + 1) * word_stride), flip),
                                 _mm512_load_si512(xl + 64 * q + 64));
      }
    }
    // Lanes past a short run: zero codes (masked loads; Q8's flipped 0x80 meets zero
    // activations), zero bias, zero scales.
    const __m512 s = _mm512_mul_ps(
        d, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, run.scales + i * kTileBlocks)));
    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(d0, d1)), s, acc[i]);
  }
}

template <int R, bool kQ4, bool kGfni, bool kL2>
R1_TARGET_VNNI __attribute__((always_inline)) inline __m128 Dots(const Matrix& w, int64_t r,
                                                                 const Int8Activations& x) {
  const int8_t* lanes = (kQ4 ? x.q4_lanes : x.q8_lanes).data();
  const int32_t* bias = (kQ4 ? x.q4_bias : x.q8_bias).data();
  __m512 acc[R];
  for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < w.qruns(); ++k) {
    const QuantRun run = w.Run(r, k);
    const int8_t* xl = lanes + k * kRunBytes;
    const int32_t* xb = bias + k * kTileBlocks;
    const float* xd = x.dx.data() + k * kTileBlocks;
    if (run.nb == kTileBlocks)
      RunDotsOne<R, kQ4, kGfni, kL2, true>(run, xl, xb, xd, acc);
    else
      RunDotsOne<R, kQ4, kGfni, kL2, false>(run, xl, xb, xd, acc);
  }
  return SumLanes<R>(acc);
}

// The same for T tokens (2 or 3) at once (DotsTokens). Word q of the activations is loaded once
// for all rows, and word q of a row's codes (a Q4 word split into nibbles) once for all tokens:
// token after token, with every operand loaded per use, batched decode was bound by loads at
// 1.2 `vpdpbusd` per cycle of the 2 the INT8 peak runs. (One token keeps RunDotsOne's row-by-row
// order: walking the tile word by word across its rows measured slower in decode steps.) The
// sums are exact and the float steps those of RunDotsOne, so a token's result does not depend
// on the tokens beside it.
template <int R, int T, bool kQ4, bool kGfni, bool kL2, bool kFull>
R1_TARGET_VNNI __attribute__((always_inline)) inline void RunDots(
    const QuantRun& run, const Int8Activations* const* x, int64_t k, __m512 (&acc)[R][T]) {
  static_assert(T >= 2, "one token goes through RunDotsOne");
  constexpr int kWords = kQ4 ? 4 : 8;
  const __m512i nib = _mm512_set1_epi8(15), flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __mmask16 m = kFull ? 0xffff : static_cast<__mmask16>((1u << run.nb) - 1);
  const int64_t word_stride = run.nb * 4;
  PrefetchScalesAhead<kL2>(run);
  const int8_t* xl[T];
  __m512i d[R][T];
  for (int t = 0; t < T; ++t) {
    xl[t] = (kQ4 ? x[t]->q4_lanes : x[t]->q8_lanes).data() + k * kRunBytes;
    const __m512i bias =
        _mm512_loadu_si512((kQ4 ? x[t]->q4_bias : x[t]->q8_bias).data() + k * kTileBlocks);
    for (int i = 0; i < R; ++i) d[i][t] = bias;
  }
#pragma GCC unroll 8
  for (int q = 0; q < kWords; ++q) {
    __m512i xa[T], xb[T];  // Q8: word q; Q4: the codes for the low and the high nibbles
    for (int t = 0; t < T; ++t) {
      xa[t] = _mm512_load_si512(xl[t] + (kQ4 ? 128 : 64) * q);
      if constexpr (kQ4) xb[t] = _mm512_load_si512(xl[t] + 128 * q + 64);
    }
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const uint8_t* src = run.codes + i * run.code_stride + q * word_stride;
      PrefetchAhead<kL2>(src);
      const __m512i v = kFull ? _mm512_loadu_si512(src) : _mm512_maskz_loadu_epi32(m, src);
      if constexpr (kQ4) {
        const __m512i lo = _mm512_and_si512(v, nib), hi = HighNibbles<kGfni>(v);
        for (int t = 0; t < T; ++t) {
          d[i][t] = _mm512_dpbusd_epi32(d[i][t], lo, xa[t]);
          d[i][t] = _mm512_dpbusd_epi32(d[i][t], hi, xb[t]);
        }
      } else {
        const __m512i u = _mm512_xor_si512(v, flip);
        for (int t = 0; t < T; ++t)
          d[i][t] = _mm512_dpbusd_epi32(d[i][t], u, xa[t]);
      }
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < R; ++i) {
    const __m512 ws = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, run.scales + i * kTileBlocks));
    for (int t = 0; t < T; ++t) {
      const __m512 s = _mm512_mul_ps(_mm512_loadu_ps(x[t]->dx.data() + k * kTileBlocks), ws);
      acc[i][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d[i][t]), s, acc[i][t]);
    }
  }
}

template <int R, int T, bool kQ4, bool kGfni, bool kL2>
R1_TARGET_VNNI void DotsTokens(const Matrix& w, int64_t r, const Int8Activations* x, float* y,
                               int64_t y_stride, __m128 bias) {
  const Int8Activations* xs[T];
  for (int t = 0; t < T; ++t) xs[t] = x + t;
  __m512 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < T; ++t) acc[i][t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < w.qruns(); ++k) {
    const QuantRun run = w.Run(r, k);
    if (run.nb == kTileBlocks)
      RunDots<R, T, kQ4, kGfni, kL2, true>(run, xs, k, acc);
    else
      RunDots<R, T, kQ4, kGfni, kL2, false>(run, xs, k, acc);
  }
  const __mmask8 m = static_cast<__mmask8>((1u << R) - 1);
  for (int t = 0; t < T; ++t) {
    __m512 rows[R];
    for (int i = 0; i < R; ++i) rows[i] = acc[i][t];
    _mm_mask_storeu_ps(y + t * y_stride + r, m, _mm_add_ps(SumLanes<R>(rows), bias));
  }
}

template <int R, bool kQ4, bool kGfni, bool kL2>
R1_TARGET_VNNI void RowGroupTyped(const Matrix& w, int64_t r, const Int8Activations* x, int64_t n,
                                  float* y, int64_t y_stride, __m128 b) {
  int64_t t = 0;
  for (; t + 3 <= n; t += 3)
    DotsTokens<R, 3, kQ4, kGfni, kL2>(w, r, x + t, y + t * y_stride, y_stride, b);
  if (n - t == 2) DotsTokens<R, 2, kQ4, kGfni, kL2>(w, r, x + t, y + t * y_stride, y_stride, b);
  if (n - t == 1) {
    const __mmask8 m = static_cast<__mmask8>((1u << R) - 1);
    const __m128 dots = Dots<R, kQ4, kGfni, kL2>(w, r, x[t]);
    _mm_mask_storeu_ps(y + t * y_stride + r, m, _mm_add_ps(dots, b));
  }
}

template <int R, bool kL2>
R1_TARGET_VNNI __attribute__((always_inline)) inline void RowGroupIn(
    const Matrix& w, int64_t r, const Int8Activations* x, int64_t n, float* y, int64_t y_stride,
    __m128 b) {
  if (w.dtype == DType::kI8)
    RowGroupTyped<R, false, false, kL2>(w, r, x, n, y, y_stride, b);
  else if (CpuHasGfni())
    RowGroupTyped<R, true, true, kL2>(w, r, x, n, y, y_stride, b);
  else
    RowGroupTyped<R, true, false, kL2>(w, r, x, n, y, y_stride, b);
}

template <int R>
R1_TARGET_VNNI void RowGroup(const Matrix& w, int64_t r, const Int8Activations* x, int64_t n,
                             float* y, int64_t y_stride, const float* bias) {
  const __mmask8 m = static_cast<__mmask8>((1u << R) - 1);
  const __m128 b = bias ? _mm_maskz_loadu_ps(m, bias + r) : _mm_setzero_ps();
  if (PrefetchToL2()) return RowGroupIn<R, true>(w, r, x, n, y, y_stride, b);
  RowGroupIn<R, false>(w, r, x, n, y, y_stride, b);
}

R1_TARGET_VNNI void RowsVnni(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x,
                             int64_t n, float* y, int64_t y_stride, const float* bias) {
  static_assert(kTileRows == 4, "RowGroup below covers 1 .. 4 rows of a group");
  for (int64_t r = r0; r < r1;) {
    // The rows of one tile group from r on (a range may start or end inside a group).
    const int64_t rows = std::min<int64_t>(kTileRows - r % kTileRows, r1 - r);
    switch (rows) {
      case 4: RowGroup<4>(w, r, x, n, y, y_stride, bias); break;
      case 3: RowGroup<3>(w, r, x, n, y, y_stride, bias); break;
      case 2: RowGroup<2>(w, r, x, n, y, y_stride, bias); break;
      default: RowGroup<1>(w, r, x, n, y, y_stride, bias); break;
    }
    r += rows;
  }
}

}  // namespace
#pragma GCC diagnostic pop
#endif

void QuantizeActivations(const float* x, int64_t cols, Int8Activations& o) {
#if defined(__x86_64__)
  if (CpuHasAvx512Vnni()) return QuantizeActivationsVnni(x, cols, o);
  if (DetectIsa() >= IsaLevel::kAvx2) return int8_detail::QuantizeActivationsAvx2(x, cols, o);
#endif
  QuantizeActivationsScalar(x, cols, o);
}

void Int8MatVecRows(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x, int64_t n,
                    float* y, int64_t y_stride, const float* bias) {
#if defined(__x86_64__)
  if (Int8MatVecApplies(w)) {
    if (CpuHasAvx512Vnni()) return RowsVnni(w, r0, r1, x, n, y, y_stride, bias);
    return int8_detail::Int8RowsAvx2(w, r0, r1, x, n, y, y_stride, bias);
  }
#endif
  throw Error(w.name + ": the int8 activation path needs AVX2 and rows of 32k elements");
}

void Int8MatVecReference(const Matrix& w, const float* x, int64_t n, float* y, const float* bias) {
  Int8Activations q;
  const int64_t blocks = w.cols / kQuantBlock;
  for (int64_t t = 0; t < n; ++t) {
    QuantizeActivations(x + t * w.cols, w.cols, q);
    for (int64_t r = 0; r < w.rows; ++r) {
      double s = 0;
      for (int64_t b = 0; b < blocks; ++b) {
        int64_t isum = 0;
        for (int64_t c = b * kQuantBlock; c < (b + 1) * kQuantBlock; ++c)
          isum += WeightCode(w, r, c) * q.code[c];
        const float scale = q.dx[b] * Half(WeightScale(w, r, b));
        s += static_cast<double>(isum) * scale;
      }
      y[t * w.rows + r] = static_cast<float>(bias ? s + bias[r] : s);
    }
  }
}

}  // namespace r1
