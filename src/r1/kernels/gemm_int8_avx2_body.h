// The AVX2 int8 prefill GEMM's body, included twice by gemm_int8_avx2.cc inside a namespace and a
// `#pragma GCC target` region: plain AVX2 (R1_INT8_AVX_VNNI 0, `vpmaddubsw` into int16) and
// AVX-VNNI (1, 256-bit `vpdpbusd`), as matvec_int8_avx2_body.h. No include guard on purpose.

constexpr bool kVnni = R1_INT8_AVX_VNNI;

// Rows [r0, r0 + valid) of W (valid <= kRows) repacked for the tile: block b's word q (codes
// 4q .. 4q+3; Q8 flipped to code + 128, Q4 the stored bytes with quad q in the low nibbles and
// quad q + 4 in the high ones) of row i at byte b * PanelBlockBytes + 32 q + 4 i, and row i's
// scale of block b at dw[8 b + i]. Each row's word q of a whole run is one contiguous read
// (matrix.h), so 8 rows x 8 blocks come in 8 loads and one transpose. Rows past `valid` are
// zero with zero scales.
void RepackPanel(const Matrix& w, int64_t r0, int valid, uint8_t* panel, float* dw) {
  const bool q8 = w.dtype == DType::kI8;
  const int64_t words = QuantBlockBytes(w.dtype) / 4, block_bytes = words * 32;
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));
  for (int64_t k = 0; k < w.qruns(); ++k) {
    const uint8_t* codes[kRows] = {};
    const uint16_t* scales[kRows] = {};
    int64_t nb = 0;
    for (int i = 0; i < valid; ++i) {
      const QuantRun run = w.Run(r0 + i, k);
      codes[i] = run.codes;
      scales[i] = run.scales;
      nb = run.nb;
    }
    const int64_t b_run = k * kTileBlocks;
    for (int64_t q = 0; q < words; ++q) {
      for (int64_t h = 0; h * 8 < nb; ++h) {
        // Reads past the run's nb words stay inside its tile; those blocks are not stored.
        __m256i v[8];
        for (int i = 0; i < kRows; ++i)
          v[i] = i < valid ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(
                                 codes[i] + q * nb * 4 + 32 * h))
                           : _mm256_setzero_si256();
        Transpose8x8(v);
        for (int64_t b = 0; b < std::min<int64_t>(8, nb - 8 * h); ++b) {
          uint8_t* dst = panel + (b_run + 8 * h + b) * block_bytes + 32 * q;
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), q8 ? _mm256_xor_si256(v[b], flip) : v[b]);
        }
      }
    }
    for (int64_t b = 0; b < nb; ++b)
      for (int i = 0; i < kRows; ++i)
        dw[(b_run + b) * kRows + i] = i < valid ? _cvtsh_ss(scales[i][b]) : 0.0f;
  }
}

R1_INLINE __m256i Broadcast4(const int8_t* p) {
  int32_t four;
  std::memcpy(&four, p, 4);
  return _mm256_set1_epi32(four);
}

// kRows rows x T tokens over every block: exact int32 block sums (with the offset correction),
// then one conversion and one multiply-add by w_scale x x_scale per block. Without VNNI the
// byte products go through `vpmaddubsw` into int16: a block's 8 products of Q4 nibbles stay
// within 8 x 2 x 15 x 127, and a Q8 code + 128 is split into its two nibbles (16 hi + lo) so
// the same bound holds where whole bytes would saturate.
template <int T, bool kQ4>
void Tile(const uint8_t* panel, const float* dw, const QuantizedTokens& q, int64_t t0, int valid,
          float* y, int64_t y_stride, const float* bias) {
  const int64_t blocks = q.blocks, cols = q.cols;
  const int64_t block_bytes = kQ4 ? 128 : 256;
  const __m256i nib = _mm256_set1_epi8(15), ones = _mm256_set1_epi16(1),
                sixteen = _mm256_set1_epi16(16);
  __m256 f[T];
  for (int t = 0; t < T; ++t) f[t] = _mm256_setzero_ps();
  const int8_t* xs = q.code.data() + t0 * cols;
  const float* dx = q.dx.data() + t0 * blocks;
  const int32_t* corr = q.corr.data() + t0 * blocks;
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* wb = panel + b * block_bytes;
    const int8_t* xb = xs + b * kQuantBlock;
    __m256i a[T];
    if constexpr (kVnni) {
      for (int t = 0; t < T; ++t) a[t] = _mm256_set1_epi32(corr[t * blocks + b]);
      if constexpr (kQ4) {
        for (int k = 0; k < 4; ++k) {
          const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 32 * k));
          const __m256i lo = _mm256_and_si256(p, nib), hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), nib);
          for (int t = 0; t < T; ++t) {
            a[t] = _mm256_dpbusd_avx_epi32(a[t], lo, Broadcast4(xb + t * cols + 4 * k));
            a[t] = _mm256_dpbusd_avx_epi32(a[t], hi, Broadcast4(xb + t * cols + 16 + 4 * k));
          }
        }
      } else {
        for (int k = 0; k < 8; ++k) {
          const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 32 * k));
          for (int t = 0; t < T; ++t)
            a[t] = _mm256_dpbusd_avx_epi32(a[t], p, Broadcast4(xb + t * cols + 4 * k));
        }
      }
    } else if constexpr (kQ4) {
      __m256i s[T];
      for (int t = 0; t < T; ++t) s[t] = _mm256_setzero_si256();
      for (int k = 0; k < 4; ++k) {
        const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 32 * k));
        const __m256i lo = _mm256_and_si256(p, nib), hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), nib);
        for (int t = 0; t < T; ++t) {
          s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(lo, Broadcast4(xb + t * cols + 4 * k)));
          s[t] = _mm256_add_epi16(s[t], _mm256_maddubs_epi16(hi, Broadcast4(xb + t * cols + 16 + 4 * k)));
        }
      }
      for (int t = 0; t < T; ++t)
        a[t] = _mm256_add_epi32(_mm256_madd_epi16(s[t], ones), _mm256_set1_epi32(corr[t * blocks + b]));
    } else {
      __m256i sl[T], sh[T];
      for (int t = 0; t < T; ++t) sl[t] = sh[t] = _mm256_setzero_si256();
      for (int k = 0; k < 8; ++k) {
        const __m256i p = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wb + 32 * k));
        const __m256i lo = _mm256_and_si256(p, nib), hi = _mm256_and_si256(_mm256_srli_epi16(p, 4), nib);
        for (int t = 0; t < T; ++t) {
          const __m256i xv = Broadcast4(xb + t * cols + 4 * k);
          sl[t] = _mm256_add_epi16(sl[t], _mm256_maddubs_epi16(lo, xv));
          sh[t] = _mm256_add_epi16(sh[t], _mm256_maddubs_epi16(hi, xv));
        }
      }
      for (int t = 0; t < T; ++t)
        a[t] = _mm256_add_epi32(_mm256_add_epi32(_mm256_madd_epi16(sh[t], sixteen), _mm256_madd_epi16(sl[t], ones)),
                                _mm256_set1_epi32(corr[t * blocks + b]));
    }
    const __m256 s = _mm256_loadu_ps(dw + b * kRows);
    for (int t = 0; t < T; ++t)
      f[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[t]), _mm256_mul_ps(s, _mm256_set1_ps(dx[t * blocks + b])), f[t]);
  }
  const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  const __m256 bv = bias ? _mm256_maskload_ps(bias, m) : _mm256_setzero_ps();
  for (int t = 0; t < T; ++t) _mm256_maskstore_ps(y + (t0 + t) * y_stride, m, _mm256_add_ps(f[t], bv));
}

void Gemm(const Matrix& w, const QuantizedTokens& q, int64_t n, float* y, int64_t y_stride,
          const float* bias, ThreadPool& pool) {
  const int64_t panels = (w.rows + kRows - 1) / kRows;
  pool.ParallelFor(panels, 1, [&](int64_t p0, int64_t p1, int) {
    thread_local std::vector<uint8_t> panel;
    thread_local std::vector<float> dw;
    panel.resize(q.blocks * QuantBlockBytes(w.dtype) * kRows);
    dw.resize(q.blocks * kRows);
    const bool q4 = w.dtype == DType::kU8;
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t r0 = p * kRows;
      const int valid = static_cast<int>(std::min<int64_t>(kRows, w.rows - r0));
      RepackPanel(w, r0, valid, panel.data(), dw.data());
      float* out = y + r0;
      const float* b = bias ? bias + r0 : nullptr;
      int64_t t = 0;
      for (; t + kTokens <= n; t += kTokens) {
        if (q4) Tile<kTokens, true>(panel.data(), dw.data(), q, t, valid, out, y_stride, b);
        else Tile<kTokens, false>(panel.data(), dw.data(), q, t, valid, out, y_stride, b);
      }
      switch (n - t) {
        case 1: q4 ? Tile<1, true>(panel.data(), dw.data(), q, t, valid, out, y_stride, b)
                   : Tile<1, false>(panel.data(), dw.data(), q, t, valid, out, y_stride, b); break;
        case 2: q4 ? Tile<2, true>(panel.data(), dw.data(), q, t, valid, out, y_stride, b)
                   : Tile<2, false>(panel.data(), dw.data(), q, t, valid, out, y_stride, b); break;
        case 3: q4 ? Tile<3, true>(panel.data(), dw.data(), q, t, valid, out, y_stride, b)
                   : Tile<3, false>(panel.data(), dw.data(), q, t, valid, out, y_stride, b); break;
        default: break;
      }
    }
  });
}
