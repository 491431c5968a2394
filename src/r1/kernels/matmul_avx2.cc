#include "r1/kernels/matmul_avx2.h"

#include <algorithm>
#include <cstring>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/kernels/matmul_loaders.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace r1::matmul_detail {

namespace {

// Vector loaders of 8 elements from column c, the same arithmetic as the scalar ones (F16C's
// conversion is exact, as the bit moves are).
struct F32Row {
  const float* p;
  R1_TARGET_AVX2 R1_INLINE __m256 Load(int64_t c) const { return _mm256_loadu_ps(p + c); }
};
struct Bf16Row {
  const uint16_t* p;
  R1_TARGET_AVX2 R1_INLINE __m256 Load(int64_t c) const {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + c));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
};
struct F16Row {
  const uint16_t* p;
  R1_TARGET_AVX2 R1_INLINE __m256 Load(int64_t c) const {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + c)));
  }
};
struct Fp8Row {
  const uint8_t* p;
  float scale;
  R1_TARGET_AVX2 R1_INLINE __m256 Load(int64_t c) const {
    const __m256i b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + c)));
    const __m256i mag = _mm256_slli_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x7f)), 20);
    const __m256i sign = _mm256_slli_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x80)), 24);
    const __m256 f = _mm256_castsi256_ps(_mm256_or_si256(mag, sign));
    return _mm256_mul_ps(_mm256_mul_ps(f, _mm256_set1_ps(1.329227995784916e+36f)),
                         _mm256_set1_ps(scale));
  }
};

R1_TARGET_AVX2 R1_INLINE __m256 BroadcastHalf(uint16_t h) { return _mm256_set1_ps(_cvtsh_ss(h)); }

// Q8/Q4 codes in the encoder's order (a run un-interleaved). Loads start at multiples of 8, so a
// vector never straddles two blocks of 32, nor a Q4 block's low and high nibbles.
struct Q8Row {
  const int8_t* p;
  const uint16_t* qs;
  R1_TARGET_AVX2 R1_INLINE __m256 Load(int64_t c) const {
    const __m256 v = _mm256_cvtepi32_ps(
        _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + c))));
    return _mm256_mul_ps(v, BroadcastHalf(qs[c / kQuantBlock]));
  }
};
struct Q4Row {
  const uint8_t* p;
  const uint16_t* qs;
  R1_TARGET_AVX2 R1_INLINE __m256 Load(int64_t c) const {
    const int64_t b = c / kQuantBlock;
    const __m256i bytes = _mm256_cvtepu8_epi32(
        _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + b * (kQuantBlock / 2) + (c & 15))));
    const __m256i nib = (c & 16) ? _mm256_srli_epi32(bytes, 4)
                                 : _mm256_and_si256(bytes, _mm256_set1_epi32(15));
    const __m256 v = _mm256_cvtepi32_ps(_mm256_sub_epi32(nib, _mm256_set1_epi32(8)));
    return _mm256_mul_ps(v, BroadcastHalf(qs[b]));
  }
};

// NT tokens x U vectors per step (U independent chains per token keep the FMAs ahead of
// memory); the remainder of the segment goes through the scalar loader.
// With kAheadBytes, also prefetches that many bytes per column from `ahead` (another row
// segment's, see RowsInSegments) step by step.
template <int NT, int U, int kAheadBytes = 0, class Row, class Scalar>
R1_TARGET_AVX2 R1_INLINE void Segment(const Row& row, const Scalar& scalar, int64_t c0, int64_t c1,
                                      const float* const* x, __m256 (&acc)[NT][U],
                                      float (&tail)[NT], const char* ahead = nullptr) {
  int64_t c = c0;
  for (; c + 8 * U <= c1; c += 8 * U) {
    if constexpr (kAheadBytes > 0) {
#pragma GCC unroll 4
      for (int b = 0; b < 8 * U * kAheadBytes; b += 64)
        _mm_prefetch(ahead + (c - c0) * kAheadBytes + b, _MM_HINT_T0);
    }
    __m256 w[U];
    for (int u = 0; u < U; ++u) w[u] = row.Load(c + 8 * u);
    for (int t = 0; t < NT; ++t)
      for (int u = 0; u < U; ++u)
        acc[t][u] = _mm256_fmadd_ps(w[u], _mm256_loadu_ps(x[t] + c + 8 * u), acc[t][u]);
  }
  for (; c + 8 <= c1; c += 8) {
    const __m256 w = row.Load(c);
    for (int t = 0; t < NT; ++t) acc[t][0] = _mm256_fmadd_ps(w, _mm256_loadu_ps(x[t] + c), acc[t][0]);
  }
  for (; c < c1; ++c) {
    const float wv = scalar(c);
    for (int t = 0; t < NT; ++t) tail[t] += wv * x[t][c];
  }
}

// Q8/Q4 blocks: the scale factored out of each block of 32 (sum code x activation over the
// block, then one multiply-add by the scale); the partial last block through the scalar loader.
template <int NT, int U, bool kQ4>
R1_TARGET_AVX2 R1_INLINE void QuantBlocks(const uint8_t* p, const uint16_t* qs, int64_t cols,
                                          const float* const* x, __m256 (&acc)[NT][U],
                                          float (&tail)[NT]) {
  const int64_t full = cols / kQuantBlock;
  const __m256i eight = _mm256_set1_epi32(8), low = _mm256_set1_epi32(15);
  for (int64_t b = 0; b < full; ++b) {
    const int64_t c = b * kQuantBlock;
    const __m256 d = BroadcastHalf(qs[b]);
    __m256 w[4];
    if constexpr (kQ4) {
      for (int h = 0; h < 2; ++h) {
        const __m256i bytes = _mm256_cvtepu8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + b * (kQuantBlock / 2) + 8 * h)));
        w[h] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_and_si256(bytes, low), eight));
        w[2 + h] = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_srli_epi32(bytes, 4), eight));
      }
    } else {
      for (int h = 0; h < 4; ++h)
        w[h] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(
            _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + c + 8 * h))));
    }
    for (int t = 0; t < NT; ++t) {
      __m256 s = _mm256_mul_ps(w[0], _mm256_loadu_ps(x[t] + c));
      for (int h = 1; h < 4; ++h) s = _mm256_fmadd_ps(w[h], _mm256_loadu_ps(x[t] + c + 8 * h), s);
      acc[t][b % U] = _mm256_fmadd_ps(s, d, acc[t][b % U]);
    }
  }
  for (int64_t c = full * kQuantBlock; c < cols; ++c) {
    const float wv = kQ4 ? LoadQ4{p, qs}(c) : LoadQ8{reinterpret_cast<const int8_t*>(p), qs}(c);
    for (int t = 0; t < NT; ++t) tail[t] += wv * x[t][c];
  }
}

R1_TARGET_AVX2 R1_INLINE float Sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

template <int NT, int U>
R1_TARGET_AVX2 R1_INLINE void RowSegment(const Matrix& w, int64_t r, int64_t c0, int64_t c1,
                                         const float* const* x, const char* ahead,
                                         __m256 (&acc)[NT][U], float (&tail)[NT]) {
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
R1_TARGET_AVX2 void RowsInSegments(const Matrix& w, int64_t r0, int64_t r1, const float* const* x,
                                   float* const* y, const float* bias) {
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
        _mm_prefetch(ahead + kSegmentColumns * eb - 1, _MM_HINT_T0);
        __m256 acc[NT][U];
        float tail[NT] = {};
        for (int t = 0; t < NT; ++t)
          for (int u = 0; u < U; ++u) acc[t][u] = _mm256_setzero_ps();
        RowSegment<NT, U>(w, rb + i, c0, c1, x, ahead, acc, tail);
        for (int t = 0; t < NT; ++t) {
          __m256 v = acc[t][0];
          for (int u = 1; u < U; ++u) v = _mm256_add_ps(v, acc[t][u]);
          sum[i][t] += Sum(v) + tail[t];
        }
      }
    }
    for (int64_t i = 0; i < rows; ++i)
      for (int t = 0; t < NT; ++t) y[t][rb + i] = bias ? sum[i][t] + bias[rb + i] : sum[i][t];
  }
}

template <int NT>
R1_TARGET_AVX2 void Rows(const Matrix& w, int64_t r0, int64_t r1, const float* const* x,
                         float* const* y, const float* bias) {
  if (SegmentsApply(w, NT)) return RowsInSegments<NT>(w, r0, r1, x, y, bias);
  constexpr int U = NT == 1 ? 4 : 2;
  const int64_t cols = w.cols;
  for (int64_t r = r0; r < r1; ++r) {
    __m256 acc[NT][U];
    float tail[NT] = {};
    for (int t = 0; t < NT; ++t)
      for (int u = 0; u < U; ++u) acc[t][u] = _mm256_setzero_ps();
    const size_t base = static_cast<size_t>(r) * cols;
    switch (w.dtype) {
      case DType::kF32: {
        const float* p = reinterpret_cast<const float*>(w.data) + base;
        Segment<NT, U>(F32Row{p}, LoadF32{p}, 0, cols, x, acc, tail);
        break;
      }
      case DType::kBF16: {
        const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
        Segment<NT, U>(Bf16Row{p}, LoadBf16{p}, 0, cols, x, acc, tail);
        break;
      }
      case DType::kF16: {
        const uint16_t* p = reinterpret_cast<const uint16_t*>(w.data) + base;
        Segment<NT, U>(F16Row{p}, LoadF16{p}, 0, cols, x, acc, tail);
        break;
      }
      case DType::kF8E4M3: {
        const float* srow = w.scale + (r / w.block_rows) * w.scale_cols();
        for (int64_t cb = 0, c0 = 0; c0 < cols; ++cb, c0 += w.block_cols) {
          const uint8_t* p = w.data + base;
          Segment<NT, U>(Fp8Row{p, srow[cb]}, LoadFp8{p, srow[cb]}, c0,
                         std::min(cols, c0 + w.block_cols), x, acc, tail);
        }
        break;
      }
      case DType::kI8:
      case DType::kU8:
        for (int64_t k = 0; k < w.qruns(); ++k) {
          const QuantRun run = w.Run(r, k);
          alignas(32) uint8_t codes[kTileBlocks * kQuantBlock];
          UninterleaveRun(run, w.dtype, codes);
          const float* xs[NT];
          for (int t = 0; t < NT; ++t) xs[t] = x[t] + run.c0;
          if (w.dtype == DType::kI8)
            QuantBlocks<NT, U, false>(codes, run.scales, run.c1 - run.c0, xs, acc, tail);
          else
            QuantBlocks<NT, U, true>(codes, run.scales, run.c1 - run.c0, xs, acc, tail);
        }
        break;
      default:
        throw Error(w.name + ": unsupported weight dtype " + std::string(DTypeName(w.dtype)));
    }
    for (int t = 0; t < NT; ++t) {
      __m256 sum = acc[t][0];
      for (int u = 1; u < U; ++u) sum = _mm256_add_ps(sum, acc[t][u]);
      const float s = Sum(sum) + tail[t];
      y[t][r] = bias ? s + bias[r] : s;
    }
  }
}

template <class Row, class Scalar>
R1_TARGET_AVX2 R1_INLINE void WidenSegment(const Row& row, const Scalar& scalar, int64_t c0,
                                           int64_t c1, float* out) {
  int64_t c = c0;
  for (; c + 8 <= c1; c += 8) _mm256_storeu_ps(out + c, row.Load(c));
  for (; c < c1; ++c) out[c] = scalar(c);
}

// Q8/Q4 elements [c0, c1) of row r into out[c0 .. c1), c0 a multiple of 32.
R1_TARGET_AVX2 void WidenQuantRange(const Matrix& w, int64_t r, int64_t c0, int64_t c1,
                                    float* out) {
  for (int64_t k = c0 / (kTileBlocks * kQuantBlock); k < w.qruns(); ++k) {
    const QuantRun run = w.Run(r, k);
    if (run.c0 >= c1) break;
    const int64_t lo = std::max(c0, run.c0) - run.c0, hi = std::min(c1, run.c1) - run.c0;
    float* o = out + run.c0;
    alignas(32) uint8_t codes[kTileBlocks * kQuantBlock];
    UninterleaveRun(run, w.dtype, codes);
    if (w.dtype == DType::kI8) {
      const int8_t* p = reinterpret_cast<const int8_t*>(codes);
      WidenSegment(Q8Row{p, run.scales}, LoadQ8{p, run.scales}, lo, hi, o);
    } else {
      WidenSegment(Q4Row{codes, run.scales}, LoadQ4{codes, run.scales}, lo, hi, o);
    }
  }
}

}  // namespace

// Bytes [j, j + 8) of block b of a run (j a multiple of 4): two words nb words apart.
R1_TARGET_AVX2 R1_INLINE __m128i RunWords2(const QuantRun& run, int64_t b, int64_t j) {
  int32_t w0, w1;
  std::memcpy(&w0, run.codes + RunByte(run.nb, b, j), 4);
  std::memcpy(&w1, run.codes + RunByte(run.nb, b, j + 4), 4);
  return _mm_unpacklo_epi32(_mm_cvtsi32_si128(w0), _mm_cvtsi32_si128(w1));
}

R1_TARGET_AVX2 void AxpyQuantRowsAvx2(const Matrix& w, int64_t r0, int64_t r1, const float* a,
                                      float* out) {
  constexpr int kVecs = 8;
  const bool q8 = w.dtype == DType::kI8;
  for (int64_t k = 0; k < w.qruns(); ++k) {
    const QuantRun first = w.Run(r0, k);
    for (int64_t c0 = first.c0; c0 < first.c1; c0 += 8 * kVecs) {
      const int64_t c1 = std::min(first.c1, c0 + 8 * kVecs);
      const int vecs = static_cast<int>((c1 - c0) / 8);
      __m256 acc[kVecs];
      for (int v = 0; v < vecs; ++v) acc[v] = _mm256_loadu_ps(out + c0 + 8 * v);
      const int64_t j0 = c0 - first.c0;  // a multiple of 64: vector v lies in block j0/32 + v/4
      for (int64_t r = r0; r < r1; ++r) {
        const QuantRun run = w.Run(r, k);
        const __m256 av = _mm256_set1_ps(a[r - r0]);
        for (int v = 0; v < vecs; ++v) {
          const int64_t e = (j0 + 8 * v) % kQuantBlock, b = (j0 + 8 * v) / kQuantBlock;
          const __m256 s = _mm256_mul_ps(av, BroadcastHalf(run.scales[b]));
          __m256i code;
          if (q8) {
            code = _mm256_cvtepi8_epi32(RunWords2(run, b, e));
          } else {
            // Elements e .. e+7: the low nibbles of bytes e .. e+7 below 16, else the high ones
            // of bytes e-16 .. e-9.
            const __m256i bytes = _mm256_cvtepu8_epi32(RunWords2(run, b, e & 15));
            code = _mm256_sub_epi32((e & 16) ? _mm256_srli_epi32(bytes, 4)
                                             : _mm256_and_si256(bytes, _mm256_set1_epi32(15)),
                                    _mm256_set1_epi32(8));
          }
          acc[v] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(code), s, acc[v]);
        }
      }
      for (int v = 0; v < vecs; ++v) _mm256_storeu_ps(out + c0 + 8 * v, acc[v]);
      // Columns past the last whole vector (a row length that is not a multiple of 8).
      for (int64_t c = c0 + 8 * vecs; c < c1; ++c)
        for (int64_t r = r0; r < r1; ++r) {
          const QuantRun run = w.Run(r, k);
          const int64_t j = c - run.c0, b = j / kQuantBlock, e = j % kQuantBlock;
          const uint16_t scale = run.scales[b];
          const uint8_t* byte = run.codes + RunByte(run.nb, b, q8 ? e : e & 15);
          const float value = q8 ? LoadQ8{reinterpret_cast<const int8_t*>(byte), &scale}(0)
                                 : LoadQ4{byte - (e & 15), &scale}(e);
          out[c] += a[r - r0] * value;
        }
    }
  }
}

R1_TARGET_AVX2 void RowsAvx2(const Matrix& w, int64_t r0, int64_t r1, const float* const* x,
                             int nt, float* const* y, const float* bias) {
  switch (nt) {
    case 1: return Rows<1>(w, r0, r1, x, y, bias);
    case 2: return Rows<2>(w, r0, r1, x, y, bias);
    case 3: return Rows<3>(w, r0, r1, x, y, bias);
    default: return Rows<4>(w, r0, r1, x, y, bias);
  }
}

R1_TARGET_AVX2 bool WidenRangeAvx2(const Matrix& w, int64_t r, int64_t c0, int64_t c1, float* out) {
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

R1_TARGET_AVX2 void WidenRowsAvx2(const Matrix& w, int64_t r0, int64_t r1, float* out) {
  const int64_t cols = w.cols;
  for (int64_t r = r0; r < r1; ++r, out += cols) {
    if (w.dtype == DType::kF8E4M3) {
      const float* srow = w.scale + (r / w.block_rows) * w.scale_cols();
      const uint8_t* p = w.data + static_cast<size_t>(r) * cols;
      for (int64_t cb = 0, c0 = 0; c0 < cols; ++cb, c0 += w.block_cols)
        WidenSegment(Fp8Row{p, srow[cb]}, LoadFp8{p, srow[cb]}, c0,
                     std::min(cols, c0 + w.block_cols), out);
    } else if (!WidenRangeAvx2(w, r, 0, cols, out)) {
      w.DequantRow(r, 0, cols, out);
    }
  }
}

}  // namespace r1::matmul_detail
#endif
