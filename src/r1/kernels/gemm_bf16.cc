#include "r1/kernels/gemm_bf16.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "r1/core/dtype.h"
#include "r1/core/scratch.h"
#include "r1/core/error.h"
#include "r1/kernels/amx.h"
#include "r1/kernels/gemm_bf16_internal.h"
#include "r1/kernels/gemm_panels.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1 {

using bf16_detail::kPairBytes;
#if defined(__x86_64__)
using bf16_detail::RepackPanel;
using bf16_detail::WidenBf16;
#endif

namespace {


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

}  // namespace
#pragma GCC diagnostic pop

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace bf16_detail {

namespace {

// Two columns' values of 16 rows as BF16 pairs, row i's in lane i: bf16(a[i]) | bf16(b[i]) << 16,
// rounded to nearest even.
R1_TARGET_AVX512_BF16 R1_INLINE __m512i PairOfRows(__m512 a, __m512 b) {
  static constexpr auto kInterleave = [] {
    std::array<uint16_t, 32> idx{};
    for (int i = 0; i < 16; ++i) {
      idx[2 * i] = static_cast<uint16_t>(i);
      idx[2 * i + 1] = static_cast<uint16_t>(16 + i);
    }
    return idx;
  }();
  const __m512i order = _mm512_loadu_si512(kInterleave.data());
  return _mm512_permutexvar_epi16(order, reinterpret_cast<__m512i>(_mm512_cvtne2ps_pbh(b, a)));
}

// RepackPanel of a Q8/Q4 matrix (whole blocks of 32 columns; p0 and p1 at whole tile runs or the
// row's end), straight from the tiles: word q of a run's blocks is read for 16 rows at a time and
// transposed, as the int8 GEMM's repack does, so each block's word of 4 codes (Q4: 8) for 16 rows
// sits in one vector; its codes times the rows' scales in float32 (one rounding, as DequantRow and
// the reference) become pairs of BF16 columns, which are the panel's layout already. Through
// DequantRow's float32 rows and a second transpose the repack took 11.5% of a Q8 prefill.
R1_TARGET_AVX512_BF16 void RepackQuantizedPanel(const Matrix& w, int64_t r0, int valid,
                                                uint8_t* panel, int64_t p0, int64_t p1) {
  constexpr int64_t kRunPairs = kTileBlocks * kQuantBlock / 2;
  const bool q8 = w.dtype == DType::kI8;
  const int words = static_cast<int>(QuantBlockBytes(w.dtype) / 4);
  const __m512i nibble = _mm512_set1_epi32(15), eight = _mm512_set1_epi32(8);
  for (int half = 0; half < 2; ++half) {
    const int first = 16 * half;
    const int rows_here = std::clamp(valid - first, 0, 16);
    for (int64_t k = p0 / kRunPairs; k * kRunPairs < p1; ++k) {
      const QuantRun run = w.Run(r0, k);
      const QuantRunRows16 rows = RunRows16(w, r0 + first, rows_here, k);
      __m512i sv[16];  // sv[b] lane i: row i's scale of block b
      RunScales16(rows, rows_here, run.nb, sv);
      uint8_t* out = panel + (k * kRunPairs - p0) * kPairBytes + first * 4;
      for (int q = 0; q < words; ++q) {
        __m512i v[16];
        LoadRows16(rows.codes, run.code_stride, q * run.nb * 4, rows_here,
                   static_cast<int>(run.nb), v);
        Transpose16x16(v);
        for (int64_t b = 0; b < run.nb; ++b) {
          const __m512 scale = _mm512_castsi512_ps(sv[b]);
          uint8_t* block = out + b * 16 * kPairBytes;
          if (q8) {
            // Bytes 0-3 of the word are columns 4q .. 4q+3 of the block, signed.
            __m512 e[4];
            for (int j = 0; j < 4; ++j)
              e[j] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srai_epi32(
                                       _mm512_slli_epi32(v[b], 24 - 8 * j), 24)),
                                   scale);
            _mm512_storeu_si512(block + (2 * q) * kPairBytes, PairOfRows(e[0], e[1]));
            _mm512_storeu_si512(block + (2 * q + 1) * kPairBytes, PairOfRows(e[2], e[3]));
          } else {
            // Nibble j: byte j / 2 of the word, low (column 4q + j / 2) or high (16 + 4q + j / 2),
            // holding code + 8.
            __m512 e[8];
            for (int j = 0; j < 8; ++j)
              e[j] = _mm512_mul_ps(
                  _mm512_cvtepi32_ps(_mm512_sub_epi32(
                      _mm512_and_si512(_mm512_srli_epi32(v[b], 4 * j), nibble), eight)),
                  scale);
            _mm512_storeu_si512(block + (2 * q) * kPairBytes, PairOfRows(e[0], e[2]));
            _mm512_storeu_si512(block + (2 * q + 1) * kPairBytes, PairOfRows(e[4], e[6]));
            _mm512_storeu_si512(block + (8 + 2 * q) * kPairBytes, PairOfRows(e[1], e[3]));
            _mm512_storeu_si512(block + (9 + 2 * q) * kPairBytes, PairOfRows(e[5], e[7]));
          }
        }
      }
    }
  }
}

}  // namespace

// Rows [r0, r0 + valid) of W: pair p of row i at byte p*128 + i*4 (columns 2p and 2p+1). Rows
// past `valid` are zero. Each group of 16 rows is read 16 pairs (64 bytes) per row at a time.
// Pairs [p0, p1) only (p0 a multiple of 16) with pair p0 at the start of `panel`: the AMX kernel
// repacks long rows a chunk at a time. Q8/Q4 rows go through float32 (RepackQuantizedPanel).
R1_TARGET_AVX512_BF16 void RepackPanel(const Matrix& w, int64_t r0, int valid, uint8_t* panel,
                                       int64_t p0, int64_t p1) {
  const int64_t row_bytes = w.cols * 2;
  if (p1 < 0) p1 = w.cols / 2;
  if (w.quantized()) return RepackQuantizedPanel(w, r0, valid, panel, p0, p1);
  for (int half = 0; half < 2; ++half) {
    const int first = 16 * half;
    const int rows_here = std::clamp(valid - first, 0, 16);
    const uint8_t* base = w.data + (r0 + first) * row_bytes;
    for (int64_t p = p0; p < p1; p += 16) {
      const int64_t np = std::min<int64_t>(16, p1 - p);
      __m512i v[16];
      LoadRows16(base, row_bytes, p * 4, rows_here, static_cast<int>(np), v);
      Transpose16x16(v);
      for (int64_t j = 0; j < np; ++j)
        _mm512_storeu_si512(panel + (p - p0 + j) * kPairBytes + first * 4, v[j]);
    }
  }
}

}  // namespace bf16_detail
#pragma GCC diagnostic pop
#endif

void Bf16Gemm(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
              int64_t y_stride, const float* bias, ThreadPool& pool) {
  if (!Bf16GemmApplies(w))
    throw Error(w.name + ": the BF16 GEMM needs BF16 weights, an even row length and "
                         "AVX512-BF16");
#if defined(__x86_64__)
  if (n <= 0 || w.rows <= 0) return;
  const bool two_terms = !Bf16RoundedActivations() || t_exact_scopes > 0;
  if (AmxEnabled())
    return bf16_detail::Bf16GemmAmx(w, x, x_stride, n, y, y_stride, bias, two_terms, pool);
  thread_local SplitTokens s;
  s.pairs = w.cols / 2;
  s.terms = two_terms ? 2 : 1;
  GrowScratch(s.words, n * s.pairs * s.terms);
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
    GrowScratch(panel, sp->pairs * kPairBytes);
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

bool QuantizedAmxGemmApplies(const Matrix& w) {
  return w.quantized() && w.data && w.cols > 0 && w.cols % kQuantBlock == 0 && AmxEnabled();
}

void QuantizedAmxGemm(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                      int64_t y_stride, const float* bias, ThreadPool& pool) {
  if (!QuantizedAmxGemmApplies(w))
    throw Error(w.name +
                ": the AMX GEMM of Q8/Q4 weights needs whole blocks of 32 columns and AMX");
#if defined(__x86_64__)
  if (n <= 0 || w.rows <= 0) return;
  bf16_detail::Bf16GemmAmx(w, x, x_stride, n, y, y_stride, bias, t_exact_scopes > 0, pool);
#else
  (void)x, (void)x_stride, (void)y, (void)y_stride, (void)bias, (void)pool;
#endif
}

namespace {

// Whether the AMX kernel takes w, and with how many activation terms (as QuantizedAmxGemm and
// Bf16Gemm decide).
bool AmxTakes(const Matrix& w) {
  return QuantizedAmxGemmApplies(w) || (Bf16GemmApplies(w) && AmxEnabled());
}
bool AmxTwoTerms(const Matrix& w) {
  return w.quantized() ? t_exact_scopes > 0 : !Bf16RoundedActivations() || t_exact_scopes > 0;
}

void CheckSwiGlu(const Matrix& gate, const Matrix& up) {
  if (gate.dtype != up.dtype || gate.rows != up.rows || gate.cols != up.cols || !AmxTakes(gate) ||
      !AmxTakes(up))
    throw Error(gate.name + ", " + up.name +
                ": the fused SwiGLU needs two Q8/Q4 or BF16 matrices of one shape, and AMX");
}

}  // namespace

void SwiGluAmx(const Matrix& gate, const Matrix& up, const float* x, int64_t x_stride, int64_t n,
               float* y, int64_t y_stride, ThreadPool& pool) {
  CheckSwiGlu(gate, up);
#if defined(__x86_64__)
  if (n <= 0 || gate.rows <= 0) return;
  bf16_detail::Bf16GemmAmx(gate, x, x_stride, n, y, y_stride, nullptr, AmxTwoTerms(gate), pool,
                           &up);
#else
  (void)x, (void)x_stride, (void)y, (void)y_stride, (void)pool;
#endif
}

void SwiGluMlpAmx(const Matrix& gate, const Matrix& up, const Matrix& down, const float* x,
                  int64_t x_stride, int64_t n, float* y, int64_t y_stride, ThreadPool& pool) {
  CheckSwiGlu(gate, up);
  if (!AmxTakes(down) || down.cols != gate.rows)
    throw Error(down.name + ": the fused SwiGLU MLP needs a Q8/Q4 or BF16 down projection with " +
                std::to_string(gate.rows) + " columns, and AMX");
#if defined(__x86_64__)
  if (n <= 0 || gate.rows <= 0 || down.rows <= 0) return;
  bf16_detail::SwiGluDownAmx(gate, up, down, x, x_stride, n, AmxTwoTerms(gate), AmxTwoTerms(down),
                             y, y_stride, pool);
#else
  (void)x, (void)x_stride, (void)y, (void)y_stride, (void)pool;
#endif
}

}  // namespace r1
