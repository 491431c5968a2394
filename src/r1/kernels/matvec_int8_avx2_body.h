// The AVX2 decode kernel's body, included twice by matvec_int8_avx2.cc inside a namespace and a
// `#pragma GCC target` region: once for plain AVX2 (R1_INT8_AVX_VNNI 0: `vpmaddubsw` products)
// and once for AVX-VNNI (1: `vpdpbusd` on 256 bits). A template cannot carry a target attribute
// chosen by its parameters, and the VNNI intrinsics cannot be inlined into an AVX2-only function.
// No include guard on purpose; it includes nothing.

constexpr bool kVnni = R1_INT8_AVX_VNNI;

// Lane i of the result: the sum of acc[i]'s 8 lanes (i < R <= 4; the others zero).
template <int R>
R1_INLINE __m128 SumLanes(const __m256* acc) {
  const __m256 z = _mm256_setzero_ps();
  const __m256 h01 = _mm256_hadd_ps(acc[0], R > 1 ? acc[1] : z);
  const __m256 h23 = _mm256_hadd_ps(R > 2 ? acc[2] : z, R > 3 ? acc[3] : z);
  const __m256 h = _mm256_hadd_ps(h01, h23);
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

R1_INLINE __m256i Load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// Rows r .. r+R-1 of one tile group against one token; lane i of the result is row r+i's dot
// product (no bias). Per run, a 32-byte read holds one word of each of 8 blocks (matrix.h), so
// int32 lane l of `lo` sums block l of the run and of `hi` block 8+l. Short last runs read full
// vectors: the words past the run belong to the same tile and meet activation lanes, biases and
// scales that are all zero.
template <int R, bool kQ4>
R1_INLINE __m128 Dots(const Matrix& w, int64_t r, const Int8Activations& x) {
  const int8_t* lanes = (kQ4 ? x.q4_lanes : x.q8_lanes).data();
  const int32_t* bias = (kQ4 ? x.q4_bias : x.q8_bias).data();
  const __m256i nib = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1),
                flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256 acc[R];
  for (int i = 0; i < R; ++i) acc[i] = _mm256_setzero_ps();
  for (int64_t k = 0; k < w.qruns(); ++k) {
    const QuantRun run = w.Run(r, k);
    const int8_t* xl = lanes + k * kRunBytes;
    const int32_t* xb = bias + k * kTileBlocks;
    const __m256 dx_lo = _mm256_loadu_ps(x.dx.data() + k * kTileBlocks);
    const __m256 dx_hi = _mm256_loadu_ps(x.dx.data() + k * kTileBlocks + 8);
    const int64_t word_stride = run.nb * 4;
    _mm_prefetch(reinterpret_cast<const char*>(run.scales) + kPrefetchBytes, _MM_HINT_T0);
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const uint8_t* p = run.codes + i * run.code_stride;
      __m256i lo, hi;
      if constexpr (kQ4) {
        // Nibbles are unsigned (code + 8): the bias removes the 8.
        if constexpr (kVnni) {
          lo = Load(xb);
          hi = Load(xb + 8);
        }
        // vpmaddubsw pairs stay within 2 x 15 x 127, so the 8 products of a block fit in int16.
        __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          const uint8_t* src = p + q * word_stride;
          _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
          const __m256i v0 = Load(src), v1 = Load(src + 32);
          const __m256i l0 = _mm256_and_si256(v0, nib), h0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), nib);
          const __m256i l1 = _mm256_and_si256(v1, nib), h1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), nib);
          const int8_t* a = xl + 128 * q;
          if constexpr (kVnni) {
            lo = _mm256_dpbusd_avx_epi32(lo, l0, Load(a));
            lo = _mm256_dpbusd_avx_epi32(lo, h0, Load(a + 64));
            hi = _mm256_dpbusd_avx_epi32(hi, l1, Load(a + 32));
            hi = _mm256_dpbusd_avx_epi32(hi, h1, Load(a + 96));
          } else {
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(l0, Load(a)));
            s0 = _mm256_add_epi16(s0, _mm256_maddubs_epi16(h0, Load(a + 64)));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(l1, Load(a + 32)));
            s1 = _mm256_add_epi16(s1, _mm256_maddubs_epi16(h1, Load(a + 96)));
          }
        }
        if constexpr (!kVnni) {
          lo = _mm256_add_epi32(_mm256_madd_epi16(s0, ones), Load(xb));
          hi = _mm256_add_epi32(_mm256_madd_epi16(s1, ones), Load(xb + 8));
        }
      } else {
        if constexpr (kVnni) {
          // Signed codes flipped to code + 128 for the unsigned operand; the bias removes 128.
          lo = Load(xb);
          hi = Load(xb + 8);
        } else {
          lo = _mm256_setzero_si256();
          hi = _mm256_setzero_si256();
        }
#pragma GCC unroll 8
        for (int q = 0; q < 8; ++q) {
          const uint8_t* src = p + q * word_stride;
          _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
          const __m256i v0 = Load(src), v1 = Load(src + 32);
          const __m256i a0 = Load(xl + 64 * q), a1 = Load(xl + 64 * q + 32);
          if constexpr (kVnni) {
            lo = _mm256_dpbusd_avx_epi32(lo, _mm256_xor_si256(v0, flip), a0);
            hi = _mm256_dpbusd_avx_epi32(hi, _mm256_xor_si256(v1, flip), a1);
          } else {
            // |w| x (a with w's sign): pairs within 2 x 128 x 127, no int16 saturation even
            // for a stored -128 (whose vpabsb, 0x80, reads as 128 unsigned).
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_maddubs_epi16(
                                          _mm256_abs_epi8(v0), _mm256_sign_epi8(a0, v0)), ones));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_maddubs_epi16(
                                          _mm256_abs_epi8(v1), _mm256_sign_epi8(a1, v1)), ones));
          }
        }
      }
      const uint16_t* sc = run.scales + i * kTileBlocks;
      const __m256 s_lo = _mm256_mul_ps(
          dx_lo, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc))));
      const __m256 s_hi = _mm256_mul_ps(
          dx_hi, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 8))));
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo), s_lo, acc[i]);
      acc[i] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi), s_hi, acc[i]);
    }
  }
  return SumLanes<R>(acc);
}

// Tokens one after another over the same group: its tiles are in L1/L2 after the first, and a
// token's result cannot depend on the others.
template <int R, bool kQ4>
void RowGroupTyped(const Matrix& w, int64_t r, const Int8Activations* x, int64_t n, float* y,
                   int64_t y_stride, __m128 b, __m128i m) {
  for (int64_t t = 0; t < n; ++t)
    _mm_maskstore_ps(y + t * y_stride + r, m, _mm_add_ps(Dots<R, kQ4>(w, r, x[t]), b));
}

template <int R>
void RowGroup(const Matrix& w, int64_t r, const Int8Activations* x, int64_t n, float* y,
              int64_t y_stride, const float* bias) {
  const __m128i m = _mm_setr_epi32(-1, R > 1 ? -1 : 0, R > 2 ? -1 : 0, R > 3 ? -1 : 0);
  const __m128 b = bias ? _mm_maskload_ps(bias + r, m) : _mm_setzero_ps();
  if (w.dtype == DType::kI8)
    RowGroupTyped<R, false>(w, r, x, n, y, y_stride, b, m);
  else
    RowGroupTyped<R, true>(w, r, x, n, y, y_stride, b, m);
}

void Rows(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x, int64_t n, float* y,
          int64_t y_stride, const float* bias) {
  static_assert(kTileRows == 4, "RowGroup below covers 1 .. 4 rows of a group");
  for (int64_t r = r0; r < r1;) {
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
