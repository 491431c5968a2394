// Measures what this machine can do at best (memory read bandwidth, FP32 FMA, BF16 dot-product
// and INT8 dot-product throughput), so a benchmark can report its own figures as a fraction of
// the limits measured in the same run rather than against numbers taken on some other day or
// machine.
#pragma once

#include <cstddef>
#include <string>

namespace r1 {

struct MachineLimits {
  double read_bandwidth_gb_s;  // 1e9 bytes per second
  double peak_fp32_gflops;     // 1e9 FP32 flops per second, an FMA counting as two
  double peak_bf16_gflops;     // vdpbf16ps; 0 where the CPU lacks AVX512_BF16
  double peak_int8_gops;       // vpdpbusd; 0 where the CPU lacks AVX512_VNNI
  double peak_amx_bf16_gflops; // AMX tdpbf16ps; 0 where the CPU lacks AMX (or R1_ISA caps it)
  int threads;
};

// `threads` threads each sum their own slice of a `bytes`-long buffer with wide vector loads; the
// best of `reps` passes. The buffer must be far larger than the last-level cache (8x or more) or
// this measures the cache instead of memory. Throws r1::Error on bad arguments.
double MeasureReadBandwidthGBs(int threads, size_t bytes = 1ull << 30, int reps = 5);

// `threads` threads each run many independent FMA chains on the widest vectors the CPU has; the
// best of `reps` runs. Throws r1::Error on bad arguments.
double MeasurePeakFp32Gflops(int threads, int reps = 5);

// The peak of the dot-product instructions that BF16 and int8 kernels are built on, measured like
// the FP32 peak: `_mm512_dpbf16_ps` (32 BF16 pairs summed into 16 FP32 lanes: 64 flops) and
// `_mm512_dpbusd_epi32` (64 u8 x s8 products summed into 16 int32 lanes: 128 ops); without
// AVX512-VNNI, the int8 peak is that of the 256-bit AVX-VNNI `vpdpbusd` or, on plain AVX2, of
// `vpmaddubsw` + `vpaddw` (32 products: 64 ops), which the AVX2 kernels use. They are
// compiled for those extensions only, so the rest of the build stays generic x86-64; each returns
// 0 when the running CPU (or OS) does not support its instruction. R1_ISA=avx2|avxvnni|baseline
// caps these peaks (and the FP32 one) as it caps the kernels. Throws r1::Error on bad
// arguments.
double MeasurePeakBf16Gflops(int threads, int reps = 5);
double MeasurePeakInt8Gops(int threads, int reps = 5);

// The peak of AMX's `tdpbf16ps` (16 x 16 x 32 BF16 multiply-adds per instruction, into four
// independent float32 tiles), which the BF16 GEMM runs on where CpuHasAmx() (r1/kernels/amx.h);
// 0 elsewhere. Throws r1::Error on bad arguments.
double MeasurePeakAmxBf16Gflops(int threads, int reps = 5);

// Size of the buffer the bandwidth figure should use here: 1 GiB, grown to 8x the last-level cache
// where that is larger, but never more than a quarter of RAM.
size_t BandwidthBufferBytes();

// All of the above with their defaults. Takes about a second.
MachineLimits MeasureMachineLimits(int threads);

// The CPU's name as /proc/cpuinfo gives it ("AMD EPYC"), or "unknown".
std::string CpuModelName();

}  // namespace r1
