// Intel AMX (Xeon Sapphire Rapids and later): eight tile registers of up to 16 rows x 64 bytes
// and a matrix unit that multiplies two tiles into a third; `tdpbf16ps` does 16 x 16 x 32 BF16
// multiply-adds per instruction into float32. The BF16 prefill GEMM uses it where it exists: on
// the Xeon it was measured on, `vdpbf16ps` ran at half the FP32 FMA rate and the tile unit at
// ~28x that (docs/performance.md). Q8/Q4 prompts use the same kernel on panels dequantized to
// BF16 (gemm_bf16.h): an int8 AMX kernel had to take every 32 columns' int32 sums out of the
// tiles to apply the per-block scales in AVX-512, and measured no faster than VNNI. Linux hands
// the tile registers' 8 KiB of state only to processes that ask (arch_prctl
// ARCH_REQ_XCOMP_PERM), which CpuHasAmx() does once.
#pragma once

#include <cstdint>

#if defined(__x86_64__)
#define R1_TARGET_AMX                                                                      \
  __attribute__((target("amx-tile,amx-int8,amx-bf16,avx512f,avx512bw,avx512vl,avx512dq," \
                        "avx512bf16,avx512vnni,avx2,fma,f16c,bmi2")))
#else
#define R1_TARGET_AMX
#endif

namespace r1 {

// AMX-TILE, AMX-INT8 and AMX-BF16 on an AVX-512 CPU, the kernel's permission granted, and
// R1_ISA unset or `amx` (any other cap, e.g. R1_ISA=avx512, leaves AMX out).
bool CpuHasAmx();

// Process-wide switch over CpuHasAmx() (default on), so tests can run both BF16 GEMM kernels in
// one process.
void SetAmx(bool on);
bool AmxEnabled();

// Loads this thread's tile configuration (palette 1): tile i gets rows[i] rows of colsb[i]
// bytes, tiles past `count` none. Each GEMM loads its own at the start of a task, since the
// configuration is per thread and another GEMM may have changed it.
void ConfigureTiles(int count, const uint8_t* rows, const uint16_t* colsb);

}  // namespace r1
