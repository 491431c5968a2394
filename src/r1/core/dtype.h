// Element types of stored tensors and the exact conversions between them and float32.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace r1 {

enum class DType { kF32, kF16, kBF16, kF8E4M3, kI64, kI32, kI8, kU8 };

// Size of one element in bytes.
size_t DTypeSize(DType t);
// Safetensors spelling ("F32", "BF16", "F8_E4M3", ...).
std::string_view DTypeName(DType t);
std::optional<DType> ParseDType(std::string_view safetensors_name);

inline float Bf16ToF32(uint16_t v) {
  uint32_t bits = static_cast<uint32_t>(v) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even; NaN stays NaN (a plain rounding add could carry it into infinity).
inline uint16_t F32ToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float F16ToF32(uint16_t h);
uint16_t F32ToF16(float f);

// FP8 E4M3FN (no infinities, NaN only at 0x7F/0xFF): a 256-entry table, exact in float32.
extern const float* const kFp8E4M3ToF32;
inline float Fp8E4M3ToF32(uint8_t code) { return kFp8E4M3ToF32[code]; }
// Round to nearest even, saturating at +-448 (what the DeepSeek encoder does by clamping).
uint8_t F32ToFp8E4M3(float f);

}  // namespace r1
