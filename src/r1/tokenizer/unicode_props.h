// The few Unicode properties and normalization forms the tokenizer pipeline needs, defined the
// way the Rust reference defines them (char::is_whitespace, char::is_numeric, regex's \w), so
// added-token and digit splitting land on the same boundaries.
#pragma once

#include <string>
#include <string_view>

namespace r1::tok {

// Unicode White_Space property (Rust char::is_whitespace).
bool IsWhiteSpace(char32_t cp);
// Rust regex's Unicode \w: alphabetic, marks, decimal digits, connector punctuation, joiners.
bool IsWordChar(char32_t cp);
// Rust char::is_numeric: general categories Nd, Nl and No.
bool IsNumeric(char32_t cp);

enum class NormalForm { kNFC, kNFD, kNFKC, kNFKD };

// Appends the normalization of valid UTF-8 `in` to `out`. Returns false (appending nothing) when
// `in` is already known to be in that form, so callers can keep using the input as it is.
bool Normalize(NormalForm form, std::string_view in, std::string& out);

}  // namespace r1::tok
