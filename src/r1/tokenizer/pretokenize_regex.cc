#include "r1/tokenizer/pretokenize_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <cctype>

#include "r1/core/error.h"

namespace r1::tok {
namespace {

std::string Pcre2Message(int code) {
  PCRE2_UCHAR buf[256];
  if (pcre2_get_error_message(code, buf, sizeof(buf)) < 0) return "error " + std::to_string(code);
  return reinterpret_cast<const char*>(buf);
}

bool IsHex(char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; }

// Matching state is per thread so that one Tokenizer can encode on many threads at once.
struct ThreadMatchState {
  pcre2_match_data* data = nullptr;
  pcre2_match_context* context = nullptr;
  pcre2_jit_stack* stack = nullptr;

  ThreadMatchState() {
    data = pcre2_match_data_create(1, nullptr);
    context = pcre2_match_context_create(nullptr);
    // The default 32 KiB JIT stack can run out on very long runs of one character class.
    stack = pcre2_jit_stack_create(32 * 1024, 64 * 1024 * 1024, nullptr);
    if (!data || !context || !stack) throw Error("tokenizer: out of memory for regex matching");
    pcre2_jit_stack_assign(context, nullptr, stack);
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(stack);
    pcre2_match_context_free(context);
    pcre2_match_data_free(data);
  }
};

ThreadMatchState& MatchState() {
  thread_local ThreadMatchState state;
  return state;
}

}  // namespace

std::string TranslateOnigPattern(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 8);
  bool in_class = false;
  for (size_t i = 0; i < p.size(); ++i) {
    const char ch = p[i];
    if (ch == '[' && !in_class) {
      in_class = true;
      out.push_back(ch);
      // A ']' right after the opening (or after '^') is a literal member, not the end.
      if (i + 1 < p.size() && p[i + 1] == '^') out.push_back(p[++i]);
      if (i + 1 < p.size() && p[i + 1] == ']') out.push_back(p[++i]);
      continue;
    }
    if (in_class && ch == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t close = p.find(":]", i + 2);
      if (close != std::string_view::npos) {
        out.append(p.substr(i, close + 2 - i));
        i = close + 1;
        continue;
      }
    }
    if (in_class && ch == ']') in_class = false;
    if (ch != '\\' || i + 1 >= p.size()) {
      out.push_back(ch);
      continue;
    }
    const char c = p[i + 1];
    if (c == 'u' && i + 5 < p.size() && IsHex(p[i + 2]) && IsHex(p[i + 3]) && IsHex(p[i + 4]) &&
        IsHex(p[i + 5])) {
      out += "\\x{";
      out.append(p.substr(i + 2, 4));
      out += "}";
      i += 5;
    } else if (c == 'h' || (c == 'H' && !in_class)) {
      // Ruby's \h is a hex digit where PCRE2's is horizontal space.
      if (c == 'h') out += in_class ? "0-9a-fA-F" : "[0-9a-fA-F]";
      else out += "[^0-9a-fA-F]";
      ++i;
    } else {
      out.push_back('\\');
      out.push_back(c);
      ++i;
    }
  }
  return out;
}

std::unique_ptr<Regex> Regex::Compile(std::string_view pattern, bool literal) {
  const std::string source = literal ? std::string(pattern) : TranslateOnigPattern(pattern);
  // Ruby syntax treats ^ and $ as line anchors.
  uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_MULTILINE;
  if (literal) options = PCRE2_UTF | PCRE2_LITERAL;
  int err = 0;
  PCRE2_SIZE err_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                                   options, &err, &err_offset, nullptr);
  if (!code) {
    throw Error("invalid split pattern '" + std::string(pattern) + "': " + Pcre2Message(err) +
                " at offset " + std::to_string(err_offset));
  }
  std::unique_ptr<Regex> re(new Regex());
  re->code_ = code;
  // Without JIT support matching still works, only slower.
  re->jit_ = pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) == 0;
  return re;
}

Regex::~Regex() { pcre2_code_free(code_); }

bool Regex::Find(std::string_view subject, size_t start, size_t& begin, size_t& end) const {
  ThreadMatchState& st = MatchState();
  const auto* s = reinterpret_cast<PCRE2_SPTR>(subject.data());
  const int rc = jit_ ? pcre2_jit_match(code_, s, subject.size(), start, 0, st.data, st.context)
                      : pcre2_match(code_, s, subject.size(), start, PCRE2_NO_UTF_CHECK, st.data,
                                    st.context);
  if (rc == PCRE2_ERROR_NOMATCH) return false;
  if (rc < 0) throw Error("tokenizer: regex matching failed: " + Pcre2Message(rc));
  const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(st.data);
  begin = ov[0];
  end = ov[1];
  return true;
}

}  // namespace r1::tok
