#include "r1/tokenizer/unicode_utf8.h"

#include <cstdint>
#include <cstring>

namespace r1::tok {
namespace {

enum class SeqStatus { kValid, kInvalid, kTruncated };

// Classifies the sequence starting at p[i] (a non-ASCII byte) following the Unicode "maximal
// subpart" rule that from_utf8_lossy uses; `len` receives the valid length, the length of the
// invalid prefix to replace, or the length of the truncated tail.
SeqStatus Classify(const unsigned char* p, size_t n, size_t i, size_t& len) {
  const unsigned char b = p[i];
  size_t need;
  unsigned char lo = 0x80, hi = 0xBF;
  if (b >= 0xC2 && b <= 0xDF) {
    need = 1;
  } else if (b == 0xE0) {
    need = 2, lo = 0xA0;
  } else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) {
    need = 2;
  } else if (b == 0xED) {
    need = 2, hi = 0x9F;  // excludes surrogates
  } else if (b == 0xF0) {
    need = 3, lo = 0x90;  // excludes overlong forms
  } else if (b >= 0xF1 && b <= 0xF3) {
    need = 3;
  } else if (b == 0xF4) {
    need = 3, hi = 0x8F;  // stops at U+10FFFF
  } else {
    len = 1;
    return SeqStatus::kInvalid;
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= n) {
      len = k;
      return SeqStatus::kTruncated;
    }
    const unsigned char c = p[i + k];
    if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) {
      len = k;
      return SeqStatus::kInvalid;
    }
  }
  len = need + 1;
  return SeqStatus::kValid;
}

// Skips ASCII eight bytes at a time: most text is mostly ASCII.
size_t SkipAscii(const unsigned char* p, size_t n, size_t i) {
  while (i + 8 <= n) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    if (w & 0x8080808080808080ull) break;
    i += 8;
  }
  while (i < n && p[i] < 0x80) ++i;
  return i;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while ((i = SkipAscii(p, n, i)) < n) {
    size_t len;
    if (Classify(p, n, i, len) != SeqStatus::kValid) return false;
    i += len;
  }
  return true;
}

size_t AppendUtf8Lossy(std::string_view in, bool final, std::string& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  const size_t n = in.size();
  size_t run = 0;  // start of the pending valid run, copied in one go
  size_t i = 0;
  while ((i = SkipAscii(p, n, i)) < n) {
    size_t len;
    const SeqStatus st = Classify(p, n, i, len);
    if (st == SeqStatus::kValid) {
      i += len;
      continue;
    }
    out.append(in.data() + run, i - run);
    if (st == SeqStatus::kTruncated && !final) return i;
    out.append(kReplacementChar);
    i += len;
    run = i;
  }
  out.append(in.data() + run, n - run);
  return n;
}

std::string ToUtf8Lossy(std::string_view in) {
  std::string out;
  out.reserve(in.size() + 16);
  AppendUtf8Lossy(in, /*final=*/true, out);
  return out;
}

void AppendUtf8(char32_t cp, std::string& out) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace r1::tok
