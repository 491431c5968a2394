#include "r1/kernels/gemm_int8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/core/scratch.h"
#include "r1/kernels/gemm_panels.h"
#include "r1/kernels/matvec_int8_internal.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1 {

namespace {

constexpr int kQuads = kQuantBlock / 4;              // 4-code groups per block
// One block of a repacked panel: Q8 one byte per code; Q4 keeps two codes per byte (quad q in the
// low nibbles, quad q + 4 in the high ones), unpacked by the tile. Unpacked, a Q4 panel of a
// 2048-column expert (64 KiB) spilled from L1 and its repack stored twice the bytes.
constexpr int kPanelBlockBytesQ8 = kQuads * kPanelRows * 4;
constexpr int kPanelBlockBytesQ4 = kPanelBlockBytesQ8 / 2;
inline int64_t PanelBlockBytes(DType dtype) {
  return dtype == DType::kU8 ? kPanelBlockBytesQ4 : kPanelBlockBytesQ8;
}

using int8_detail::QuantizedTokens;

}  // namespace

bool Int8GemmApplies(const Matrix& w) {
  return w.quantized() && w.data && w.cols > 0 && w.cols % kQuantBlock == 0 &&
         (CpuHasAvx512Vnni() || DetectIsa() >= IsaLevel::kAvx2);
}

#if defined(__x86_64__)
// GCC 12's AVX-512 headers initialize `_mm512_undefined_*` from themselves, which its own
// -Wmaybe-uninitialized reports at every inlined use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {

R1_TARGET_AVX512_VNNI void QuantizeToken(const float* x, int64_t blocks, int32_t offset,
                                         int8_t* code, float* dx, int32_t* corr) {
  const __m512 sign = _mm512_set1_ps(-0.0f);
  const __m512i lo = _mm512_set1_epi32(-127), hi = _mm512_set1_epi32(127);
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512 v0 = _mm512_loadu_ps(x + b * kQuantBlock);
    const __m512 v1 = _mm512_loadu_ps(x + b * kQuantBlock + 16);
    const float amax = _mm512_reduce_max_ps(
        _mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
    const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
    // Round to nearest even (the default mode), as std::nearbyint in the reference.
    const __m512 s = _mm512_set1_ps(inv);
    const __m512i q0 = _mm512_min_epi32(hi, _mm512_max_epi32(lo, _mm512_cvtps_epi32(_mm512_mul_ps(v0, s))));
    const __m512i q1 = _mm512_min_epi32(hi, _mm512_max_epi32(lo, _mm512_cvtps_epi32(_mm512_mul_ps(v1, s))));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(code + b * kQuantBlock), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(code + b * kQuantBlock + 16),
                     _mm512_cvtepi32_epi8(q1));
    dx[b] = d;
    corr[b] = -offset * _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
  }
}

// The same on AVX2, for the kernels of gemm_int8_avx2.cc.
R1_TARGET_AVX2 void QuantizeTokenAvx2(const float* x, int64_t blocks, int32_t offset, int8_t* code,
                                      float* dx, int32_t* corr) {
  for (int64_t b = 0; b < blocks; ++b) {
    int sum;
    dx[b] = int8_detail::QuantizeBlockAvx2(x + b * kQuantBlock, code + b * kQuantBlock, &sum);
    corr[b] = -offset * sum;
  }
}

// Rows [r0, r0 + valid) of W as unsigned codes (Q8: code + 128, Q4: the stored nibble, i.e.
// value + 8) in `vpdpbusd` order: Q8 block b, quad q, row i at byte b*1024 + q*128 + i*4 holds
// codes 4q..4q+3 of row i's block b; Q4 the same at b*512 + q*128 + i*4 for quads 0-3, each
// byte's high nibble the code of quad q + 4 (the stored bytes as they are); dw[b*32 + i] is row
// i's scale of block b. Rows past `valid` get zero codes and zero scales. Each group of 16 rows
// is read one word of each of a run's blocks (64 bytes) per row at a time and transposed in
// registers (16-row gathers took 20-40% of a prefill's product time; experts with few tokens
// each spent most of theirs there).
R1_TARGET_AVX512_VNNI void RepackPanel(const Matrix& w, int64_t r0, int valid, uint8_t* panel,
                                       float* dw) {
  const bool q8 = w.dtype == DType::kI8;
  const int64_t block_bytes = QuantBlockBytes(w.dtype);
  const int64_t block_words = block_bytes / 4;
  const __m512i flip = _mm512_set1_epi32(static_cast<int>(0x80808080u));
  const int64_t panel_block = PanelBlockBytes(w.dtype);
  for (int half = 0; half < 2; ++half) {
    const int first = 16 * half;
    const int rows_here = std::clamp(valid - first, 0, 16);
    const __mmask16 live = static_cast<__mmask16>((1u << rows_here) - 1);
    for (int64_t k = 0; k < w.qruns(); ++k) {
      // Rows past `valid` (a whole half may be) are not read: they get zero codes and scales.
      const QuantRun run = w.Run(r0, k);
      const QuantRunRows16 rows = RunRows16(w, r0 + first, rows_here, k);
      const int64_t b_run = k * kTileBlocks;
      // Word q of the run's blocks 0 .. nb-1 is one contiguous read per row (matrix.h).
      for (int64_t q = 0; q < block_words; ++q) {
        __m512i v[16];
        LoadRows16(rows.codes, run.code_stride, q * run.nb * 4, rows_here,
                   static_cast<int>(run.nb), v);
        Transpose16x16(v);
        for (int64_t b = 0; b < run.nb; ++b) {
          uint8_t* dst = panel + (b_run + b) * panel_block + first * 4;
          // Padding rows stay zero: their scale is zero and their outputs are never stored.
          _mm512_storeu_si512(dst + q * 128, q8 ? _mm512_maskz_xor_epi32(live, v[b], flip) : v[b]);
        }
      }
      // Scales: the run's (up to 16) blocks of 16 rows in one transpose.
      __m512i v[16];
      RunScales16(rows, rows_here, run.nb, v);
      for (int64_t j = 0; j < run.nb; ++j)
        _mm512_storeu_si512(dw + (b_run + j) * kPanelRows + first, v[j]);
    }
  }
}

// A 32-row x T-token tile over every block: per block, 8 `vpdpbusd` per row vector and token
// give the exact int32 sums, then one conversion and one multiply-add by w_scale x x_scale.
// Q4 panels hold two quads per byte, split into nibbles once per load for all T tokens.
template <int T, bool kQ4>
R1_TARGET_AVX512_VNNI void Tile(const uint8_t* panel, const float* dw, const QuantizedTokens& q,
                                int64_t t0, int valid, float* y, int64_t y_stride,
                                const float* bias) {
  const int64_t blocks = q.blocks, cols = q.cols;
  __m512 f0[T], f1[T];
  for (int t = 0; t < T; ++t) f0[t] = f1[t] = _mm512_setzero_ps();
  const int8_t* xs = q.code.data() + t0 * cols;
  const float* dx = q.dx.data() + t0 * blocks;
  const int32_t* corr = q.corr.data() + t0 * blocks;
  for (int64_t b = 0; b < blocks; ++b) {
    __m512i a0[T], a1[T];
    for (int t = 0; t < T; ++t) a0[t] = a1[t] = _mm512_set1_epi32(corr[t * blocks + b]);
    const int8_t* xb = xs + b * kQuantBlock;
    auto quad = [&](int k, __m512i w0, __m512i w1) R1_TARGET_AVX512_VNNI {
      for (int t = 0; t < T; ++t) {
        int32_t four;
        std::memcpy(&four, xb + t * cols + 4 * k, 4);
        const __m512i xv = _mm512_set1_epi32(four);
        a0[t] = _mm512_dpbusd_epi32(a0[t], w0, xv);
        a1[t] = _mm512_dpbusd_epi32(a1[t], w1, xv);
      }
    };
    if constexpr (kQ4) {
      const __m512i nibble = _mm512_set1_epi32(0x0f0f0f0f);
      const uint8_t* wb = panel + b * kPanelBlockBytesQ4;
      for (int k = 0; k < kQuads / 2; ++k) {
        const __m512i p0 = _mm512_loadu_si512(wb + k * 128);
        const __m512i p1 = _mm512_loadu_si512(wb + k * 128 + 64);
        quad(k, _mm512_and_si512(p0, nibble), _mm512_and_si512(p1, nibble));
        quad(k + kQuads / 2, _mm512_and_si512(_mm512_srli_epi32(p0, 4), nibble),
             _mm512_and_si512(_mm512_srli_epi32(p1, 4), nibble));
      }
    } else {
      const uint8_t* wb = panel + b * kPanelBlockBytesQ8;
      for (int k = 0; k < kQuads; ++k)
        quad(k, _mm512_loadu_si512(wb + k * 128), _mm512_loadu_si512(wb + k * 128 + 64));
    }
    const __m512 s0 = _mm512_loadu_ps(dw + b * kPanelRows);
    const __m512 s1 = _mm512_loadu_ps(dw + b * kPanelRows + 16);
    for (int t = 0; t < T; ++t) {
      const __m512 d = _mm512_set1_ps(dx[t * blocks + b]);
      f0[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a0[t]), _mm512_mul_ps(s0, d), f0[t]);
      f1[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a1[t]), _mm512_mul_ps(s1, d), f1[t]);
    }
  }
  StorePanelTile<T>(f0, f1, valid, bias, y, y_stride, t0);
}

// The source bytes of the panel after this one (its tile groups are next in memory, and a thread's
// panels are consecutive), fetched into L2 a slice per token tile while this panel's tiles
// compute, so its repack finds them there instead of stalling on DRAM line after line: a
// V2-Lite Q4 prefill's repacks were a third of its product time, and this made the prefill
// 4-5% faster (dense shapes' 512 tokens hide the reads already and did not change). The BF16 GEMM
// measured no gain from it: its panels' rows are contiguous 4 KiB runs the hardware follows.
struct NextPanelPrefetch {
  const char* bytes = nullptr;
  int64_t lines = 0, per_step = 0, done = 0;
  NextPanelPrefetch(const Matrix& w, int64_t r0, int64_t n) {
    const int64_t next = r0 + kPanelRows;
    if (next >= w.rows) return;
    const int64_t group = QuantGroupBytes(w.dtype, w.cols);
    const int64_t groups = (std::min<int64_t>(kPanelRows, w.rows - next) + kTileRows - 1) / kTileRows;
    bytes = reinterpret_cast<const char*>(w.data + next / kTileRows * group);
    lines = (groups * group + 63) / 64;
    const int64_t steps = (n + kPanelTileTokens - 1) / kPanelTileTokens;
    per_step = (lines + steps - 1) / steps;
  }
  R1_INLINE void Step() {
    const int64_t end = std::min(lines, done + per_step);
    for (; done < end; ++done) _mm_prefetch(bytes + done * 64, _MM_HINT_T1);
  }
};

}  // namespace
#pragma GCC diagnostic pop
#endif

void Int8Gemm(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
              int64_t y_stride, const float* bias, ThreadPool& pool) {
  if (!Int8GemmApplies(w))
    throw Error(w.name + ": the int8 GEMM needs Q8/Q4 weights, rows of whole blocks of 32 and "
                         "AVX2");
#if defined(__x86_64__)
  if (n <= 0 || w.rows <= 0) return;
  thread_local QuantizedTokens q;
  q.cols = w.cols;
  q.blocks = w.qblocks();
  GrowScratch(q.code, n * q.cols);
  GrowScratch(q.dx, n * q.blocks);
  GrowScratch(q.corr, n * q.blocks);
  const int32_t offset = w.dtype == DType::kI8 ? 128 : 8;
  QuantizedTokens* qp = &q;  // the workers read the calling thread's copy
  const bool vnni512 = CpuHasAvx512Vnni();
  const auto quantize = vnni512 ? QuantizeToken : QuantizeTokenAvx2;
  pool.ParallelFor(n, 8, [&, qp](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t)
      quantize(x + t * x_stride, qp->blocks, offset, qp->code.data() + t * qp->cols,
                    qp->dx.data() + t * qp->blocks, qp->corr.data() + t * qp->blocks);
  });
  if (!vnni512) return int8_detail::Int8GemmAvx2(w, q, n, y, y_stride, bias, pool);
  ForEachPanel(w.rows, pool, [&, qp](int64_t r0, int valid) {
    thread_local std::vector<uint8_t> panel;
    thread_local std::vector<float> dw;
    GrowScratch(panel, qp->blocks * PanelBlockBytes(w.dtype));
    GrowScratch(dw, qp->blocks * kPanelRows);
    RepackPanel(w, r0, valid, panel.data(), dw.data());
    const bool q4 = w.dtype == DType::kU8;
    NextPanelPrefetch next(w, r0, n);
    ForEachTokenTile(n, [&](auto tokens, int64_t t0) {
      constexpr int kT = decltype(tokens)::value;
      next.Step();
      float* out = y + r0;
      const float* b = bias ? bias + r0 : nullptr;
      if (q4)
        Tile<kT, true>(panel.data(), dw.data(), *qp, t0, valid, out, y_stride, b);
      else
        Tile<kT, false>(panel.data(), dw.data(), *qp, t0, valid, out, y_stride, b);
    });
  });
#else
  (void)x, (void)x_stride, (void)y, (void)y_stride, (void)bias, (void)pool;
#endif
}

}  // namespace r1
