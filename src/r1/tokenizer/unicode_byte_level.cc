#include "r1/tokenizer/unicode_byte_level.h"

#include "r1/tokenizer/unicode_utf8.h"

namespace r1::tok {
namespace {

std::array<char32_t, 256> BuildChars() {
  std::array<char32_t, 256> chars{};
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
    chars[b] = printable ? static_cast<char32_t>(b) : next++;
  }
  return chars;
}

// Inverse table: the stand-ins all lie below U+0144.
constexpr char32_t kMaxStandIn = 0x144;

std::array<int, kMaxStandIn> BuildBytes() {
  std::array<int, kMaxStandIn> bytes;
  bytes.fill(-1);
  const auto& chars = ByteLevelChars();
  for (int b = 0; b < 256; ++b) bytes[chars[b]] = b;
  return bytes;
}

}  // namespace

const std::array<char32_t, 256>& ByteLevelChars() {
  static const std::array<char32_t, 256> chars = BuildChars();
  return chars;
}

const std::array<std::string, 256>& ByteLevelStrings() {
  static const std::array<std::string, 256> strings = [] {
    std::array<std::string, 256> s;
    for (int b = 0; b < 256; ++b) AppendUtf8(ByteLevelChars()[b], s[b]);
    return s;
  }();
  return strings;
}

std::string ByteLevelDecode(std::string_view token) {
  static const std::array<int, kMaxStandIn> bytes = BuildBytes();
  std::string out;
  out.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    const char32_t cp = NextCodePoint(token, pos);
    if (cp >= kMaxStandIn || bytes[cp] < 0) return std::string(token);
    out.push_back(static_cast<char>(bytes[cp]));
  }
  return out;
}

}  // namespace r1::tok
