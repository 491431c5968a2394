// UTF-8 primitives shared by encoding (input cleanup) and decoding (output repair). Invalid
// input is repaired the way Rust's String::from_utf8_lossy does it, because that is what the
// reference tokenizer's callers see: each maximal invalid subsequence becomes one U+FFFD.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace r1::tok {

inline constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

bool IsValidUtf8(std::string_view s);

// Appends `in` to `out`, replacing invalid sequences with U+FFFD. With `final` false an
// incomplete sequence at the very end (one that further bytes could still complete) is left
// unconsumed, so a stream can be repaired piece by piece with exactly the result of repairing it
// whole. Returns how many bytes of `in` were consumed.
size_t AppendUtf8Lossy(std::string_view in, bool final, std::string& out);

std::string ToUtf8Lossy(std::string_view in);

// Decodes the code point starting at `pos` of valid UTF-8 and advances `pos` past it.
inline char32_t NextCodePoint(std::string_view s, size_t& pos) {
  const auto b0 = static_cast<unsigned char>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  auto cont = [&](size_t i) { return static_cast<char32_t>(static_cast<unsigned char>(s[pos + i]) & 0x3F); };
  char32_t cp;
  if (b0 < 0xE0) {
    cp = (static_cast<char32_t>(b0 & 0x1F) << 6) | cont(1);
    pos += 2;
  } else if (b0 < 0xF0) {
    cp = (static_cast<char32_t>(b0 & 0x0F) << 12) | (cont(1) << 6) | cont(2);
    pos += 3;
  } else {
    cp = (static_cast<char32_t>(b0 & 0x07) << 18) | (cont(1) << 12) | (cont(2) << 6) | cont(3);
    pos += 4;
  }
  return cp;
}

// Length in bytes of the valid UTF-8 character whose lead byte is `lead`.
inline size_t Utf8CharLength(unsigned char lead) {
  return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}

void AppendUtf8(char32_t cp, std::string& out);

}  // namespace r1::tok
