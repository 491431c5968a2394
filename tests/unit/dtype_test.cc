// Conversions between float32 and the stored weight types (model-spec §4.1, §4.2).
#include "r1/core/dtype.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace r1 {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

float FromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

uint32_t Bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

bool IsBf16NaN(uint16_t b) { return (b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0; }
bool IsF16NaN(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0; }

// --- metadata ------------------------------------------------------------------------------

TEST(DTypeTest, SizesAndNames) {
  const DType all[] = {DType::kF32, DType::kF16, DType::kBF16,
                       DType::kF8E4M3, DType::kI64, DType::kI32};
  const size_t sizes[] = {4, 2, 2, 1, 8, 4};
  const char* names[] = {"F32", "F16", "BF16", "F8_E4M3", "I64", "I32"};
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(DTypeSize(all[i]), sizes[i]);
    EXPECT_EQ(DTypeName(all[i]), names[i]);
    ASSERT_TRUE(ParseDType(names[i]).has_value()) << names[i];
    EXPECT_EQ(*ParseDType(names[i]), all[i]);
  }
  EXPECT_FALSE(ParseDType("F8_E5M2").has_value());
  EXPECT_FALSE(ParseDType("bf16").has_value());
  EXPECT_FALSE(ParseDType("").has_value());
}

// --- BF16 ----------------------------------------------------------------------------------

TEST(Bf16Test, SpecExamples) {
  EXPECT_EQ(F32ToBf16(1.0f), 0x3F80);  // §4.1
  EXPECT_EQ(F32ToBf16(-1.5f), 0xBFC0);
  EXPECT_EQ(F32ToBf16(0.0f), 0x0000);
  EXPECT_EQ(F32ToBf16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToBf16(kInf), 0x7F80);
  EXPECT_EQ(F32ToBf16(-kInf), 0xFF80);
  EXPECT_EQ(Bf16ToF32(0x3F80), 1.0f);
  EXPECT_EQ(Bf16ToF32(0xC040), -3.0f);
}

TEST(Bf16Test, RoundsToNearestEven) {
  // Exactly halfway: to the even code.
  EXPECT_EQ(F32ToBf16(FromBits(0x3F808000)), 0x3F80);
  EXPECT_EQ(F32ToBf16(FromBits(0x3F818000)), 0x3F82);
  EXPECT_EQ(F32ToBf16(FromBits(0xBF808000)), 0xBF80);
  EXPECT_EQ(F32ToBf16(FromBits(0xBF818000)), 0xBF82);
  // Either side of halfway.
  EXPECT_EQ(F32ToBf16(FromBits(0x3F808001)), 0x3F81);
  EXPECT_EQ(F32ToBf16(FromBits(0x3F807FFF)), 0x3F80);
  EXPECT_EQ(F32ToBf16(FromBits(0x3F81FFFF)), 0x3F82);
  // Carry into the exponent.
  EXPECT_EQ(F32ToBf16(FromBits(0x3FFFC000)), 0x4000);
  // Subnormals round the same way.
  EXPECT_EQ(F32ToBf16(FromBits(0x00008000)), 0x0000);
  EXPECT_EQ(F32ToBf16(FromBits(0x00018000)), 0x0002);
  // The largest float rounds up to infinity, as round-to-nearest-even must.
  EXPECT_EQ(F32ToBf16(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(F32ToBf16(FromBits(0x7F7F7FFF)), 0x7F7F);
}

TEST(Bf16Test, NaNStaysNaN) {
  EXPECT_TRUE(IsBf16NaN(F32ToBf16(std::numeric_limits<float>::quiet_NaN())));
  // NaNs whose payload lies only in the low 16 bits would truncate (or round) to infinity.
  for (uint32_t u : {0x7F800001u, 0x7F80FFFFu, 0x7FFFFFFFu, 0xFF800001u, 0xFFFFFFFFu,
                     0x7FC00000u, 0xFFC00000u, 0x7F808000u}) {
    const uint16_t b = F32ToBf16(FromBits(u));
    EXPECT_TRUE(IsBf16NaN(b)) << std::hex << u << " -> " << b;
    EXPECT_EQ(b & 0x8000, (u >> 16) & 0x8000) << std::hex << u;
    EXPECT_TRUE(std::isnan(Bf16ToF32(b)));
  }
}

TEST(Bf16Test, EveryCodeRoundTripsAndMidpointsGoToEven) {
  for (uint32_t code = 0; code < 0x10000; ++code) {
    const uint16_t b = static_cast<uint16_t>(code);
    const float f = Bf16ToF32(b);
    ASSERT_EQ(Bits(f), code << 16);
    if (IsBf16NaN(b)) {
      ASSERT_TRUE(IsBf16NaN(F32ToBf16(f))) << std::hex << code;
      continue;
    }
    ASSERT_EQ(F32ToBf16(f), b) << std::hex << code;
    // Midpoint to the next code up in magnitude (exactly representable in float32).
    if ((code & 0x7fff) < 0x7f80) {
      const uint32_t mid = (code << 16) | 0x8000u;
      const uint16_t even = (code & 1) ? static_cast<uint16_t>(code + 1) : b;
      ASSERT_EQ(F32ToBf16(FromBits(mid)), even) << std::hex << mid;
      ASSERT_EQ(F32ToBf16(FromBits(mid - 1)), b) << std::hex << mid - 1;
      ASSERT_EQ(F32ToBf16(FromBits(mid + 1)), static_cast<uint16_t>(code + 1)) << std::hex << mid;
    }
  }
}

// --- FP8 E4M3FN ----------------------------------------------------------------------------

// model-spec §4.2, evaluated in double.
double Fp8Formula(int code) {
  const int s = code >> 7, e = (code >> 3) & 0xF, m = code & 7;
  double v;
  if (e == 0) {
    v = m / 8.0 * std::ldexp(1.0, -6);
  } else if (e == 15 && m == 7) {
    return std::numeric_limits<double>::quiet_NaN();
  } else {
    v = (1 + m / 8.0) * std::ldexp(1.0, e - 7);
  }
  return s ? -v : v;
}

TEST(Fp8Test, SpecTableValues) {
  EXPECT_EQ(Fp8E4M3ToF32(0x38), 1.0f);
  EXPECT_EQ(Fp8E4M3ToF32(0xB8), -1.0f);
  EXPECT_EQ(Fp8E4M3ToF32(0x7E), 448.0f);
  EXPECT_EQ(Fp8E4M3ToF32(0xFE), -448.0f);
  EXPECT_EQ(Fp8E4M3ToF32(0x01), 0.001953125f);  // 2^-9
  EXPECT_EQ(Fp8E4M3ToF32(0x08), 0.015625f);     // 2^-6
  EXPECT_EQ(Fp8E4M3ToF32(0x07), 7.0f / 512.0f);  // largest subnormal
  EXPECT_EQ(Fp8E4M3ToF32(0x00), 0.0f);
  EXPECT_FALSE(std::signbit(Fp8E4M3ToF32(0x00)));
  EXPECT_EQ(Fp8E4M3ToF32(0x80), 0.0f);
  EXPECT_TRUE(std::signbit(Fp8E4M3ToF32(0x80)));
  EXPECT_TRUE(std::isnan(Fp8E4M3ToF32(0x7F)));
  EXPECT_TRUE(std::isnan(Fp8E4M3ToF32(0xFF)));
  EXPECT_EQ(Fp8E4M3ToF32(0x77), 240.0f);  // e 14, m 7: no infinity at e 15
  EXPECT_EQ(Fp8E4M3ToF32(0x78), 256.0f);
}

TEST(Fp8Test, WholeTableMatchesFormula) {
  for (int code = 0; code < 256; ++code) {
    const double want = Fp8Formula(code);
    const float got = kFp8E4M3ToF32[code];
    EXPECT_EQ(Bits(Fp8E4M3ToF32(static_cast<uint8_t>(code))), Bits(got)) << "code " << code;
    if (std::isnan(want)) {
      EXPECT_TRUE(std::isnan(got)) << "code " << code;
      EXPECT_TRUE(code == 0x7F || code == 0xFF) << "code " << code;
    } else {
      EXPECT_EQ(static_cast<double>(got), want) << "code " << code;
      EXPECT_EQ(std::signbit(got), code >= 0x80) << "code " << code;
    }
  }
}

TEST(Fp8Test, EveryFiniteCodeRoundTrips) {
  for (int code = 0; code < 256; ++code) {
    if (code == 0x7F || code == 0xFF) continue;
    EXPECT_EQ(F32ToFp8E4M3(kFp8E4M3ToF32[code]), code) << "code " << code;
  }
}

TEST(Fp8Test, RoundsToNearestEvenBetweenEveryPairOfCodes) {
  for (int code = 0; code < 0x7E; ++code) {
    const float lo = kFp8E4M3ToF32[code], hi = kFp8E4M3ToF32[code + 1];
    const float mid = 0.5f * (lo + hi);  // exact: FP8 has 4 significant bits
    const int even = (code & 1) ? code + 1 : code;
    EXPECT_EQ(F32ToFp8E4M3(mid), even) << "between codes " << code << " and " << code + 1;
    EXPECT_EQ(F32ToFp8E4M3(std::nextafter(mid, 0.0f)), code) << "code " << code;
    EXPECT_EQ(F32ToFp8E4M3(std::nextafter(mid, kInf)), code + 1) << "code " << code;
    EXPECT_EQ(F32ToFp8E4M3(-mid), 0x80 | even) << "code " << code;
    EXPECT_EQ(F32ToFp8E4M3(-std::nextafter(mid, kInf)), 0x80 | (code + 1)) << "code " << code;
  }
  EXPECT_EQ(F32ToFp8E4M3(1.0625f), 0x38);  // tie between 1 and 1.125
  EXPECT_EQ(F32ToFp8E4M3(1.1875f), 0x3A);  // tie between 1.125 and 1.25
  EXPECT_EQ(F32ToFp8E4M3(std::ldexp(1.0f, -10)), 0x00);  // tie between 0 and 2^-9
  EXPECT_EQ(F32ToFp8E4M3(3 * std::ldexp(1.0f, -10)), 0x02);
  EXPECT_EQ(F32ToFp8E4M3(1e-10f), 0x00);
  EXPECT_EQ(F32ToFp8E4M3(-1e-10f), 0x80);
}

TEST(Fp8Test, SaturatesAt448) {
  for (float v : {448.0f, 449.0f, 456.0f, 464.0f, 479.0f, 480.0f, 1000.0f, 1e30f, kInf}) {
    EXPECT_EQ(F32ToFp8E4M3(v), 0x7E) << v;
    EXPECT_EQ(F32ToFp8E4M3(-v), 0xFE) << -v;
  }
  EXPECT_EQ(F32ToFp8E4M3(std::numeric_limits<float>::max()), 0x7E);
  EXPECT_EQ(F32ToFp8E4M3(440.0f), 0x7E);  // nearest
  EXPECT_EQ(F32ToFp8E4M3(431.0f), 0x7D);  // 416 .. 448, below the midpoint
  const uint8_t nan_code = F32ToFp8E4M3(std::numeric_limits<float>::quiet_NaN());
  EXPECT_TRUE(std::isnan(Fp8E4M3ToF32(nan_code)));
}

// --- F16 -----------------------------------------------------------------------------------

// IEEE half decoded in double.
double F16Formula(uint16_t h) {
  const int e = (h >> 10) & 0x1f, m = h & 0x3ff;
  double v;
  if (e == 31) {
    v = m ? std::numeric_limits<double>::quiet_NaN() : std::numeric_limits<double>::infinity();
  } else if (e == 0) {
    v = std::ldexp(m, -24);
  } else {
    v = std::ldexp(1024 + m, e - 25);
  }
  return (h & 0x8000) ? -v : v;
}

TEST(F16Test, Examples) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3C00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xC000);
  EXPECT_EQ(F32ToF16(0.0f), 0x0000);
  EXPECT_EQ(F32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7BFF);               // largest finite
  EXPECT_EQ(F32ToF16(65519.0f), 0x7BFF);               // below the rounding boundary
  EXPECT_EQ(F32ToF16(65520.0f), 0x7C00);               // the tie rounds to infinity
  EXPECT_EQ(F32ToF16(kInf), 0x7C00);
  EXPECT_EQ(F32ToF16(-kInf), 0xFC00);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -14)), 0x0400);  // smallest normal
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -24)), 0x0001);  // smallest subnormal
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -25)), 0x0000);  // tie to even (zero)
  EXPECT_EQ(F32ToF16(3 * std::ldexp(1.0f, -25)), 0x0002);
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(F32ToF16(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(F32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie to even
  EXPECT_EQ(F32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie to even
  // Largest subnormal + half a step: ties to the even code, which is the smallest normal.
  EXPECT_EQ(F32ToF16(std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25)), 0x0400);
  EXPECT_TRUE(IsF16NaN(F32ToF16(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_TRUE(IsF16NaN(F32ToF16(FromBits(0x7F800001))));
  EXPECT_EQ(F16ToF32(0x3C00), 1.0f);
  EXPECT_EQ(F16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(F16ToF32(0x03FF), 1023 * std::ldexp(1.0f, -24));
  EXPECT_EQ(F16ToF32(0x7BFF), 65504.0f);
  EXPECT_EQ(F16ToF32(0x7C00), kInf);
  EXPECT_EQ(F16ToF32(0xFC00), -kInf);
  EXPECT_TRUE(std::isnan(F16ToF32(0x7E00)));
  EXPECT_TRUE(std::signbit(F16ToF32(0x8000)));
}

TEST(F16Test, EveryCodeDecodesExactlyAndRoundTrips) {
  for (uint32_t code = 0; code < 0x10000; ++code) {
    const uint16_t h = static_cast<uint16_t>(code);
    const float f = F16ToF32(h);
    const double want = F16Formula(h);
    if (std::isnan(want)) {
      ASSERT_TRUE(std::isnan(f)) << std::hex << code;
      ASSERT_TRUE(IsF16NaN(F32ToF16(f))) << std::hex << code;
      continue;
    }
    ASSERT_EQ(static_cast<double>(f), want) << std::hex << code;
    ASSERT_EQ(std::signbit(f), (code & 0x8000) != 0) << std::hex << code;
    ASSERT_EQ(F32ToF16(f), h) << std::hex << code;
  }
}

TEST(F16Test, MidpointsGoToEven) {
  for (uint32_t code = 0; code < 0x7BFF; ++code) {
    const float lo = F16ToF32(static_cast<uint16_t>(code));
    const float hi = F16ToF32(static_cast<uint16_t>(code + 1));
    const float mid = 0.5f * (lo + hi);  // exact: 11 significant bits at most
    const uint16_t even = static_cast<uint16_t>((code & 1) ? code + 1 : code);
    ASSERT_EQ(F32ToF16(mid), even) << std::hex << code;
    ASSERT_EQ(F32ToF16(std::nextafter(mid, 0.0f)), code) << std::hex << code;
    ASSERT_EQ(F32ToF16(std::nextafter(mid, kInf)), code + 1) << std::hex << code;
    ASSERT_EQ(F32ToF16(-mid), 0x8000 | even) << std::hex << code;
  }
}

}  // namespace
}  // namespace r1
