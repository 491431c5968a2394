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

// Rows r .. r+R-1 of one tile group against T tokens; out[t] lane i is row r+i's dot product
// with token t (no bias). Per run, a 32-byte read holds one word of each of 8 blocks (matrix.h),
// so int32 lane l of `lo` sums block l of the run and of `hi` block 8+l. Each weight word is
// loaded (and split into nibbles, or made absolute) once for all T tokens; a token's operations
// are the same whatever T is, so its result does not depend on the tokens beside it. Short last
// runs read full vectors: the words past the run belong to the same tile and meet activation
// lanes, biases and scales that are all zero.
template <int R, int T, bool kQ4>
R1_INLINE void Dots(const Matrix& w, int64_t r, const Int8Activations* x, __m128 (&out)[T]) {
  const __m256i nib = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1),
                flip = _mm256_set1_epi8(static_cast<char>(0x80));
  __m256 acc[R][T];
  for (int i = 0; i < R; ++i)
    for (int t = 0; t < T; ++t) acc[i][t] = _mm256_setzero_ps();
  for (int64_t k = 0; k < w.qruns(); ++k) {
    const QuantRun run = w.Run(r, k);
    const int8_t* xl[T];
    const int32_t* xb[T];
    for (int t = 0; t < T; ++t) {
      xl[t] = (kQ4 ? x[t].q4_lanes : x[t].q8_lanes).data() + k * kRunBytes;
      xb[t] = (kQ4 ? x[t].q4_bias : x[t].q8_bias).data() + k * kTileBlocks;
    }
    const int64_t word_stride = run.nb * 4;
    _mm_prefetch(reinterpret_cast<const char*>(run.scales) + kPrefetchBytes, _MM_HINT_T0);
#pragma GCC unroll 4
    for (int i = 0; i < R; ++i) {
      const uint8_t* p = run.codes + i * run.code_stride;
      __m256i lo[T], hi[T];
      if constexpr (kQ4) {
        // Nibbles are unsigned (code + 8): the bias removes the 8. Without VNNI, vpmaddubsw
        // pairs stay within 2 x 15 x 127, so a block's 8 products fit in int16.
        __m256i s0[T], s1[T];
        for (int t = 0; t < T; ++t) {
          if constexpr (kVnni) {
            lo[t] = Load(xb[t]);
            hi[t] = Load(xb[t] + 8);
          } else {
            s0[t] = s1[t] = _mm256_setzero_si256();
          }
        }
#pragma GCC unroll 4
        for (int q = 0; q < 4; ++q) {
          const uint8_t* src = p + q * word_stride;
          _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
          const __m256i v0 = Load(src), v1 = Load(src + 32);
          const __m256i l0 = _mm256_and_si256(v0, nib), h0 = _mm256_and_si256(_mm256_srli_epi16(v0, 4), nib);
          const __m256i l1 = _mm256_and_si256(v1, nib), h1 = _mm256_and_si256(_mm256_srli_epi16(v1, 4), nib);
          for (int t = 0; t < T; ++t) {
            const int8_t* a = xl[t] + 128 * q;
            if constexpr (kVnni) {
              lo[t] = _mm256_dpbusd_avx_epi32(lo[t], l0, Load(a));
              lo[t] = _mm256_dpbusd_avx_epi32(lo[t], h0, Load(a + 64));
              hi[t] = _mm256_dpbusd_avx_epi32(hi[t], l1, Load(a + 32));
              hi[t] = _mm256_dpbusd_avx_epi32(hi[t], h1, Load(a + 96));
            } else {
              s0[t] = _mm256_add_epi16(s0[t], _mm256_maddubs_epi16(l0, Load(a)));
              s0[t] = _mm256_add_epi16(s0[t], _mm256_maddubs_epi16(h0, Load(a + 64)));
              s1[t] = _mm256_add_epi16(s1[t], _mm256_maddubs_epi16(l1, Load(a + 32)));
              s1[t] = _mm256_add_epi16(s1[t], _mm256_maddubs_epi16(h1, Load(a + 96)));
            }
          }
        }
        if constexpr (!kVnni) {
          for (int t = 0; t < T; ++t) {
            lo[t] = _mm256_add_epi32(_mm256_madd_epi16(s0[t], ones), Load(xb[t]));
            hi[t] = _mm256_add_epi32(_mm256_madd_epi16(s1[t], ones), Load(xb[t] + 8));
          }
        }
      } else {
        for (int t = 0; t < T; ++t) {
          if constexpr (kVnni) {
            // Signed codes flipped to code + 128 for the unsigned operand; the bias removes 128.
            lo[t] = Load(xb[t]);
            hi[t] = Load(xb[t] + 8);
          } else {
            lo[t] = hi[t] = _mm256_setzero_si256();
          }
        }
#pragma GCC unroll 8
        for (int q = 0; q < 8; ++q) {
          const uint8_t* src = p + q * word_stride;
          _mm_prefetch(reinterpret_cast<const char*>(src) + kPrefetchBytes, _MM_HINT_T0);
          const __m256i v0 = Load(src), v1 = Load(src + 32);
          if constexpr (kVnni) {
            const __m256i u0 = _mm256_xor_si256(v0, flip), u1 = _mm256_xor_si256(v1, flip);
            for (int t = 0; t < T; ++t) {
              lo[t] = _mm256_dpbusd_avx_epi32(lo[t], u0, Load(xl[t] + 64 * q));
              hi[t] = _mm256_dpbusd_avx_epi32(hi[t], u1, Load(xl[t] + 64 * q + 32));
            }
          } else {
            // |w| x (a with w's sign): pairs within 2 x 128 x 127, no int16 saturation even
            // for a stored -128 (whose vpabsb, 0x80, reads as 128 unsigned).
            const __m256i m0 = _mm256_abs_epi8(v0), m1 = _mm256_abs_epi8(v1);
            for (int t = 0; t < T; ++t) {
              const __m256i a0 = _mm256_sign_epi8(Load(xl[t] + 64 * q), v0);
              const __m256i a1 = _mm256_sign_epi8(Load(xl[t] + 64 * q + 32), v1);
              lo[t] = _mm256_add_epi32(lo[t], _mm256_madd_epi16(_mm256_maddubs_epi16(m0, a0), ones));
              hi[t] = _mm256_add_epi32(hi[t], _mm256_madd_epi16(_mm256_maddubs_epi16(m1, a1), ones));
            }
          }
        }
      }
      const uint16_t* sc = run.scales + i * kTileBlocks;
      const __m256 ws_lo = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc)));
      const __m256 ws_hi = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 8)));
      for (int t = 0; t < T; ++t) {
        const float* dx = x[t].dx.data() + k * kTileBlocks;
        const __m256 s_lo = _mm256_mul_ps(_mm256_loadu_ps(dx), ws_lo);
        const __m256 s_hi = _mm256_mul_ps(_mm256_loadu_ps(dx + 8), ws_hi);
        acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(lo[t]), s_lo, acc[i][t]);
        acc[i][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(hi[t]), s_hi, acc[i][t]);
      }
    }
  }
  for (int t = 0; t < T; ++t) {
    __m256 rows[R];
    for (int i = 0; i < R; ++i) rows[i] = acc[i][t];
    out[t] = SumLanes<R>(rows);
  }
}

// With VNNI, tokens in passes of 2 (each weight word loaded once per pass; batch-8 decode of
// the Qwen-1.5B shape 94 -> 110 tok/s in Q4, 70 -> 86 in Q8). Plain AVX2 spends 3-4 instructions
// per product where VNNI spends one, and 2 tokens per pass ran out of registers there (Q8 57 ->
// 31 tok/s): one token per pass over the group, whose tiles stay in L1/L2 for the next token.
template <int R, bool kQ4>
void RowGroupTyped(const Matrix& w, int64_t r, const Int8Activations* x, int64_t n, float* y,
                   int64_t y_stride, __m128 b, __m128i m) {
  constexpr int kPass = kVnni ? 2 : 1;
  int64_t t = 0;
  for (; kPass > 1 && t + kPass <= n; t += kPass) {
    __m128 out[kPass];
    Dots<R, kPass, kQ4>(w, r, x + t, out);
    for (int j = 0; j < kPass; ++j) _mm_maskstore_ps(y + (t + j) * y_stride + r, m, _mm_add_ps(out[j], b));
  }
  for (; t < n; ++t) {
    __m128 out[1];
    Dots<R, 1, kQ4>(w, r, x + t, out);
    _mm_maskstore_ps(y + t * y_stride + r, m, _mm_add_ps(out[0], b));
  }
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
