// Python string semantics over UTF-8 bytes, for the Jinja interpreter. Templates index, slice,
// strip and case-map strings the way Python 3 does (by code point, with Unicode whitespace), and
// chat templates are full of non-ASCII text, so byte-wise approximations would change renders.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace r1::jinja {

// Decodes UTF-8 into code points; invalid bytes decode as themselves (U+0080..U+00FF) so no input
// is rejected and Encode(Decode(s)) is close to s for the text templates actually see.
std::u32string DecodeUtf8(std::string_view s);
std::string EncodeUtf8(std::u32string_view cps);
void AppendUtf8(char32_t cp, std::string* out);
size_t CodePointCount(std::string_view s);

// str.isspace() for one code point.
bool IsPySpace(char32_t cp);

// str.strip / lstrip / rstrip. With chars == nullptr strips Python whitespace, otherwise the code
// points in *chars.
std::string PyStrip(std::string_view s, const std::string* chars, bool left, bool right);

// str.split(sep, maxsplit) and str.rsplit; sep == nullptr splits on runs of whitespace.
std::vector<std::string> PySplit(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> PyRSplit(std::string_view s, const std::string* sep, int64_t maxsplit);
std::vector<std::string> PySplitLines(std::string_view s);

// str.replace(old, new, count); count < 0 replaces every occurrence.
std::string PyReplace(std::string_view s, std::string_view from, std::string_view to,
                      int64_t count);

// str.find / rfind, returning a code point index or -1.
int64_t PyFind(std::string_view s, std::string_view sub, bool reverse);
int64_t PyCount(std::string_view s, std::string_view sub);

std::string PyLower(std::string_view s);
std::string PyUpper(std::string_view s);
std::string PyTitle(std::string_view s);
std::string PyCapitalize(std::string_view s);

// Python repr() of a str: single quotes unless the text has ' and no ".
std::string PyStrRepr(std::string_view s);

// Python repr() of a float: shortest round-trip digits, exponent form outside [1e-4, 1e16).
std::string PyFloatRepr(double v);

}  // namespace r1::jinja
