// Measures what this machine can do at best (memory read bandwidth, FP32 FMA throughput), so a
// benchmark can report its own figures as a fraction of the limits measured in the same run
// rather than against numbers taken on some other day or machine.
#pragma once

#include <cstddef>

namespace r1 {

struct MachineLimits {
  double read_bandwidth_gb_s;  // 1e9 bytes per second
  double peak_fp32_gflops;     // 1e9 FP32 flops per second, an FMA counting as two
  int threads;
};

// `threads` threads each sum their own slice of a `bytes`-long buffer with wide vector loads; the
// best of `reps` passes. The buffer must be far larger than the last-level cache (8x or more) or
// this measures the cache instead of memory. Throws r1::Error on bad arguments.
double MeasureReadBandwidthGBs(int threads, size_t bytes = 1ull << 30, int reps = 5);

// `threads` threads each run many independent FMA chains on the widest vectors the CPU has; the
// best of `reps` runs. Throws r1::Error on bad arguments.
double MeasurePeakFp32Gflops(int threads, int reps = 5);

// Both of the above with their defaults (the buffer grown to 8x the last-level cache where that is
// larger than 1 GiB). Takes about a second.
MachineLimits MeasureMachineLimits(int threads);

}  // namespace r1
