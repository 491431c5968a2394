#include "r1/kernels/matvec_int8.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "r1/core/dtype.h"
#include "r1/core/error.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define R1_TARGET_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c")))
#endif

namespace r1 {

namespace {

constexpr int64_t kGroup = 2 * kQuantBlock;  // 64 elements: one zmm of bytes

std::atomic<bool>& Enabled() {
  static std::atomic<bool> on = [] {
    const char* e = std::getenv("R1_INT8_ACTIVATIONS");
    return !(e && std::string(e) == "0");
  }();
  return on;
}

bool CpuHasVnni() {
#if defined(__x86_64__)
  static const bool yes = DetectIsa() == IsaLevel::kAvx512 &&
                          __builtin_cpu_supports("avx512vnni") &&
                          __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  return yes;
#else
  return false;
#endif
}

float Half(uint16_t h) { return F16ToF32(h); }

// Integer weight code of element c of row r (Q8: stored; Q4: nibble - 8).
int WeightCode(const Matrix& w, int64_t r, int64_t c) {
  if (w.dtype == DType::kI8) return reinterpret_cast<const int8_t*>(w.data)[r * w.cols + c];
  const uint8_t* row = w.data + r * w.row_bytes();
  const int64_t b = c / kQuantBlock, j = c % kQuantBlock;
  const uint8_t byte = row[b * (kQuantBlock / 2) + (j % 16)];
  return (j < 16 ? (byte & 15) : (byte >> 4)) - 8;
}

}  // namespace

void SetInt8Activations(bool on) { Enabled() = on; }
bool Int8ActivationsEnabled() { return Enabled(); }

bool Int8MatVecApplies(const Matrix& w) {
  return w.quantized() && w.qscale && w.cols > 0 && w.cols % kGroup == 0 && CpuHasVnni();
}

void QuantizeActivations(const float* x, int64_t cols, Int8Activations& o) {
  if (cols % kGroup) throw Error("QuantizeActivations: row length must be a multiple of 64");
  const int64_t groups = cols / kGroup, blocks = cols / kQuantBlock;
  o.cols = cols;
  o.code.resize(cols);
  o.dx.resize(blocks);
  o.q8_dx.resize(groups * 16);
  o.q4_code.resize(cols);
  o.q4_bias.resize(groups * 16);
  o.q4_dx.resize(groups * 16);
  for (int64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * kQuantBlock;
    float amax = 0;
    for (int j = 0; j < kQuantBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
    const float d = amax / 127.0f, inv = d > 0 ? 1.0f / d : 0.0f;
    o.dx[b] = d;
    for (int j = 0; j < kQuantBlock; ++j)
      o.code[b * kQuantBlock + j] =
          static_cast<int8_t>(std::clamp(std::nearbyint(xb[j] * inv), -127.0f, 127.0f));
  }
  for (int64_t g = 0; g < groups; ++g) {
    const int8_t* c = o.code.data() + g * kGroup;
    int8_t* q4 = o.q4_code.data() + g * kGroup;
    for (int k = 0; k < kGroup; ++k) {
      const int seg = k / 16, block = seg % 2, element = (seg / 2) * 16 + k % 16;
      q4[k] = c[block * kQuantBlock + element];
    }
    for (int lane = 0; lane < 16; ++lane) {
      o.q8_dx[g * 16 + lane] = o.dx[2 * g + lane / 8];
      o.q4_dx[g * 16 + lane] = o.dx[2 * g + (lane / 4) % 2];
      int sum = 0;
      for (int k = 0; k < 4; ++k) sum += q4[4 * lane + k];
      o.q4_bias[g * 16 + lane] = -8 * sum;
    }
  }
}

#if defined(__x86_64__)
// GCC 12's AVX-512 headers initialize `_mm512_undefined_*` from themselves, which its own
// -Wmaybe-uninitialized reports at every inlined use.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
namespace {

// Lane -> scale index within a run of 16 block scales, for group j of the run (8 groups).
struct ScaleIndex {
  __m512i q8[8], q4[8];
  R1_TARGET_VNNI ScaleIndex() {
    for (int j = 0; j < 8; ++j) {
      alignas(64) int32_t a[16], b[16];
      for (int lane = 0; lane < 16; ++lane) {
        a[lane] = 2 * j + lane / 8;
        b[lane] = 2 * j + (lane / 4) % 2;
      }
      q8[j] = _mm512_load_si512(a);
      q4[j] = _mm512_load_si512(b);
    }
  }
};

template <bool kQ4>
R1_TARGET_VNNI float RowDot(const Matrix& w, int64_t r, const Int8Activations& x,
                            const ScaleIndex& idx) {
  const int64_t groups = w.cols / kGroup, blocks = w.cols / kQuantBlock;
  const uint16_t* qs = w.qscale + r * blocks;
  const uint8_t* row = w.data + r * w.row_bytes();
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  __m512 scales = _mm512_setzero_ps();
  const __m256i low = _mm256_set1_epi8(15);
  for (int64_t g = 0; g < groups; ++g) {
    const int j = static_cast<int>(g % 8);
    if (j == 0) {
      // 16 block scales at a time; the mask keeps the load inside this row's scales.
      const int64_t left = std::min<int64_t>(16, blocks - 2 * g);
      const __mmask16 m = static_cast<__mmask16>((1u << left) - 1);
      scales = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, qs + 2 * g));
    }
    __m512i dot;
    __m512 dx;
    if constexpr (kQ4) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row + g * 32));
      const __m256i lo = _mm256_and_si256(v, low);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
      const __m512i codes = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
      dot = _mm512_dpbusd_epi32(_mm512_loadu_si512(x.q4_bias.data() + g * 16), codes,
                                _mm512_loadu_si512(x.q4_code.data() + g * kGroup));
      dx = _mm512_loadu_ps(x.q4_dx.data() + g * 16);
      dx = _mm512_mul_ps(dx, _mm512_permutexvar_ps(idx.q4[j], scales));
    } else {
      // vpdpbusd multiplies unsigned by signed bytes: |w| times x with w's sign moved onto it
      // (activation codes stop at -127, so negating one never overflows; -128 weights work).
      const __m512i wv = _mm512_loadu_si512(row + g * kGroup);
      const __mmask64 neg = _mm512_movepi8_mask(wv);
      const __m512i xv = _mm512_loadu_si512(x.code.data() + g * kGroup);
      const __m512i sx = _mm512_mask_sub_epi8(xv, neg, _mm512_setzero_si512(), xv);
      dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(wv), sx);
      dx = _mm512_loadu_ps(x.q8_dx.data() + g * 16);
      dx = _mm512_mul_ps(dx, _mm512_permutexvar_ps(idx.q8[j], scales));
    }
    if (g & 1)
      acc1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), dx, acc1);
    else
      acc0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(dot), dx, acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

R1_TARGET_VNNI void RowsVnni(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x,
                             int64_t n, float* y, int64_t y_stride, const float* bias) {
  static const ScaleIndex idx;
  for (int64_t r = r0; r < r1; ++r) {
    for (int64_t t = 0; t < n; ++t) {
      const float s = w.dtype == DType::kU8 ? RowDot<true>(w, r, x[t], idx)
                                            : RowDot<false>(w, r, x[t], idx);
      y[t * y_stride + r] = bias ? s + bias[r] : s;
    }
  }
}

}  // namespace
#pragma GCC diagnostic pop
#endif

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
        const float scale = q.dx[b] * Half(w.qscale[r * blocks + b]);
        s += static_cast<double>(isum) * scale;
      }
      y[t * w.rows + r] = static_cast<float>(bias ? s + bias[r] : s);
    }
  }
}

}  // namespace r1
