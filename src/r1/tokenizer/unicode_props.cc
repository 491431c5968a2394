#include "r1/tokenizer/unicode_props.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "r1/core/error.h"
#include "r1/tokenizer/unicode_utf8.h"

namespace r1::tok {

bool IsWhiteSpace(char32_t cp) {
  if (cp <= 0x20) return cp == 0x20 || (cp >= 0x09 && cp <= 0x0D);
  switch (cp) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return cp >= 0x2000 && cp <= 0x200A;
  }
}

bool IsWordChar(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  }
  if (cp == 0x200C || cp == 0x200D) return true;  // Join_Control
  // Circled letters are symbols that Unicode nevertheless calls Alphabetic.
  if (cp >= 0x24B6 && cp <= 0x24E9) return true;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_MN: case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND: case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

bool IsNumeric(char32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(cp));
  return cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NL || cat == UTF8PROC_CATEGORY_NO;
}

bool Normalize(NormalForm form, std::string_view in, std::string& out) {
  // Below U+0300 nothing decomposes under NFC and nothing there combines with a preceding
  // character, so such text is already NFC; the decomposing forms only get the ASCII shortcut.
  const char32_t stable_below = form == NormalForm::kNFC ? 0x300 : 0x80;
  bool stable = true;
  for (size_t pos = 0; pos < in.size();) {
    if (static_cast<unsigned char>(in[pos]) < 0x80) {
      ++pos;
      continue;
    }
    if (NextCodePoint(in, pos) >= stable_below) {
      stable = false;
      break;
    }
  }
  if (stable) return false;

  int options = UTF8PROC_STABLE;
  switch (form) {
    case NormalForm::kNFC: options |= UTF8PROC_COMPOSE; break;
    case NormalForm::kNFD: options |= UTF8PROC_DECOMPOSE; break;
    case NormalForm::kNFKC: options |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    case NormalForm::kNFKD: options |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
  }
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t n =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(in.data()),
                   static_cast<utf8proc_ssize_t>(in.size()), &result,
                   static_cast<utf8proc_option_t>(options));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(result, &std::free);
  // Input is valid UTF-8 by the time it gets here, so only running out of memory can fail.
  if (n < 0) throw Error(std::string("tokenizer: Unicode normalization failed: ") +
                         utf8proc_errmsg(n));
  out.append(reinterpret_cast<const char*>(result), static_cast<size_t>(n));
  return true;
}

}  // namespace r1::tok
