// Runtime ISA dispatch without a SIMD library: a kernel body is written once as an
// always-inline template of plain loops over fixed-width float arrays (which GCC vectorizes
// without -ffast-math because every lane keeps its own accumulator), and instantiated inside
// functions compiled for AVX-512, AVX2+FMA and baseline x86-64. The best one is chosen once, at
// first use, from what the running CPU supports.
#pragma once

#include <string>

#define R1_INLINE inline __attribute__((always_inline))

#if defined(__x86_64__)
#define R1_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi2")))
#define R1_TARGET_AVX2 __attribute__((target("avx2,fma,f16c,bmi2")))
#define R1_TARGET_AVX512_VNNI \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx2,fma,f16c,bmi2")))
#define R1_TARGET_AVX512_BF16 \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,avx2,fma,f16c,bmi2")))
#define R1_TARGET_AVX_VNNI __attribute__((target("avx2,fma,f16c,bmi2,avxvnni")))
#else
#define R1_TARGET_AVX512
#define R1_TARGET_AVX2
#define R1_TARGET_AVX512_VNNI
#define R1_TARGET_AVX512_BF16
#define R1_TARGET_AVX_VNNI
#endif

namespace r1 {

enum class IsaLevel { kBaseline, kAvx2, kAvx512 };

// The level used by the kernels; R1_ISA=baseline|avx2|avxvnni|avx512 in the environment caps it
// (avxvnni is the AVX2 level with AVX-VNNI allowed, avx2 without it).
IsaLevel DetectIsa();
const char* IsaName(IsaLevel level);
// The level with the dot-product extensions the kernels use on it, e.g. "AVX-512 + VNNI + BF16"
// or "AVX2+FMA + AVX-VNNI" (what `r1 bench` reports).
std::string KernelIsaDescription();

// AVX-512 (not capped by R1_ISA) plus VNNI's int8 dot products (`vpdpbusd`).
bool CpuHasAvx512Vnni();
// AVX-VNNI: `vpdpbusd` on 256-bit vectors, without AVX-512 (Alder Lake and later Intel client
// CPUs; Zen 5 has it beside AVX-512). True where the level is AVX2 or above and R1_ISA is not
// avx2 or baseline.
bool CpuHasAvxVnni();
// AVX-512 (not capped by R1_ISA) plus BF16 dot products (`vdpbf16ps`).
bool CpuHasAvx512Bf16();

// Whether the decode kernels' software prefetches of the weight stream go to L2 only
// (PREFETCHT1) rather than into L1 (PREFETCHT0). On the Intel Xeon (Sapphire Rapids class) of
// this machine kind, T0 on every weight line held L1 fill buffers for whole DRAM round trips and
// left two threads reading at 0.80-0.85 of a plain read loop; T1 read 6-15% faster on every
// decode shape (docs/performance.md). Zen 4 and later also fill L2 on T1 but are reported to
// drop some of them, and the AMD machine was measured with T0 only, so other CPUs keep it.
bool PrefetchToL2();

}  // namespace r1
