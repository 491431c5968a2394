// The int8-activation decode kernel for CPUs without AVX512-VNNI: AVX2's `vpmaddubsw`
// (Haswell to Comet Lake, Zen 1-3, and AVX-512 CPUs without VNNI such as Skylake-SP) or
// AVX-VNNI's 256-bit `vpdpbusd` (Alder Lake and later Intel client CPUs). Same tiles, activation
// layout and exact per-block integer sums as the AVX512-VNNI kernel in matvec_int8.cc, half the
// vector width. Without it these CPUs widened every Q8/Q4 weight to float32 in portable code,
// 50-75x slower in decode (docs/performance.md).
#include <algorithm>
#include <cstring>

#include "r1/core/dtype.h"
#include "r1/kernels/matvec_int8_internal.h"
#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <immintrin.h>

namespace r1::int8_detail {

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi2")
namespace avx2 {
#define R1_INT8_AVX_VNNI 0
#include "r1/kernels/matvec_int8_avx2_body.h"
#undef R1_INT8_AVX_VNNI

void QuantizeActivations(const float* x, int64_t cols, Int8Activations& o) {
  PrepareActivations(cols, o);
  for (int64_t b = 0; b < cols / kQuantBlock; ++b) {
    int sum;
    o.dx[b] = QuantizeBlockAvx2(x + b * kQuantBlock, o.code.data() + b * kQuantBlock, &sum);
    SpreadBlock(b, sum, o);
  }
}
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,bmi2,avxvnni")
namespace avx_vnni {
#define R1_INT8_AVX_VNNI 1
#include "r1/kernels/matvec_int8_avx2_body.h"
#undef R1_INT8_AVX_VNNI
}  // namespace avx_vnni
#pragma GCC pop_options

void QuantizeActivationsAvx2(const float* x, int64_t cols, Int8Activations& out) {
  avx2::QuantizeActivations(x, cols, out);
}

void Int8RowsAvx2(const Matrix& w, int64_t r0, int64_t r1, const Int8Activations* x, int64_t n,
                  float* y, int64_t y_stride, const float* bias) {
  if (CpuHasAvxVnni()) return avx_vnni::Rows(w, r0, r1, x, n, y, y_stride, bias);
  avx2::Rows(w, r0, r1, x, n, y, y_stride, bias);
}

}  // namespace r1::int8_detail
#endif
