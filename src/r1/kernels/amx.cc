#include "r1/kernels/amx.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "r1/kernels/simd.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace r1 {

namespace {

#if defined(__x86_64__)
bool DetectAmx() {
  if (DetectIsa() != IsaLevel::kAvx512 || !CpuHasAvx512Bf16() || !CpuHasAvx512Vnni()) return false;
  if (const char* cap = std::getenv("R1_ISA"); cap && std::string(cap) != "amx") return false;
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  constexpr unsigned kAmxBf16 = 1u << 22, kAmxTile = 1u << 24, kAmxInt8 = 1u << 25;
  if ((d & (kAmxBf16 | kAmxTile | kAmxInt8)) != (kAmxBf16 | kAmxTile | kAmxInt8)) return false;
  // ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA; kernels before 5.16 refuse it and have no AMX.
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}
#else
bool DetectAmx() { return false; }
#endif

std::atomic<bool>& Switch() {
  static std::atomic<bool> on{true};
  return on;
}

}  // namespace

bool CpuHasAmx() {
  static const bool yes = DetectAmx();
  return yes;
}

void SetAmx(bool on) { Switch() = on; }
bool AmxEnabled() { return Switch() && CpuHasAmx(); }

#if defined(__x86_64__)
R1_TARGET_AMX void ConfigureTiles(int count, const uint8_t* rows, const uint16_t* colsb) {
  struct alignas(64) {
    uint8_t palette = 1, start_row = 0;
    uint8_t reserved[14] = {};
    uint16_t colsb[16] = {};
    uint8_t rows[16] = {};
  } config;
  for (int i = 0; i < count && i < 8; ++i) {
    config.rows[i] = rows[i];
    config.colsb[i] = colsb[i];
  }
  // Not _tile_loadconfig: GCC 12 drops the stores above as dead before its builtin (the tiles
  // then stayed unconfigured and the first tile load faulted), while an asm operand reads them.
  asm volatile("ldtilecfg %0" : : "m"(config));
}
#else
void ConfigureTiles(int, const uint8_t*, const uint16_t*) {}
#endif

}  // namespace r1
