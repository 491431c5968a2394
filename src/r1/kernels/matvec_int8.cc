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
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define R1_TARGET_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c,gfni")))
#endif

namespace r1 {

namespace {

constexpr int64_t kGroup = 2 * kQuantBlock;   // 64 elements: one zmm of Q8 codes
constexpr int64_t kChunk4 = 4 * kQuantBlock;  // 128 elements: one zmm of Q4 nibbles
// Software prefetch distance along the weights. A group's tiles are contiguous, so this runs
// ahead of the hardware prefetchers, which stop at 4 KiB pages: without it two threads read
// DRAM at 27-29 GB/s, with it 48-53 (8 KiB: 39-45; 4-32 KiB measured, docs/performance.md).
constexpr int64_t kPrefetchBytes = 16384;

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
  const int64_t j = c - run.c0;
  if (w.dtype == DType::kI8) return static_cast<int8_t>(run.codes[j]);
  const uint8_t byte = run.codes[(j / kQuantBlock) * (kQuantBlock / 2) + (j % 16)];
  return (j % kQuantBlock < 16 ? (byte & 15) : (byte >> 4)) - 8;
}
uint16_t WeightScale(const Matrix& w, int64_t r, int64_t b) {
  return w.Run(r, b / kTileBlocks).scales[b % kTileBlocks];
}

}  // namespace

void SetInt8Activations(bool on) { Enabled() = on; }
bool Int8ActivationsEnabled() { return Enabled(); }

bool Int8MatVecApplies(const Matrix& w) {
  return w.quantized() && w.data && w.cols > 0 && w.cols % kGroup == 0 && CpuHasAvx512Vnni();
}

namespace {

// Sizes the buffers; returns the number of 128-element Q4 chunks.
int64_t PrepareActivations(int64_t cols, Int8Activations& o) {
  if (cols % kGroup) throw Error("QuantizeActivations: row length must be a multiple of 64");
  const int64_t chunks4 = (cols + kChunk4 - 1) / kChunk4;
  o.cols = cols;
  o.code.resize(cols);
  o.dx.resize(cols / kQuantBlock);
  o.q8_bias.resize(cols / kGroup * 16);
  o.q4_code.resize(chunks4 * kChunk4);
  o.q4_bias.resize(chunks4 * 16);
  // A last chunk of 64 elements multiplies zeros in its upper half.
  if (cols % kChunk4) std::memset(o.q4_code.data() + (chunks4 - 1) * kChunk4, 0, kChunk4);
  return chunks4;
}

void QuantizeActivationsScalar(const float* x, int64_t cols, Int8Activations& o) {
  const int64_t chunks4 = PrepareActivations(cols, o), blocks = cols / kQuantBlock;
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
    o.dx[b] = d;
    int8_t* lo = o.q4_code.data() + (b / 4) * kChunk4 + (b % 4) * 16;
    for (int j = 0; j < kQuantBlock; ++j) {
      const int8_t c = static_cast<int8_t>(std::clamp(std::nearbyint(xb[j] * inv), -127.0f, 127.0f));
      o.code[b * kQuantBlock + j] = c;
      lo[j < 16 ? j : 64 + j - 16] = c;
    }
  }
  for (int64_t i = 0; i < cols / kGroup * 16; ++i) {
    int sum = 0;
    for (int k = 0; k < 4; ++k) sum += o.code[4 * i + k];
    o.q8_bias[i] = -128 * sum;
  }
  for (int64_t g = 0; g < chunks4; ++g) {
    const int8_t* c = o.q4_code.data() + g * kChunk4;
    for (int lane = 0; lane < 16; ++lane) {
      int sum = 0;
      for (int k = 0; k < 4; ++k) sum += c[4 * lane + k] + c[64 + 4 * lane + k];
      o.q4_bias[g * 16 + lane] = -8 * sum;
    }
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
  const int64_t chunks4 = PrepareActivations(cols, o), blocks = cols / kQuantBlock;
  const __m512i lo_clamp = _mm512_set1_epi32(-127), hi_clamp = _mm512_set1_epi32(127);
  for (int64_t b = 0; b < blocks; ++b) {
    const __m512 a = _mm512_loadu_ps(x + b * kQuantBlock);
    const __m512 c = _mm512_loadu_ps(x + b * kQuantBlock + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(a), _mm512_abs_ps(c)));
    const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
    o.dx[b] = d;
    const __m512 vi = _mm512_set1_ps(inv);
    const __m512i ia = _mm512_cvtps_epi32(_mm512_mul_ps(a, vi));
    const __m512i ic = _mm512_cvtps_epi32(_mm512_mul_ps(c, vi));
    const __m128i ba = _mm512_cvtepi32_epi8(_mm512_max_epi32(_mm512_min_epi32(ia, hi_clamp), lo_clamp));
    const __m128i bc = _mm512_cvtepi32_epi8(_mm512_max_epi32(_mm512_min_epi32(ic, hi_clamp), lo_clamp));
    int8_t* code = o.code.data() + b * kQuantBlock;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(code), ba);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(code + 16), bc);
    int8_t* q4 = o.q4_code.data() + (b / 4) * kChunk4 + (b % 4) * 16;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q4), ba);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q4 + 64), bc);
  }
  // Lane sums of 4 codes: vpdpbusd with unsigned ones.
  const __m512i ones = _mm512_set1_epi8(1), zero = _mm512_setzero_si512();
  for (int64_t g = 0; g < cols / kGroup; ++g) {
    const __m512i s = _mm512_dpbusd_epi32(zero, ones, _mm512_loadu_si512(o.code.data() + g * kGroup));
    _mm512_storeu_si512(o.q8_bias.data() + g * 16, _mm512_sub_epi32(zero, _mm512_slli_epi32(s, 7)));
  }
  for (int64_t g = 0; g < chunks4; ++g) {
    const int8_t* c = o.q4_code.data() + g * kChunk4;
    __m512i s = _mm512_dpbusd_epi32(zero, ones, _mm512_loadu_si512(c));
    s = _mm512_dpbusd_epi32(s, ones, _mm512_loadu_si512(c + 64));
    _mm512_storeu_si512(o.q4_bias.data() + g * 16, _mm512_sub_epi32(zero, _mm512_slli_epi32(s, 3)));
  }
}

// permutexvar indices spreading 16 block scales over the lanes of each chunk of a run of 16
// blocks: Q8 chunk c (64 elements) has block 2c in lanes 0-7 and 2c+1 in 8-15; Q4 chunk c (128
// elements) has block 4c + l/4 in lane l.
struct ScaleIndex {
  __m512i q8[8], q4[4];
  R1_TARGET_VNNI ScaleIndex() {
    for (int c = 0; c < 8; ++c) {
      alignas(64) int32_t a[16];
      for (int lane = 0; lane < 16; ++lane) a[lane] = 2 * c + lane / 8;
      q8[c] = _mm512_load_si512(a);
    }
    for (int c = 0; c < 4; ++c) {
      alignas(64) int32_t a[16];
      for (int lane = 0; lane < 16; ++lane) a[lane] = 4 * c + lane / 4;
      q4[c] = _mm512_load_si512(a);
    }
  }
};

// One Q4 chunk (128 elements, or 64 when kHalf) of R rows `rb` bytes apart, at `row`; xc and
// xb point at the activations' chunk; the rows' spread scales in s.
template <int R, bool kGfni, bool kHalf>
R1_TARGET_VNNI __attribute__((always_inline)) inline void ChunkQ4(
    const uint8_t* row, int64_t rb, const int8_t* xc, const int32_t* xb, __m512i index,
    const __m512* s, __m512* acc) {
  const __m512i nib = _mm512_set1_epi8(15);
  const __m512i xlo = _mm512_loadu_si512(xc);
  const __m512i xhi = _mm512_loadu_si512(xc + 64);
  const __m512i bias = _mm512_loadu_si512(xb);
  for (int i = 0; i < R; ++i) {
    const uint8_t* p = row + i * rb;
    if (kPrefetchBytes) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
    __m512i v;
    if constexpr (kHalf)
      v = _mm512_zextsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    else
      v = _mm512_loadu_si512(p);
    const __m512i lo = _mm512_and_si512(v, nib);
    __m512i hi;
    if constexpr (kGfni)  // each byte's bits 4-7 moved to bits 0-3, bits 4-7 cleared
      hi = _mm512_gf2p8affine_epi64_epi8(v, _mm512_set1_epi64(0x1020408000000000), 0);
    else
      hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), nib);
    __m512i d = _mm512_dpbusd_epi32(bias, lo, xlo);
    d = _mm512_dpbusd_epi32(d, hi, xhi);
    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(index, s[i]), acc[i]);
  }
}

// One Q8 chunk (64 elements) of R rows, as ChunkQ4: weight code + 128 (the sign bit flipped)
// as the unsigned operand.
template <int R>
R1_TARGET_VNNI __attribute__((always_inline)) inline void ChunkQ8(
    const uint8_t* row, int64_t rb, const int8_t* xc, const int32_t* xb, __m512i index,
    const __m512* s, __m512* acc) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const __m512i xv = _mm512_loadu_si512(xc);
  const __m512i bias = _mm512_loadu_si512(xb);
  for (int i = 0; i < R; ++i) {
    const uint8_t* p = row + i * rb;
    if (kPrefetchBytes) _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
    const __m512i v = _mm512_xor_si512(_mm512_loadu_si512(p), flip);
    const __m512i d = _mm512_dpbusd_epi32(bias, v, xv);
    acc[i] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(index, s[i]), acc[i]);
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

// s[i] = the token's scales xd[0 .. nb) (nb <= 16) times row i's F16 scales qs[i * kTileBlocks
// + 0 .. nb), one lane per block.
template <int R>
R1_TARGET_VNNI R1_INLINE void RowScales(const float* xd, const uint16_t* qs, int64_t nb,
                                        __m512 (&s)[R]) {
  const __mmask16 m = static_cast<__mmask16>(nb >= 16 ? 0xffff : (1u << nb) - 1);
  const __m512 d = _mm512_maskz_loadu_ps(m, xd);
  for (int i = 0; i < R; ++i)
    s[i] = _mm512_mul_ps(d, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, qs + i * kTileBlocks)));
}

// Rows r .. r+R-1 (one tile group) against one token, lane i of the result row r+i's dot product
// (no bias). Each tile's scales are multiplied by the token's block scales once; each chunk then
// adds (int32 block sums) x (spread scales) into one float accumulator per row, with the
// activation codes and biases loaded once for all R rows. The rows' codes in a tile are
// contiguous, so the group's tiles are one sequential stream.
template <int R, bool kGfni>
R1_TARGET_VNNI __m128 DotsQ4(const Matrix& w, int64_t r, const Int8Activations& x,
                             const ScaleIndex& idx) {
  const int8_t* xc = x.q4_code.data();
  const int32_t* xb = x.q4_bias.data();
  const float* xd = x.dx.data();
  __m512 acc[R], s[R];
  for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < w.qruns(); ++k) {
    const QuantRun run = w.Run(r, k);
    const int64_t chunk0 = k * kTileBlocks / 4;  // the run's first 128-element chunk
    RowScales<R>(xd + k * kTileBlocks, run.scales, run.nb, s);
    auto chunk = [&](int c, auto half) R1_TARGET_VNNI {
      ChunkQ4<R, kGfni, decltype(half)::value>(run.codes + c * 64, run.code_stride,
                                               xc + (chunk0 + c) * kChunk4,
                                               xb + (chunk0 + c) * 16, idx.q4[c], s, acc);
    };
    if (run.nb == kTileBlocks) {
#pragma GCC unroll 4
      for (int c = 0; c < 4; ++c) chunk(c, std::false_type{});
    } else {  // 2 to 14 blocks: whole chunks, then maybe one of 64 elements
      int c = 0;
      for (; 4 * (c + 1) <= run.nb; ++c) chunk(c, std::false_type{});
      if (4 * c < run.nb) chunk(c, std::true_type{});
    }
  }
  return SumLanes<R>(acc);
}

template <int R>
R1_TARGET_VNNI __m128 DotsQ8(const Matrix& w, int64_t r, const Int8Activations& x,
                             const ScaleIndex& idx) {
  const int8_t* xc = x.code.data();
  const int32_t* xb = x.q8_bias.data();
  const float* xd = x.dx.data();
  __m512 acc[R], s[R];
  for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_ps();
  for (int64_t k = 0; k < w.qruns(); ++k) {
    const QuantRun run = w.Run(r, k);
    const int64_t chunk0 = k * kTileBlocks / 2;  // the run's first 64-element chunk
    RowScales<R>(xd + k * kTileBlocks, run.scales, run.nb, s);
    auto chunk = [&](int c) R1_TARGET_VNNI {
      ChunkQ8<R>(run.codes + c * kGroup, run.code_stride, xc + (chunk0 + c) * kGroup,
                 xb + (chunk0 + c) * 16, idx.q8[c], s, acc);
    };
    if (run.nb == kTileBlocks) {
#pragma GCC unroll 8
      for (int c = 0; c < 8; ++c) chunk(c);
    } else {  // 2 to 14 blocks: whole chunks of 64 elements
      for (int c = 0; 2 * c < run.nb; ++c) chunk(c);
    }
  }
  return SumLanes<R>(acc);
}

template <int R>
R1_TARGET_VNNI void RowGroup(const Matrix& w, int64_t r, const Int8Activations* x, int64_t n,
                             float* y, int64_t y_stride, const float* bias, const ScaleIndex& idx) {
  const __mmask8 m = static_cast<__mmask8>((1u << R) - 1);
  const __m128 b = bias ? _mm_maskz_loadu_ps(m, bias + r) : _mm_setzero_ps();
  const bool q4 = w.dtype == DType::kU8, gfni = CpuHasGfni();
  for (int64_t t = 0; t < n; ++t) {
    const __m128 v = q4 ? (gfni ? DotsQ4<R, true>(w, r, x[t], idx) : DotsQ4<R, false>(w, r, x[t], idx))
                        : DotsQ8<R>(w, r, x[t], idx);
    _mm_mask_storeu_ps(y + t * y_stride + r, m, _mm_add_ps(v, b));
  }
}

R1_TARGET_VNNI void RowsVnni(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x,
                             int64_t n, float* y, int64_t y_stride, const float* bias) {
  static const ScaleIndex idx;
  static_assert(kTileRows == 4, "RowGroup below covers 1 .. 4 rows of a group");
  for (int64_t r = r0; r < r1;) {
    // The rows of one tile group from r on (a range may start or end inside a group).
    const int64_t rows = std::min<int64_t>(kTileRows - r % kTileRows, r1 - r);
    switch (rows) {
      case 4: RowGroup<4>(w, r, x, n, y, y_stride, bias, idx); break;
      case 3: RowGroup<3>(w, r, x, n, y, y_stride, bias, idx); break;
      case 2: RowGroup<2>(w, r, x, n, y, y_stride, bias, idx); break;
      default: RowGroup<1>(w, r, x, n, y, y_stride, bias, idx); break;
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
#endif
  QuantizeActivationsScalar(x, cols, o);
}

void Int8MatVecRows(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x, int64_t n,
                    float* y, int64_t y_stride, const float* bias) {
#if defined(__x86_64__)
  if (Int8MatVecApplies(w)) return RowsVnni(w, r0, r1, x, n, y, y_stride, bias);
#endif
  throw Error(w.name + ": the int8 activation path needs AVX512-VNNI and rows of 64k elements");
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
