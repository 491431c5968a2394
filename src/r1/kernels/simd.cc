#include "r1/kernels/simd.h"

#include "r1/kernels/amx.h"

#include <cstdlib>
#include <string>

namespace r1 {

IsaLevel DetectIsa() {
  static const IsaLevel level = [] {
    IsaLevel best = IsaLevel::kBaseline;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) best = IsaLevel::kAvx2;
    if (best == IsaLevel::kAvx2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq")) {
      best = IsaLevel::kAvx512;
    }
#endif
    if (const char* cap = std::getenv("R1_ISA")) {
      const std::string s = cap;
      IsaLevel want = s == "baseline" ? IsaLevel::kBaseline
                      : s == "avx2" || s == "avxvnni" ? IsaLevel::kAvx2
                                      : IsaLevel::kAvx512;
      if (want < best) best = want;
    }
    return best;
  }();
  return level;
}

bool CpuHasAvx512Vnni() {
#if defined(__x86_64__)
  static const bool yes = DetectIsa() == IsaLevel::kAvx512 && __builtin_cpu_supports("avx512vnni");
  return yes;
#else
  return false;
#endif
}

bool CpuHasAvxVnni() {
#if defined(__x86_64__)
  static const bool yes = [] {
    const char* cap = std::getenv("R1_ISA");
    if (cap && (std::string(cap) == "avx2" || std::string(cap) == "baseline")) return false;
    return DetectIsa() >= IsaLevel::kAvx2 && __builtin_cpu_supports("avxvnni");
  }();
  return yes;
#else
  return false;
#endif
}

bool CpuHasAvx512Bf16() {
#if defined(__x86_64__)
  static const bool yes = DetectIsa() == IsaLevel::kAvx512 && __builtin_cpu_supports("avx512bf16");
  return yes;
#else
  return false;
#endif
}

bool PrefetchToL2() {
#if defined(__x86_64__)
  static const bool intel = __builtin_cpu_is("intel");
  return intel;
#else
  return false;
#endif
}

std::string KernelIsaDescription() {
  std::string s = IsaName(DetectIsa());
  if (CpuHasAvx512Vnni()) s += " + VNNI";
  if (CpuHasAvx512Bf16()) s += " + BF16";
  if (!CpuHasAvx512Vnni() && CpuHasAvxVnni()) s += " + AVX-VNNI";
  if (AmxEnabled()) s += " + AMX";
  return s;
}

const char* IsaName(IsaLevel level) {
  switch (level) {
    case IsaLevel::kBaseline: return "x86-64 baseline";
    case IsaLevel::kAvx2: return "AVX2+FMA";
    case IsaLevel::kAvx512: return "AVX-512";
  }
  return "?";
}

}  // namespace r1
