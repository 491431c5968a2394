#include "r1/kernels/matmul.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <type_traits>
#include <vector>

#include "r1/core/error.h"
#include "r1/core/scratch.h"
#include "r1/kernels/gemm.h"
#include "r1/kernels/gemm_bf16.h"
#include "r1/kernels/gemm_int8.h"
#include "r1/kernels/gemm_panels.h"
#include "r1/kernels/amx.h"
#include "r1/kernels/ops.h"
#include "r1/kernels/matmul_avx2.h"
#include "r1/kernels/matmul_loaders.h"
#include "r1/kernels/matvec_int8.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace r1 {

using namespace matmul_detail;  // the scalar loaders

size_t Matrix::bytes() const {
  if (quantized()) return static_cast<size_t>(QuantGroups(rows)) * QuantGroupBytes(dtype, cols);
  size_t b = static_cast<size_t>(rows) * static_cast<size_t>(row_bytes());
  if (scale) b += static_cast<size_t>((rows + block_rows - 1) / block_rows) * scale_cols() * 4;
  return b;
}

int64_t Matrix::row_bytes() const {
  return quantized() ? 0 : cols * static_cast<int64_t>(DTypeSize(dtype));
}


#if defined(__x86_64__)
namespace {
namespace avx512 {
R1_TARGET_AVX512 bool WidenRange(const Matrix& w, int64_t r, int64_t c0, int64_t c1, float* out);
R1_TARGET_AVX512 void AxpyQuantRows(const Matrix& w, int64_t r0, int64_t r1, const float* a,
                                    float* out);
}  // namespace avx512
}  // namespace
#endif

void Matrix::DequantRow(int64_t r, int64_t c0, int64_t c1, float* out) const {
#if defined(__x86_64__)
  // Vectorized for ranges that start on a block of 32: the absorbed MLA reads kv_b this way
  // every decode step, and the scalar Q8/Q4 decoding below showed up in profiles.
  static const bool avx512 = DetectIsa() == IsaLevel::kAvx512;
  if (avx512 && c0 % kQuantBlock == 0 && c1 - c0 >= 16 && avx512::WidenRange(*this, r, c0, c1, out))
    return;
  static const bool avx2 = DetectIsa() == IsaLevel::kAvx2;
  if (avx2 && c0 % kQuantBlock == 0 && c1 - c0 >= 8 && WidenRangeAvx2(*this, r, c0, c1, out)) return;
#endif
  const size_t base = static_cast<size_t>(r) * cols;
  switch (dtype) {
    case DType::kF32: {
      const float* p = reinterpret_cast<const float*>(data) + base;
      std::memcpy(out, p + c0, (c1 - c0) * sizeof(float));
      return;
    }
    case DType::kBF16: {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(data) + base;
      for (int64_t c = c0; c < c1; ++c) out[c - c0] = Bf16ToF32(p[c]);
      return;
    }
    case DType::kF16: {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(data) + base;
      for (int64_t c = c0; c < c1; ++c) out[c - c0] = F16ToF32(p[c]);
      return;
    }
    case DType::kF8E4M3: {
      const uint8_t* p = data + base;
      const float* srow = scale + (r / block_rows) * scale_cols();
      for (int64_t c = c0; c < c1; ++c) out[c - c0] = Fp8BitsToFloat(p[c]) * srow[c / block_cols];
      return;
    }
    case DType::kI8:
    case DType::kU8:
      for (int64_t k = c0 / (kTileBlocks * kQuantBlock); k < qruns(); ++k) {
        const QuantRun run = Run(r, k);
        if (run.c0 >= c1) break;
        uint8_t codes[kTileBlocks * kQuantBlock];
        UninterleaveRun(run, dtype, codes);
        const int64_t lo = std::max(c0, run.c0), hi = std::min(c1, run.c1);
        for (int64_t c = lo; c < hi; ++c) {
          const int64_t j = c - run.c0;
          const int code = dtype == DType::kI8 ? static_cast<int8_t>(codes[j])
                                               : Q4Code(codes, j);
          out[c - c0] = static_cast<float>(code) * HalfBitsToFloat(run.scales[j / kQuantBlock]);
        }
      }
      return;
    default:
      throw Error(name + ": unsupported weight dtype " + std::string(DTypeName(dtype)));
  }
}

void Matrix::AxpyRow(int64_t r, int64_t c0, int64_t c1, float a, float* out) const {
  if (dtype == DType::kF32) {
    const float* p = reinterpret_cast<const float*>(data) + static_cast<size_t>(r) * cols;
    for (int64_t c = c0; c < c1; ++c) out[c - c0] += a * p[c];
    return;
  }
  float buf[256];
  for (int64_t c = c0; c < c1; c += 256) {
    const int64_t e = std::min(c1, c + 256);
    DequantRow(r, c, e, buf);
    Axpy(a, buf, out + (c - c0), e - c);
  }
}

void Matrix::AxpyRows(int64_t r0, int64_t r1, const float* a, float* out) const {
#if defined(__x86_64__)
  // MLA's absorbed decode runs this over 128 rows of kv_b per head and token; widening each row
  // to a buffer and adding it back cost 3-4% of a V2-Lite Q4 decode.
  static const bool avx512 = DetectIsa() == IsaLevel::kAvx512;
  if (avx512 && quantized()) return avx512::AxpyQuantRows(*this, r0, r1, a, out);
  static const bool avx2 = DetectIsa() == IsaLevel::kAvx2;
  if (avx2 && quantized()) return AxpyQuantRowsAvx2(*this, r0, r1, a, out);
#endif
  for (int64_t r = r0; r < r1; ++r) AxpyRow(r, 0, cols, a[r - r0], out);
}

namespace {

// Accumulates NT dot products of one weight row segment [c0, c1) with NT token rows.
// Lanes: 64 accumulators for one token (enough independent FMA chains to keep up with memory),
// fewer per token when several tokens share each loaded weight.
template <int NT, class Load>
R1_INLINE void DotSegment(const Load& load, int64_t c0, int64_t c1, const float* const* x,
                          float (&acc)[NT][64 / (NT > 2 ? 4 : NT)]) {
  constexpr int kW = 64 / (NT > 2 ? 4 : NT);
  int64_t c = c0;
  for (; c + kW <= c1; c += kW) {
    float w[kW];
    for (int j = 0; j < kW; ++j) w[j] = load(c + j);
    for (int t = 0; t < NT; ++t) {
      const float* xt = x[t] + c;
      for (int j = 0; j < kW; ++j) acc[t][j] += w[j] * xt[j];
    }
  }
  for (; c < c1; ++c) {
    const float wv = load(c);
    for (int t = 0; t < NT; ++t) acc[t][0] += wv * x[t][c];
  }
}

template <int NT>
R1_INLINE void RowsTile(const Matrix& w, int64_t r0, int64_t r1, const float* const* x,
                        float* const* y, const float* bias) {
  constexpr int kW = 64 / (NT > 2 ? 4 : NT);
  const int64_t cols = w.cols;
  for (int64_t r = r0; r < r1; ++r) {
    float acc[NT][kW] = {};
    const size_t base = static_cast<size_t>(r) * cols;
    switch (w.dtype) {
      case DType::kF32:
        DotSegment<NT>(LoadF32{reinterpret_cast<const float*>(w.data) + base}, 0, cols, x, acc);
        break;
      case DType::kBF16:
        DotSegment<NT>(LoadBf16{reinterpret_cast<const uint16_t*>(w.data) + base}, 0, cols, x,
                       acc);
        break;
      case DType::kF16:
        DotSegment<NT>(LoadF16{reinterpret_cast<const uint16_t*>(w.data) + base}, 0, cols, x,
                       acc);
        break;
      case DType::kF8E4M3: {
        const float* srow = w.scale + (r / w.block_rows) * w.scale_cols();
        for (int64_t cb = 0, c0 = 0; c0 < cols; ++cb, c0 += w.block_cols) {
          DotSegment<NT>(LoadFp8{w.data + base, srow[cb]}, c0, std::min(cols, c0 + w.block_cols),
                         x, acc);
        }
        break;
      }
      case DType::kI8:
      case DType::kU8:
        for (int64_t k = 0; k < w.qruns(); ++k) {
          const QuantRun run = w.Run(r, k);
          uint8_t codes[kTileBlocks * kQuantBlock];
          UninterleaveRun(run, w.dtype, codes);
          const float* xs[NT];
          for (int t = 0; t < NT; ++t) xs[t] = x[t] + run.c0;
          if (w.dtype == DType::kI8)
            DotSegment<NT>(LoadQ8{reinterpret_cast<const int8_t*>(codes), run.scales}, 0,
                           run.c1 - run.c0, xs, acc);
          else
            DotSegment<NT>(LoadQ4{codes, run.scales}, 0, run.c1 - run.c0, xs, acc);
        }
        break;
      default:
        break;
    }
    for (int t = 0; t < NT; ++t) {
      float s = 0;
      for (int j = 0; j < kW; ++j) s += acc[t][j];
      y[t][r] = bias ? s + bias[r] : s;
    }
  }
}

// One worker's share: rows [r0, r1) for all tokens. Rows are walked in blocks small enough to stay
// in L2 while every 4-token tile reuses them. `tile(nt_tag, r_begin, r_end, xs, ys)` computes one
// tile with the compile-time token count of `nt_tag`.
template <class Tile>
R1_INLINE void ForEachTile(const Matrix& w, int64_t r0, int64_t r1, const float* x,
                           int64_t x_stride, int64_t n, float* y, int64_t y_stride,
                           const Tile& tile) {
  const int64_t row_bytes = std::max<int64_t>(1, w.row_bytes());
  const int64_t block = std::max<int64_t>(1, (256 << 10) / row_bytes);
  for (int64_t rb = r0; rb < r1; rb += block) {
    const int64_t re = std::min(r1, rb + block);
    for (int64_t t = 0; t < n; t += 4) {
      const int nt = static_cast<int>(std::min<int64_t>(4, n - t));
      const float* xs[4];
      float* ys[4];
      for (int i = 0; i < nt; ++i) {
        xs[i] = x + (t + i) * x_stride;
        ys[i] = y + (t + i) * y_stride;
      }
      switch (nt) {
        case 1: tile(std::integral_constant<int, 1>{}, rb, re, xs, ys); break;
        case 2: tile(std::integral_constant<int, 2>{}, rb, re, xs, ys); break;
        case 3: tile(std::integral_constant<int, 3>{}, rb, re, xs, ys); break;
        default: tile(std::integral_constant<int, 4>{}, rb, re, xs, ys); break;
      }
    }
  }
}

R1_INLINE void RowRange(const Matrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                        int64_t n, float* y, int64_t y_stride, const float* bias) {
  ForEachTile(w, r0, r1, x, x_stride, n, y, y_stride,
              [&](auto nt, int64_t rb, int64_t re, const float* const* xs, float* const* ys) {
                RowsTile<decltype(nt)::value>(w, rb, re, xs, ys, bias);
              });
}

#if defined(__x86_64__)
// GCC 12's own intrinsic headers trip -Wmaybe-uninitialized when inlined at -O3 (their
// "undefined" vectors are self-initialized on purpose).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
// AVX-512 with intrinsics: GCC does not keep the multi-token accumulators of the generic code in
// registers, and gathers BF16/FP8 lanes one by one, so prefill ran at a few percent of peak.
namespace avx512 {

// UninterleaveRun in registers: the run's words q (one per block, nb of them) are the rows of
// a 16x16 transpose whose rows past the block's words are zero, so row b comes out holding
// block b's words in order. For the float-activation products (R1_INT8_ACTIVATIONS=0, AVX-512
// without VNNI), whose block loops want the encoder's order: about 25% faster than the word by
// word copy in Q8, the same in Q4; those products still take 1.4-1.6x their time on the
// block-order tiles (one thread, weights in L2).
R1_TARGET_AVX512 R1_INLINE void UninterleaveRunAvx512(const QuantRun& run, DType dtype,
                                                       uint8_t* out) {
  const int words = static_cast<int>(QuantBlockBytes(dtype) / 4);
  const __mmask16 m = static_cast<__mmask16>(run.nb >= 16 ? 0xffff : (1u << run.nb) - 1);
  __m512i v[16];
  for (int q = 0; q < 16; ++q)
    v[q] = q < words ? _mm512_maskz_loadu_epi32(m, run.codes + q * run.nb * 4) : _mm512_setzero_si512();
  Transpose16x16(v);
  for (int64_t b = 0; b < run.nb; ++b) {
    // 16-byte stores, as the kernels load 16 bytes at a time: a load from inside a wider
    // store waits for it to reach the cache instead of being forwarded.
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + b * words * 4), _mm512_castsi512_si128(v[b]));
    if (words == 8)
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + b * 32 + 16), _mm512_extracti32x4_epi32(v[b], 1));
  }
}


struct F32Row {
  const float* p;
  R1_TARGET_AVX512 R1_INLINE __m512 Load(int64_t c) const { return _mm512_loadu_ps(p + c); }
};
struct Bf16Row {
  const uint16_t* p;
  R1_TARGET_AVX512 R1_INLINE __m512 Load(int64_t c) const {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + c));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};
struct F16Row {
  const uint16_t* p;
  R1_TARGET_AVX512 R1_INLINE __m512 Load(int64_t c) const {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + c)));
  }
};
struct Fp8Row {
  const uint8_t* p;
  float scale;
  R1_TARGET_AVX512 R1_INLINE __m512 Load(int64_t c) const {
    const __m512i b = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + c)));
    const __m512i mag = _mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x7f)), 20);
    const __m512i sign = _mm512_slli_epi32(_mm512_and_si512(b, _mm512_set1_epi32(0x80)), 24);
    const __m512 f = _mm512_castsi512_ps(_mm512_or_si512(mag, sign));
    // Two products, as in the scalar path: the power of two is exact, the scale rounds once.
    return _mm512_mul_ps(_mm512_mul_ps(f, _mm512_set1_ps(1.329227995784916e+36f)),
                         _mm512_set1_ps(scale));
  }
};

R1_TARGET_AVX512 R1_INLINE __m512 BroadcastHalf(uint16_t h) {
  return _mm512_set1_ps(_cvtsh_ss(h));
}
// Q8/Q4: the code times the scale in one float32 product, as DequantRow. Loads start at
// multiples of 16 elements, so a 16-lane vector never straddles two blocks of 32.
struct Q8Row {
  const int8_t* p;
  const uint16_t* qs;
  R1_TARGET_AVX512 R1_INLINE __m512 Load(int64_t c) const {
    const __m512 v = _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + c))));
    return _mm512_mul_ps(v, BroadcastHalf(qs[c / kQuantBlock]));
  }
};
struct Q4Row {
  const uint8_t* p;
  const uint16_t* qs;
  R1_TARGET_AVX512 R1_INLINE __m512 Load(int64_t c) const {
    const int64_t b = c / kQuantBlock;
    const __m512i bytes = _mm512_cvtepu8_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b * (kQuantBlock / 2))));
    const __m512i nib = (c & 16) ? _mm512_srli_epi32(bytes, 4)
                                 : _mm512_and_si512(bytes, _mm512_set1_epi32(15));
    const __m512 v = _mm512_cvtepi32_ps(_mm512_sub_epi32(nib, _mm512_set1_epi32(8)));
    return _mm512_mul_ps(v, BroadcastHalf(qs[b]));
  }
};

// NT tokens x U vectors of 16 lanes per step; the remainder of the segment goes through the
// scalar loader.
// With `ahead`, also prefetches the bytes that many bytes per column past `ahead` (another row
// segment's, see RowsInSegments; or the same row's further on, see AheadSegment) step by step,
// with the prefetch hint kHint.
template <int NT, int U, int kAheadBytes = 0, _mm_hint kHint = _MM_HINT_T0, class Row, class Scalar>
R1_TARGET_AVX512 R1_INLINE void Segment(const Row& row, const Scalar& scalar, int64_t c0,
                                        int64_t c1, const float* const* x, __m512 (&acc)[NT][U],
                                        float (&tail)[NT], const char* ahead = nullptr) {
  int64_t c = c0;
  for (; c + 16 * U <= c1; c += 16 * U) {
    if constexpr (kAheadBytes > 0) {
#pragma GCC unroll 4
      for (int b = 0; b < 16 * U * kAheadBytes; b += 64)
        _mm_prefetch(ahead + (c - c0) * kAheadBytes + b, kHint);
    }
    __m512 w[U];
    for (int u = 0; u < U; ++u) w[u] = row.Load(c + 16 * u);
    for (int t = 0; t < NT; ++t)
      for (int u = 0; u < U; ++u)
        acc[t][u] = _mm512_fmadd_ps(w[u], _mm512_loadu_ps(x[t] + c + 16 * u), acc[t][u]);
  }
  for (; c + 16 <= c1; c += 16) {
    const __m512 w = row.Load(c);
    for (int t = 0; t < NT; ++t)
      acc[t][0] = _mm512_fmadd_ps(w, _mm512_loadu_ps(x[t] + c), acc[t][0]);
  }
  for (; c < c1; ++c) {
    const float wv = scalar(c);
    for (int t = 0; t < NT; ++t) tail[t] += wv * x[t][c];
  }
}

// Q8/Q4 rows: the scale is factored out of each block of 32 (sum code*x over the block, then one
// multiply-add by the scale), and a Q4 block's 16 bytes are loaded and widened once for both of
// its halves; the per-element path spends most of its time on conversions, which bound decode
// below the memory bandwidth. The partial last block goes through the scalar loader.
template <int NT, int U>
R1_TARGET_AVX512 R1_INLINE void Q8Blocks(const int8_t* p, const uint16_t* qs, int64_t cols,
                                         const float* const* x, __m512 (&acc)[NT][U],
                                         float (&tail)[NT]) {
  const int64_t full = cols / kQuantBlock;
  for (int64_t b = 0; b < full; ++b) {
    const int64_t c = b * kQuantBlock;
    const __m512 d = BroadcastHalf(qs[b]);
    const __m512 w0 = _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + c))));
    const __m512 w1 = _mm512_cvtepi32_ps(
        _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + c + 16))));
    for (int t = 0; t < NT; ++t) {
      const __m512 s = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[t] + c + 16),
                                       _mm512_mul_ps(w0, _mm512_loadu_ps(x[t] + c)));
      acc[t][b % U] = _mm512_fmadd_ps(s, d, acc[t][b % U]);
    }
  }
  const LoadQ8 scalar{p, qs};
  for (int64_t c = full * kQuantBlock; c < cols; ++c) {
    const float wv = scalar(c);
    for (int t = 0; t < NT; ++t) tail[t] += wv * x[t][c];
  }
}

template <int NT, int U>
R1_TARGET_AVX512 R1_INLINE void Q4Blocks(const uint8_t* p, const uint16_t* qs, int64_t cols,
                                         const float* const* x, __m512 (&acc)[NT][U],
                                         float (&tail)[NT]) {
  const int64_t full = cols / kQuantBlock;
  const __m512i eight = _mm512_set1_epi32(8), low = _mm512_set1_epi32(15);
  for (int64_t b = 0; b < full; ++b) {
    const int64_t c = b * kQuantBlock;
    const __m512 d = BroadcastHalf(qs[b]);
    const __m512i bytes = _mm512_cvtepu8_epi32(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + b * (kQuantBlock / 2))));
    const __m512 w0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(bytes, low), eight));
    const __m512 w1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(bytes, 4), eight));
    for (int t = 0; t < NT; ++t) {
      const __m512 s = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x[t] + c + 16),
                                       _mm512_mul_ps(w0, _mm512_loadu_ps(x[t] + c)));
      acc[t][b % U] = _mm512_fmadd_ps(s, d, acc[t][b % U]);
    }
  }
  const LoadQ4 scalar{p, qs};
  for (int64_t c = full * kQuantBlock; c < cols; ++c) {
    const float wv = scalar(c);
    for (int t = 0; t < NT; ++t) tail[t] += wv * x[t][c];
  }
}

template <int NT, int U>
R1_TARGET_AVX512 R1_INLINE void RowSegment(const Matrix& w, int64_t r, int64_t c0, int64_t c1,
                                           const float* const* x, const char* ahead,
                                           __m512 (&acc)[NT][U], float (&tail)[NT]) {
  const size_t base = static_cast<size_t>(r) * w.cols;
  switch (w.dtype) {
    case DType::kF32: {
      const float* p = reinterpret_cast<const float*>(w.data) + base;
      Segment<NT, U, 4>(F32Row{p}, LoadF32{p}, c0, c1, x, acc, tail, ahead);
      break;
    }
    case DType::kBF16: {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
      Segment<NT, U, 2>(Bf16Row{p}, LoadBf16{p}, c0, c1, x, acc, tail, ahead);
      break;
    }
    case DType::kF16: {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
      Segment<NT, U, 2>(F16Row{p}, LoadF16{p}, c0, c1, x, acc, tail, ahead);
      break;
    }
    case DType::kF8E4M3: {
      const float* srow = w.scale + (r / w.block_rows) * w.scale_cols();
      const uint8_t* p = w.data + base;
      // Scale blocks of any width (a checkpoint's may not divide the segment).
      for (int64_t b0 = c0, b1; b0 < c1; b0 = b1) {
        b1 = std::min(c1, (b0 / w.block_cols + 1) * w.block_cols);
        const float s = srow[b0 / w.block_cols];
        Segment<NT, U, 1>(Fp8Row{p, s}, LoadFp8{p, s}, b0, b1, x, acc, tail, ahead + (b0 - c0));
      }
      break;
    }
    default:
      throw Error(w.name + ": RowSegment covers the dense formats only");
  }
}

template <int NT>
R1_TARGET_AVX512 void RowsInSegments(const Matrix& w, int64_t r0, int64_t r1,
                                     const float* const* x, float* const* y, const float* bias) {
  constexpr int U = NT == 1 ? 4 : 2;
  const int64_t cols = w.cols, eb = DTypeSize(w.dtype);
  const int64_t segments = (cols + kSegmentColumns - 1) / kSegmentColumns;
  for (int64_t rb = r0; rb < r1; rb += kSegmentRows) {
    const int64_t rows = std::min(kSegmentRows, r1 - rb);
    float sum[kSegmentRows][NT] = {};
    for (int64_t s = 0; s < segments; ++s) {
      const int64_t c0 = s * kSegmentColumns, c1 = std::min(cols, c0 + kSegmentColumns);
      for (int64_t i = 0; i < rows; ++i) {
        const char* ahead = SegmentAhead(w, eb, rb, rows, i, s, segments);
        // The steps below prefetch one line per 64 bytes from `ahead`; a segment that does not
        // start on a line (tensors in a file are 8- or 32-byte aligned) ends in one more, and a
        // demand miss there per segment cut the long shape from 50 to 37 GB/s.
        _mm_prefetch(ahead + kSegmentColumns * eb - 1, _MM_HINT_T0);
        __m512 acc[NT][U];
        float tail[NT] = {};
        for (int t = 0; t < NT; ++t)
          for (int u = 0; u < U; ++u) acc[t][u] = _mm512_setzero_ps();
        RowSegment<NT, U>(w, rb + i, c0, c1, x, ahead, acc, tail);
        for (int t = 0; t < NT; ++t) {
          __m512 v = acc[t][0];
          for (int u = 1; u < U; ++u) v = _mm512_add_ps(v, acc[t][u]);
          sum[i][t] += _mm512_reduce_add_ps(v) + tail[t];
        }
      }
    }
    for (int64_t i = 0; i < rows; ++i)
      for (int t = 0; t < NT; ++t) y[t][rb + i] = bias ? sum[i][t] + bias[rb + i] : sum[i][t];
  }
}

// Columns [c0, c1) of a dense row starting at `row_start` (kEb bytes per element). Rows that
// fit beside their activations in L1 are read whole, one row after the next, so each thread's
// weights are one contiguous stream: with kAhead (CPUs that prefetch into L2, PrefetchToL2)
// every step prefetches the stream kDenseAheadBytes further on. On the Intel Xeon that took
// BF16 8960 x 1536 from DRAM from 22-23 to 24.6-26.4 GB/s and 256 x 1536 from 19 to 22-24
// (PREFETCHT0 instead: 19.5); 2-16 KiB ahead measured alike.
inline constexpr int64_t kDenseAheadBytes = 4096;
template <int NT, int U, int kEb, bool kAhead, class Row, class Scalar>
R1_TARGET_AVX512 R1_INLINE void AheadSegment(const Row& row, const Scalar& scalar, int64_t c0,
                                             int64_t c1, const float* const* x,
                                             __m512 (&acc)[NT][U], float (&tail)[NT],
                                             const void* row_start) {
  if constexpr (kAhead) {
    const char* ahead = static_cast<const char*>(row_start) + c0 * kEb + kDenseAheadBytes;
    Segment<NT, U, kEb, _MM_HINT_T1>(row, scalar, c0, c1, x, acc, tail, ahead);
  } else {
    Segment<NT, U>(row, scalar, c0, c1, x, acc, tail);
  }
}

template <int NT, bool kAhead>
R1_TARGET_AVX512 R1_INLINE void WholeRows(const Matrix& w, int64_t r0, int64_t r1,
                                          const float* const* x, float* const* y,
                                          const float* bias) {
  constexpr int U = NT == 1 ? 4 : 2;
  const int64_t cols = w.cols;
  for (int64_t r = r0; r < r1; ++r) {
    __m512 acc[NT][U];
    float tail[NT] = {};
    for (int t = 0; t < NT; ++t)
      for (int u = 0; u < U; ++u) acc[t][u] = _mm512_setzero_ps();
    const size_t base = static_cast<size_t>(r) * cols;
    switch (w.dtype) {
      case DType::kF32: {
        const float* p = reinterpret_cast<const float*>(w.data) + base;
        AheadSegment<NT, U, 4, kAhead>(F32Row{p}, LoadF32{p}, 0, cols, x, acc, tail, p);
        break;
      }
      case DType::kBF16: {
        const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
        AheadSegment<NT, U, 2, kAhead>(Bf16Row{p}, LoadBf16{p}, 0, cols, x, acc, tail, p);
        break;
      }
      case DType::kF16: {
        const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
        AheadSegment<NT, U, 2, kAhead>(F16Row{p}, LoadF16{p}, 0, cols, x, acc, tail, p);
        break;
      }
      case DType::kF8E4M3: {
        const float* srow = w.scale + (r / w.block_rows) * w.scale_cols();
        for (int64_t cb = 0, c0 = 0; c0 < cols; ++cb, c0 += w.block_cols) {
          const uint8_t* p = w.data + base;
          AheadSegment<NT, U, 1, kAhead>(Fp8Row{p, srow[cb]}, LoadFp8{p, srow[cb]}, c0,
                                         std::min(cols, c0 + w.block_cols), x, acc, tail, p);
        }
        break;
      }
      case DType::kI8:
      case DType::kU8:
        for (int64_t k = 0; k < w.qruns(); ++k) {
          const QuantRun run = w.Run(r, k);
          alignas(64) uint8_t codes[kTileBlocks * kQuantBlock];
          UninterleaveRunAvx512(run, w.dtype, codes);
          const float* xs[NT];
          for (int t = 0; t < NT; ++t) xs[t] = x[t] + run.c0;
          if (w.dtype == DType::kI8)
            Q8Blocks<NT, U>(reinterpret_cast<const int8_t*>(codes), run.scales,
                            run.c1 - run.c0, xs, acc, tail);
          else
            Q4Blocks<NT, U>(codes, run.scales, run.c1 - run.c0, xs, acc, tail);
        }
        break;
      default:
        break;
    }
    for (int t = 0; t < NT; ++t) {
      __m512 sum = acc[t][0];
      for (int u = 1; u < U; ++u) sum = _mm512_add_ps(sum, acc[t][u]);
      const float s = _mm512_reduce_add_ps(sum) + tail[t];
      y[t][r] = bias ? s + bias[r] : s;
    }
  }
}

template <int NT>
R1_TARGET_AVX512 R1_INLINE void Rows(const Matrix& w, int64_t r0, int64_t r1,
                                     const float* const* x, float* const* y, const float* bias) {
  if (SegmentsApply(w, NT)) return RowsInSegments<NT>(w, r0, r1, x, y, bias);
  if (PrefetchToL2()) return WholeRows<NT, true>(w, r0, r1, x, y, bias);
  WholeRows<NT, false>(w, r0, r1, x, y, bias);
}

// Rows [r0, r1) widened to float32 into out (rows `cols` apart), for the GEMM path.
template <class Row, class Scalar>
R1_TARGET_AVX512 R1_INLINE void WidenSegment(const Row& row, const Scalar& scalar, int64_t c0,
                                             int64_t c1, float* out) {
  int64_t c = c0;
  for (; c + 16 <= c1; c += 16) _mm512_storeu_ps(out + c, row.Load(c));
  for (; c < c1; ++c) out[c] = scalar(c);
}

// Q8/Q4 elements [c0, c1) of row r into out[c0 .. c1), c0 a multiple of 32 (so each run's part
// starts on a block and the 16-lane loads never straddle two blocks).
R1_TARGET_AVX512 R1_INLINE void WidenQuantRange(const Matrix& w, int64_t r, int64_t c0, int64_t c1,
                                                float* out) {
  for (int64_t k = c0 / (kTileBlocks * kQuantBlock); k < w.qruns(); ++k) {
    const QuantRun run = w.Run(r, k);
    if (run.c0 >= c1) break;
    const int64_t lo = std::max(c0, run.c0) - run.c0, hi = std::min(c1, run.c1) - run.c0;
    float* o = out + run.c0;
    alignas(64) uint8_t codes[kTileBlocks * kQuantBlock];
    UninterleaveRunAvx512(run, w.dtype, codes);
    if (w.dtype == DType::kI8) {
      const int8_t* p = reinterpret_cast<const int8_t*>(codes);
      WidenSegment(Q8Row{p, run.scales}, LoadQ8{p, run.scales}, lo, hi, o);
    } else {
      WidenSegment(Q4Row{codes, run.scales}, LoadQ4{codes, run.scales}, lo, hi, o);
    }
  }
}

// Elements [c0, c1) of row r (c0 a multiple of 32) for the formats whose vector loaders take any
// such range; false for the others (F32 is a copy; FP8 blocks would need splitting).
R1_TARGET_AVX512 bool WidenRange(const Matrix& w, int64_t r, int64_t c0, int64_t c1, float* out) {
  const size_t base = static_cast<size_t>(r) * w.cols;
  out -= c0;
  switch (w.dtype) {
    case DType::kBF16: {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
      WidenSegment(Bf16Row{p}, LoadBf16{p}, c0, c1, out);
      return true;
    }
    case DType::kF16: {
      const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
      WidenSegment(F16Row{p}, LoadF16{p}, c0, c1, out);
      return true;
    }
    case DType::kI8:
    case DType::kU8:
      WidenQuantRange(w, r, c0, c1, out);
      return true;
    default:
      return false;
  }
}

// Bytes [j, j + 16) of block b of a run (j a multiple of 4): four words nb words apart.
R1_TARGET_AVX512 R1_INLINE __m128i RunWords4(const QuantRun& run, int64_t b, int64_t j) {
  int32_t w[4];
  for (int i = 0; i < 4; ++i) std::memcpy(&w[i], run.codes + RunByte(run.nb, b, j + 4 * i), 4);
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(w));
}

// Where column e of a whole run (16 blocks, 512 columns) sits among the sums AxpyWholeRun keeps
// in the codes' interleaved order: 64-byte line q of a row's run holds word q (bytes 4q .. 4q+3)
// of each of the 16 blocks, so its 16-byte lane group g holds blocks 4g .. 4g+3, lane l byte l % 4
// of block 4g + l / 4. Q8: one float vector per lane group; Q4: two, the low nibbles' elements
// (4q + j) then the high ones' (4q + j + 16).
template <bool kQ8>
const std::array<uint16_t, 512>& WholeRunSlots() {
  static const std::array<uint16_t, 512> slots = [] {
    std::array<uint16_t, 512> s{};
    constexpr int kLines = kQ8 ? 8 : 4, kGroupVecs = kQ8 ? 1 : 2;
    for (int q = 0; q < kLines; ++q)
      for (int g = 0; g < 4; ++g)
        for (int l = 0; l < 16; ++l)
          for (int h = 0; h < kGroupVecs; ++h) {
            const int block = 4 * g + l / 4, element = 4 * q + l % 4 + 16 * h;
            s[block * kQuantBlock + element] =
                static_cast<uint16_t>(((q * 4 + g) * kGroupVecs + h) * 16 + l);
          }
    return s;
  }();
  return slots;
}

// One whole run of rows [r0, r1): the sums stay in the codes' interleaved order (WholeRunSlots)
// in 16 accumulators, a pass per 1 KiB of them, and go back in place once at the end, so every
// code vector is one 16-byte load, a widening and a fused multiply-add, with the row's 16 scales
// times a[r] spread to the lane groups by one permute each. Gathering each 16 columns' four
// words through a stack array instead (a failed store-to-load forward per vector) ran at about
// 5 GB/s and took 4.6% of a V2-Lite Q4 decode. Same products and order as the per-column loop,
// so the same result.
template <bool kQ8>
R1_TARGET_AVX512 void AxpyWholeRun(const Matrix& w, int64_t r0, int64_t r1, int64_t k,
                                   const float* a, float* out) {
  constexpr int kLines = kQ8 ? 8 : 4, kGroupVecs = kQ8 ? 1 : 2;
  constexpr int kLinesPerPass = 4 / kGroupVecs;  // 16 accumulators
  const std::array<uint16_t, 512>& slots = WholeRunSlots<kQ8>();
  alignas(64) float sums[512];
  for (int e = 0; e < 512; ++e) sums[slots[e]] = out[e];
  __m512i spread[4];
  for (int g = 0; g < 4; ++g)
    spread[g] = _mm512_add_epi32(_mm512_set1_epi32(4 * g),
                                 _mm512_srli_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8,
                                                                    7, 6, 5, 4, 3, 2, 1, 0),
                                                   2));
  const __m512i low = _mm512_set1_epi32(15), eight = _mm512_set1_epi32(8);
  // A head's rows are a few KiB to a few tens of KiB in a row, which the hardware prefetcher
  // ramps up on too late: the first pass fetches kAheadGroups tile groups ahead.
  constexpr int kAheadGroups = 2;
  const int64_t ahead = kAheadGroups * QuantGroupBytes(w.dtype, w.cols);
  for (int q0 = 0; q0 < kLines; q0 += kLinesPerPass) {
    __m512 acc[16];
    for (int v = 0; v < 16; ++v) acc[v] = _mm512_load_ps(sums + (q0 * 4 * kGroupVecs + v) * 16);
    for (int64_t r = r0; r < r1; ++r) {
      const QuantRun run = w.Run(r, k);
      if (q0 == 0) {
        for (int q = 0; q < kLines; ++q) _mm_prefetch(run.codes + ahead + q * 64, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(run.scales) + ahead, _MM_HINT_T0);
      }
      const __m512 sv = _mm512_mul_ps(
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(run.scales))),
          _mm512_set1_ps(a[r - r0]));
      __m512 scale[4];
      for (int g = 0; g < 4; ++g) scale[g] = _mm512_permutexvar_ps(spread[g], sv);
      for (int q = 0; q < kLinesPerPass; ++q)
        for (int g = 0; g < 4; ++g) {
          const __m128i bytes = _mm_loadu_si128(
              reinterpret_cast<const __m128i*>(run.codes + (q0 + q) * 64 + g * 16));
          __m512 f0 = _mm512_setzero_ps(), f1 = _mm512_setzero_ps();
          if constexpr (kQ8) {
            f0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes));
          } else {
            const __m512i u = _mm512_cvtepu8_epi32(bytes);
            f0 = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(u, low), eight));
            f1 = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(u, 4), eight));
          }
          const int v = (q * 4 + g) * kGroupVecs;
          acc[v] = _mm512_fmadd_ps(f0, scale[g], acc[v]);
          if constexpr (!kQ8) acc[v + 1] = _mm512_fmadd_ps(f1, scale[g], acc[v + 1]);
        }
    }
    for (int v = 0; v < 16; ++v) _mm512_store_ps(sums + (q0 * 4 * kGroupVecs + v) * 16, acc[v]);
  }
  for (int e = 0; e < 512; ++e) out[e] = sums[slots[e]];
}

// Per run, 128 columns at a time in 8 accumulators, the rows added in order; per row and block,
// a x scale is formed once and each code vector added by one fused multiply-add. Whole runs of
// real columns go through AxpyWholeRun.
R1_TARGET_AVX512 void AxpyQuantRows(const Matrix& w, int64_t r0, int64_t r1, const float* a,
                                    float* out) {
  constexpr int kVecs = 8;
  const bool q8 = w.dtype == DType::kI8;
  for (int64_t k = 0; k < w.qruns(); ++k) {
    const QuantRun first = w.Run(r0, k);
    if (first.nb == kTileBlocks && first.c1 - first.c0 == kTileBlocks * kQuantBlock) {
      if (q8)
        AxpyWholeRun<true>(w, r0, r1, k, a, out + first.c0);
      else
        AxpyWholeRun<false>(w, r0, r1, k, a, out + first.c0);
      continue;
    }
    for (int64_t c0 = first.c0; c0 < first.c1; c0 += 16 * kVecs) {
      const int64_t c1 = std::min(first.c1, c0 + 16 * kVecs);
      const int vecs = static_cast<int>((c1 - c0) / 16);
      __m512 acc[kVecs];
      for (int v = 0; v < vecs; ++v) acc[v] = _mm512_loadu_ps(out + c0 + 16 * v);
      const int64_t j0 = c0 - first.c0;  // a multiple of 128: vector v lies in block j0/32 + v/2
      for (int64_t r = r0; r < r1; ++r) {
        const QuantRun run = w.Run(r, k);
        const __m512 av = _mm512_set1_ps(a[r - r0]);
        for (int v = 0; v < vecs; ++v) {
          const int64_t b = (j0 + 16 * v) / kQuantBlock;
          const __m512 s = _mm512_mul_ps(av, BroadcastHalf(run.scales[b]));
          __m512i code;
          if (q8) {
            code = _mm512_cvtepi8_epi32(
                RunWords4(run, b, (j0 + 16 * v) % kQuantBlock));
          } else {
            const __m512i bytes = _mm512_cvtepu8_epi32(RunWords4(run, b, 0));
            code = _mm512_sub_epi32((v & 1) ? _mm512_srli_epi32(bytes, 4)
                                            : _mm512_and_si512(bytes, _mm512_set1_epi32(15)),
                                    _mm512_set1_epi32(8));
          }
          acc[v] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(code), s, acc[v]);
        }
      }
      for (int v = 0; v < vecs; ++v) _mm512_storeu_ps(out + c0 + 16 * v, acc[v]);
      // Columns past the last whole vector (a row length that is not a multiple of 16).
      for (int64_t c = c0 + 16 * vecs; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) {
          const QuantRun run = w.Run(r, k);
          const int64_t j = c - run.c0, b = j / kQuantBlock, e = j % kQuantBlock;
          // The element's byte, addressed as the only one of a one-block row.
          const uint16_t scale = run.scales[b];
          const uint8_t* byte = run.codes + RunByte(run.nb, b, q8 ? e : e & 15);
          const float value = q8 ? LoadQ8{reinterpret_cast<const int8_t*>(byte), &scale}(0)
                                 : LoadQ4{byte - (e & 15), &scale}(e);
          out[c] += a[r - r0] * value;
        }
    }
  }
}

R1_TARGET_AVX512 void WidenRows(const Matrix& w, int64_t r0, int64_t r1, float* out) {
  const int64_t cols = w.cols;
  for (int64_t r = r0; r < r1; ++r, out += cols) {
    const size_t base = static_cast<size_t>(r) * cols;
    switch (w.dtype) {
      case DType::kBF16: {
        const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
        WidenSegment(Bf16Row{p}, LoadBf16{p}, 0, cols, out);
        break;
      }
      case DType::kF16: {
        const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
        WidenSegment(F16Row{p}, LoadF16{p}, 0, cols, out);
        break;
      }
      case DType::kF8E4M3: {
        const float* srow = w.scale + (r / w.block_rows) * w.scale_cols();
        for (int64_t cb = 0, c0 = 0; c0 < cols; ++cb, c0 += w.block_cols) {
          const uint8_t* p = w.data + base;
          WidenSegment(Fp8Row{p, srow[cb]}, LoadFp8{p, srow[cb]}, c0,
                       std::min(cols, c0 + w.block_cols), out);
        }
        break;
      }
      case DType::kI8:
      case DType::kU8:
        WidenQuantRange(w, r, 0, cols, out);
        break;
      default:
        w.DequantRow(r, 0, cols, out);
        break;
    }
  }
}

}  // namespace avx512

R1_TARGET_AVX512 void RowRangeAvx512(const Matrix& w, int64_t r0, int64_t r1, const float* x,
                                     int64_t x_stride, int64_t n, float* y, int64_t y_stride,
                                     const float* bias) {
  ForEachTile(w, r0, r1, x, x_stride, n, y, y_stride,
              [&](auto nt, int64_t rb, int64_t re, const float* const* xs, float* const* ys)
                  R1_TARGET_AVX512 { avx512::Rows<decltype(nt)::value>(w, rb, re, xs, ys, bias); });
}
#pragma GCC diagnostic pop
#else
void RowRangeAvx512(const Matrix& w, int64_t r0, int64_t r1, const float* x, int64_t xs,
                    int64_t n, float* y, int64_t ys, const float* b) {
  RowRange(w, r0, r1, x, xs, n, y, ys, b);
}
#endif
void RowRangeAvx2(const Matrix& w, int64_t r0, int64_t r1, const float* x, int64_t x_stride,
                  int64_t n, float* y, int64_t y_stride, const float* bias) {
#if defined(__x86_64__)
  ForEachTile(w, r0, r1, x, x_stride, n, y, y_stride,
              [&](auto nt, int64_t rb, int64_t re, const float* const* xs, float* const* ys) {
                RowsAvx2(w, rb, re, xs, decltype(nt)::value, ys, bias);
              });
#else
  RowRange(w, r0, r1, x, x_stride, n, y, y_stride, bias);
#endif
}
void RowRangeBaseline(const Matrix& w, int64_t r0, int64_t r1, const float* x, int64_t xs,
                      int64_t n, float* y, int64_t ys, const float* b) {
  RowRange(w, r0, r1, x, xs, n, y, ys, b);
}

using RowRangeFn = void (*)(const Matrix&, int64_t, int64_t, const float*, int64_t, int64_t,
                            float*, int64_t, const float*);

RowRangeFn PickRowRange() {
  switch (DetectIsa()) {
    case IsaLevel::kAvx512: return RowRangeAvx512;
    case IsaLevel::kAvx2: return RowRangeAvx2;
    default: return RowRangeBaseline;
  }
}

}  // namespace

void WidenRows(const Matrix& w, int64_t r0, int64_t r1, float* out) {
#if defined(__x86_64__)
  static const bool avx512 = DetectIsa() == IsaLevel::kAvx512;
  if (avx512) return avx512::WidenRows(w, r0, r1, out);
  static const bool avx2 = DetectIsa() == IsaLevel::kAvx2;
  if (avx2) return WidenRowsAvx2(w, r0, r1, out);
#endif
  for (int64_t r = r0; r < r1; ++r) w.DequantRow(r, 0, w.cols, out + (r - r0) * w.cols);
}

namespace {

// Rows per work item of a streaming product: ~64k multiply-adds so scheduling stays negligible,
// in whole tile groups so no two threads read the same Q8/Q4 tile.
int64_t RowGrain(int64_t cols, int64_t n) {
  const int64_t rows = std::max<int64_t>(1, (1 << 16) / std::max<int64_t>(1, cols * n));
  return (rows + kTileRows - 1) / kTileRows * kTileRows;
}

// Many tokens (prefill, grouped experts, training): compute-bound, so each thread widens a panel
// of weight rows to float32 once and hands it to OpenBLAS's blocked sgemm, which reuses it over
// every token at close to the FMA peak. The panel is small and transient: weights stay stored
// in their own format.
void MatMulGemm(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                int64_t y_stride, const float* bias, ThreadPool& pool) {
  const int64_t rows = w.rows, cols = w.cols;
  // Rows per sgemm call: large enough that repacking the tokens per call stays a few percent of
  // the work, small enough that the widened panel (4 bytes x cols per row) stays in L2/L3.
  const int64_t panel = std::clamp<int64_t>((4 << 20) / (4 * std::max<int64_t>(cols, 1)), 16, 1024);
  const int parts = static_cast<int>(
      std::min<int64_t>(pool.size(), std::max<int64_t>(1, (rows + 15) / 16)));
  pool.ParallelFor(parts, 1, [&](int64_t p0, int64_t p1, int) {
    thread_local std::vector<float> widened;
    for (int64_t part = p0; part < p1; ++part) {
      const int64_t begin = rows * part / parts, end = rows * (part + 1) / parts;
      for (int64_t r0 = begin; r0 < end; r0 += panel) {
        const int64_t r1 = std::min(end, r0 + panel);
        const float* b = nullptr;
        if (w.dtype == DType::kF32) {
          b = reinterpret_cast<const float*>(w.data) + r0 * cols;
        } else {
          if (widened.size() < static_cast<size_t>((r1 - r0) * cols)) widened.resize((r1 - r0) * cols);
          WidenRows(w, r0, r1, widened.data());
          b = widened.data();
        }
        GemmNTSerial(n, r1 - r0, cols, x, x_stride, b, cols, y + r0, y_stride, 0.0f);
        if (bias) {
          for (int64_t t = 0; t < n; ++t)
            for (int64_t r = r0; r < r1; ++r) y[t * y_stride + r] += bias[r];
        }
      }
    }
  });
}

}  // namespace

void MatMul(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
            int64_t y_stride, const float* bias, ThreadPool& pool) {
  static const RowRangeFn row_range = PickRowRange();
  if (w.dtype != DType::kF32 && w.dtype != DType::kBF16 && w.dtype != DType::kF16 &&
      w.dtype != DType::kF8E4M3 && w.dtype != DType::kI8 && w.dtype != DType::kU8) {
    throw Error(w.name + ": unsupported weight dtype " + std::string(DTypeName(w.dtype)));
  }

  if (n <= 0 || w.rows <= 0) return;
  if (n >= kQuantizedAmxMinTokens && Int8ActivationsEnabled() && QuantizedAmxGemmApplies(w)) {
    QuantizedAmxGemm(w, x, x_stride, n, y, y_stride, bias, pool);
    return;
  }
  if (n >= kGemmMinTokens && Int8ActivationsEnabled() && Int8GemmApplies(w)) {
    Int8Gemm(w, x, x_stride, n, y, y_stride, bias, pool);
    return;
  }
  if (n >= kGemmMinTokens && Bf16GemmEnabled() && Bf16GemmApplies(w)) {
    Bf16Gemm(w, x, x_stride, n, y, y_stride, bias, pool);
    return;
  }
  if (n >= kGemmMinTokens && w.cols >= 16) {
    MatMulGemm(w, x, x_stride, n, y, y_stride, bias, pool);
    return;
  }
  if (Int8ActivationsEnabled() && Int8MatVecApplies(w)) {
    // Quantized once by the caller; the workers read this thread's copy through the pointer.
    thread_local std::vector<Int8Activations> quantized;
    if (quantized.size() < static_cast<size_t>(n)) quantized.resize(n);
    for (int64_t t = 0; t < n; ++t) QuantizeActivations(x + t * x_stride, w.cols, quantized[t]);
    const Int8Activations* xq = quantized.data();
    const int64_t grain = RowGrain(w.cols, n);
    pool.ParallelFor(w.rows, grain, [&, xq](int64_t r0, int64_t r1, int) {
      Int8MatVecRows(w, r0, r1, xq, n, y, y_stride, bias);
    });
    return;
  }
  const int64_t grain = RowGrain(w.cols, n);
  pool.ParallelFor(w.rows, grain, [&](int64_t r0, int64_t r1, int) {
    row_range(w, r0, r1, x, x_stride, n, y, y_stride, bias);
  });
}

namespace {

// Whether MatMul would send w, at n tokens, to the AMX BF16 kernel (QuantizedAmxGemm for Q8/Q4,
// Bf16Gemm for BF16 on an AMX CPU).
bool MatMulTakesAmx(const Matrix& w, int64_t n) {
  if (n >= kQuantizedAmxMinTokens && Int8ActivationsEnabled() && QuantizedAmxGemmApplies(w))
    return true;
  if (n < kGemmMinTokens || w.quantized()) return false;
  return Bf16GemmEnabled() && Bf16GemmApplies(w) && AmxEnabled();
}

}  // namespace

void MatMulSwiGlu(const Matrix& gate, const Matrix& up, const float* x, int64_t x_stride,
                  int64_t n, float* y, int64_t y_stride, ThreadPool& pool) {
  if (n <= 0) return;
  if (gate.dtype == up.dtype && gate.rows == up.rows && gate.cols == up.cols &&
      MatMulTakesAmx(gate, n) && MatMulTakesAmx(up, n))
    return SwiGluAmx(gate, up, x, x_stride, n, y, y_stride, pool);
  thread_local std::vector<float> up_out;
  float* u = GrowScratch(up_out, static_cast<size_t>(n * up.rows));
  const MatMulJob jobs[] = {{&gate, y, y_stride}, {&up, u, up.rows}};
  MatMulShared(jobs, x, x_stride, n, pool);
  // On both threads: in a 512-token prefill the gate's 18 MB took 3% of the time on one.
  pool.ParallelFor(n, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, gate.rows)),
                   [&](int64_t t0, int64_t t1, int) {
                     for (int64_t t = t0; t < t1; ++t)
                       SiluMul(y + t * y_stride, u + t * up.rows, gate.rows);
                   });
}

void SwiGluMlp(const Matrix& gate, const Matrix& up, const Matrix& down, const float* x,
               int64_t x_stride, int64_t n, float* y, int64_t y_stride, ThreadPool& pool) {
  if (n <= 0) return;
  if (gate.dtype == up.dtype && gate.rows == up.rows && gate.cols == up.cols &&
      down.cols == gate.rows && MatMulTakesAmx(gate, n) && MatMulTakesAmx(up, n) &&
      MatMulTakesAmx(down, n))
    return SwiGluMlpAmx(gate, up, down, x, x_stride, n, y, y_stride, pool);
  thread_local std::vector<float> hidden;
  float* h = GrowScratch(hidden, static_cast<size_t>(n * gate.rows));
  MatMulSwiGlu(gate, up, x, x_stride, n, h, gate.rows, pool);
  MatMul(down, h, gate.rows, n, y, y_stride, nullptr, pool);
}

void MatMulShared(std::span<const MatMulJob> jobs, const float* x, int64_t x_stride, int64_t n,
                  ThreadPool& pool) {
  static const RowRangeFn row_range = PickRowRange();
  if (jobs.empty() || n <= 0) return;
  const int64_t cols = jobs[0].w->cols;
  bool any_int8 = false;
  int64_t total_rows = 0;
  for (const MatMulJob& j : jobs) {
    if (j.w->cols != cols) throw Error(j.w->name + ": MatMulShared needs equal column counts");
    total_rows += j.w->rows;
  }
  if (n >= kGemmMinTokens || jobs.size() == 1) {
    for (const MatMulJob& j : jobs) MatMul(*j.w, x, x_stride, n, j.y, j.y_stride, j.bias, pool);
    return;
  }
  std::vector<char> int8(jobs.size());
  for (size_t i = 0; i < jobs.size(); ++i) {
    const Matrix& w = *jobs[i].w;
    if (w.dtype != DType::kF32 && w.dtype != DType::kBF16 && w.dtype != DType::kF16 &&
        w.dtype != DType::kF8E4M3 && w.dtype != DType::kI8 && w.dtype != DType::kU8)
      throw Error(w.name + ": unsupported weight dtype " + std::string(DTypeName(w.dtype)));
  
    int8[i] = Int8ActivationsEnabled() && Int8MatVecApplies(w);
    any_int8 |= int8[i] != 0;
  }
  thread_local std::vector<Int8Activations> quantized;
  if (any_int8) {
    if (quantized.size() < static_cast<size_t>(n)) quantized.resize(n);
    for (int64_t t = 0; t < n; ++t) QuantizeActivations(x + t * x_stride, cols, quantized[t]);
  }
  const Int8Activations* xq = quantized.data();
  const int64_t grain = RowGrain(cols, n);
  pool.ParallelFor(total_rows, grain, [&, xq](int64_t r0, int64_t r1, int) {
    // The global row range may span several matrices: split it at their boundaries.
    int64_t first = 0;
    for (size_t i = 0; i < jobs.size() && r0 < r1; ++i) {
      const MatMulJob& j = jobs[i];
      const int64_t end = first + j.w->rows;
      if (r0 < end) {
        const int64_t a = r0 - first, b = std::min(r1, end) - first;
        if (int8[i])
          Int8MatVecRows(*j.w, a, b, xq, n, j.y, j.y_stride, j.bias);
        else
          row_range(*j.w, a, b, x, x_stride, n, j.y, j.y_stride, j.bias);
        r0 = first + b;
      }
      first = end;
    }
  });
}

void MatVecRowRange(const Matrix& w, int64_t r0, int64_t r1, const float* x, float* y) {
  static const RowRangeFn row_range = PickRowRange();
  if (r1 <= r0) return;
  // Both kernels index their output by row: they write into this buffer from r0 on.
  thread_local std::vector<float> rows;
  if (rows.size() < static_cast<size_t>(r1)) rows.resize(r1);
  if (Int8ActivationsEnabled() && Int8MatVecApplies(w)) {
    thread_local Int8Activations quantized;
    QuantizeActivations(x, w.cols, quantized);
    Int8MatVecRows(w, r0, r1, &quantized, 1, rows.data(), w.rows, nullptr);
  } else {
    row_range(w, r0, r1, x, w.cols, 1, rows.data(), w.rows, nullptr);
  }
  std::copy(rows.begin() + r0, rows.begin() + r1, y);
}

void MatMulRows(const Matrix& w, const float* x, int64_t x_stride, int64_t n, float* y,
                int64_t y_stride, const float* bias, ThreadPool& pool) {
  static const RowRangeFn row_range = PickRowRange();
  if (n <= 0 || w.rows <= 0) return;
  const int64_t grain = RowGrain(w.cols, n);
  pool.ParallelFor(w.rows, grain, [&](int64_t r0, int64_t r1, int) {
    row_range(w, r0, r1, x, x_stride, n, y, y_stride, bias);
  });
}

void MatMulReference(const Matrix& w, const float* x, int64_t n, float* y, const float* bias) {
  std::vector<float> row(w.cols);
  for (int64_t r = 0; r < w.rows; ++r) {
    w.DequantRow(r, 0, w.cols, row.data());
    for (int64_t t = 0; t < n; ++t) {
      double s = 0;
      for (int64_t c = 0; c < w.cols; ++c) s += static_cast<double>(row[c]) * x[t * w.cols + c];
      y[t * w.rows + r] = static_cast<float>(bias ? s + bias[r] : s);
    }
  }
}

}  // namespace r1
