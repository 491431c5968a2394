// A compiled split pattern. The reference tokenizer runs these patterns with Oniguruma (Ruby
// syntax, Unicode classes); PCRE2 in UTF + UCP mode, JIT compiled, matches the same way for the
// patterns tokenizer.json files use, after a few spelling differences are translated.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "r1/tokenizer/unicode_utf8.h"

struct pcre2_real_code_8;

namespace r1::tok {

class Regex {
 public:
  // `literal`: match `pattern` as plain text. Throws r1::Error with PCRE2's message and the
  // offending pattern when it does not compile.
  static std::unique_ptr<Regex> Compile(std::string_view pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Leftmost match at or after byte `start` of valid UTF-8 `subject` (the whole subject stays
  // visible to lookaround). False when there is none.
  bool Find(std::string_view subject, size_t start, size_t& begin, size_t& end) const;

  // Calls fn(begin, end) for successive matches, stepping over an empty match that directly
  // follows the previous match the way Oniguruma's find_iter does.
  template <class Fn>
  void ForEachMatch(std::string_view subject, Fn&& fn) const {
    size_t search = 0;
    bool matched_before = false;
    size_t last_end = 0;
    while (search <= subject.size()) {
      size_t b, e;
      if (!Find(subject, search, b, e)) return;
      if (b == e && matched_before && last_end == e) {
        search += search < subject.size()
                      ? Utf8CharLength(static_cast<unsigned char>(subject[search]))
                      : 1;
        continue;
      }
      search = e;
      matched_before = true;
      last_end = e;
      fn(b, e);
    }
  }

 private:
  Regex() = default;
  pcre2_real_code_8* code_ = nullptr;
  bool jit_ = false;
};

// Rewrites Oniguruma spellings PCRE2 reads differently (\uHHHH, \h); exposed for tests.
std::string TranslateOnigPattern(std::string_view pattern);

}  // namespace r1::tok
