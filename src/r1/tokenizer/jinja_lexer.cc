#include "r1/tokenizer/jinja_lexer.h"

#include <algorithm>
#include <cstring>

#include "r1/core/error.h"
#include "r1/tokenizer/jinja_text.h"

namespace r1::jinja {
namespace {

// Jinja2 normalises every newline to "\n" before lexing and, unless keep_trailing_newline is set,
// drops one trailing newline.
std::string NormalizeNewlines(std::string_view src, bool keep_trailing_newline) {
  std::string out;
  out.reserve(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (src[i] == '\r') {
      out.push_back('\n');
      if (i + 1 < src.size() && src[i + 1] == '\n') ++i;
    } else {
      out.push_back(src[i]);
    }
  }
  if (!keep_trailing_newline && !out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }

// Length in bytes of the Python-whitespace run (`\s*`) starting at pos.
size_t SpaceRun(const std::string& s, size_t pos) {
  size_t i = pos;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      if (!IsAsciiSpace(s[i]) && !IsPySpace(static_cast<unsigned char>(s[i]))) break;
      ++i;
      continue;
    }
    size_t len = 1;
    while (i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
    const std::u32string cp = DecodeUtf8(std::string_view(s).substr(i, len));
    if (cp.size() != 1 || !IsPySpace(cp[0])) break;
    i += len;
  }
  return i - pos;
}

class Lexer {
 public:
  Lexer(std::string_view source, const std::string& name, const LexOptions& options)
      : src_(NormalizeNewlines(source, options.keep_trailing_newline)),
        name_(name),
        opt_(options) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> Run() {
    while (pos_ < src_.size()) LexRoot();
    Token eof;
    eof.type = TokenType::kEof;
    SetPos(&eof, src_.size());
    tokens_.push_back(std::move(eof));
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void Fail(size_t at, const std::string& msg) const {
    int line = 0, col = 0;
    LineCol(at, &line, &col);
    throw Error("jinja template '" + name_ + "' line " + std::to_string(line) + " column " +
                std::to_string(col) + ": " + msg);
  }

  void LineCol(size_t at, int* line, int* col) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
    const size_t idx = static_cast<size_t>(it - line_starts_.begin()) - 1;
    *line = static_cast<int>(idx) + 1;
    *col = static_cast<int>(CodePointCount(std::string_view(src_).substr(
               line_starts_[idx], at - line_starts_[idx]))) + 1;
  }

  void SetPos(Token* t, size_t at) const { LineCol(at, &t->line, &t->col); }

  void Push(TokenType type, std::string value, size_t at) {
    Token t;
    t.type = type;
    t.value = std::move(value);
    SetPos(&t, at);
    tokens_.push_back(std::move(t));
  }

  bool At(size_t p, const char* lit) const {
    return src_.compare(p, std::strlen(lit), lit) == 0;
  }

  // Jinja's OptionalLStrip: the text before a tag loses trailing whitespace for "-", and for
  // lstrip_blocks the spaces between the last line start and a block or comment tag.
  void EmitText(std::string text, char sign, bool is_variable) {
    if (sign == '-') {
      text = PyStrip(text, nullptr, false, true);
    } else if (sign != '+' && opt_.lstrip_blocks && !is_variable) {
      const size_t nl = text.rfind('\n');
      const size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && l_pos < text.size() &&
          SpaceRun(text, l_pos) == text.size() - l_pos) {
        text.resize(l_pos);
      }
    }
    if (!text.empty()) Push(TokenType::kData, std::move(text), pos_);
  }

  // Matches `{%(-|+|)\s*raw\s*(-%}\s*|%})` at p; returns the end of the match or npos.
  size_t MatchRawBegin(size_t p) const {
    size_t i = p + 2;
    if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) ++i;
    i += SpaceRun(src_, i);
    if (!At(i, "raw")) return std::string::npos;
    i += 3;
    i += SpaceRun(src_, i);
    if (At(i, "-%}")) return i + 3 + SpaceRun(src_, i + 3);
    if (At(i, "%}")) return i + 2;
    return std::string::npos;
  }

  void LexRoot() {
    size_t p = pos_;
    while (true) {
      p = src_.find('{', p);
      if (p == std::string::npos || p + 1 >= src_.size()) {
        Push(TokenType::kData, src_.substr(pos_), pos_);
        pos_ = src_.size();
        return;
      }
      const char k = src_[p + 1];
      if (k == '%' || k == '{' || k == '#') break;
      ++p;
    }
    const char kind = src_[p + 1];
    const char sign = (p + 2 < src_.size() && (src_[p + 2] == '-' || src_[p + 2] == '+'))
                          ? src_[p + 2] : '\0';
    std::string text = src_.substr(pos_, p - pos_);
    const size_t raw_end = kind == '%' ? MatchRawBegin(p) : std::string::npos;
    EmitText(std::move(text), sign, kind == '{');
    if (raw_end != std::string::npos) {
      line_starting_ = src_[raw_end - 1] == '\n';
      pos_ = raw_end;
      LexRaw(p);
      return;
    }
    const size_t tag_start = p;
    pos_ = p + 2 + (sign != '\0' ? 1 : 0);
    line_starting_ = false;
    if (kind == '#') {
      LexComment(tag_start);
    } else {
      Push(kind == '%' ? TokenType::kBlockBegin : TokenType::kVariableBegin,
           kind == '%' ? "{%" : "{{", tag_start);
      LexTag(kind == '%', tag_start);
    }
  }

  void LexRaw(size_t begin_at) {
    size_t p = pos_;
    while (true) {
      p = src_.find("{%", p);
      if (p == std::string::npos) Fail(begin_at, "missing end of raw directive");
      size_t i = p + 2;
      char sign = '\0';
      if (i < src_.size() && (src_[i] == '-' || src_[i] == '+')) sign = src_[i++];
      i += SpaceRun(src_, i);
      if (!At(i, "endraw")) {
        ++p;
        continue;
      }
      i += 6;
      i += SpaceRun(src_, i);
      size_t end;
      if (At(i, "+%}")) {
        end = i + 3;
      } else if (At(i, "-%}")) {
        end = i + 3 + SpaceRun(src_, i + 3);
      } else if (At(i, "%}")) {
        end = i + 2;
        if (opt_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
      } else {
        ++p;
        continue;
      }
      EmitText(src_.substr(pos_, p - pos_), sign, false);
      pos_ = end;
      line_starting_ = src_[end - 1] == '\n';
      return;
    }
  }

  void LexComment(size_t begin_at) {
    size_t q = src_.find("#}", pos_);
    if (q == std::string::npos) Fail(begin_at, "missing end of comment tag");
    size_t end;
    if (q > pos_ && src_[q - 1] == '-') {
      end = q + 2 + SpaceRun(src_, q + 2);
    } else if (q > pos_ && src_[q - 1] == '+') {
      end = q + 2;
    } else {
      end = q + 2;
      if (opt_.trim_blocks && end < src_.size() && src_[end] == '\n') ++end;
    }
    pos_ = end;
    line_starting_ = src_[end - 1] == '\n';
  }

  // Tokens inside {% %} or {{ }} up to and including the closing delimiter.
  void LexTag(bool block, size_t begin_at) {
    std::vector<std::pair<char, size_t>> balance;
    while (true) {
      if (pos_ >= src_.size()) {
        Fail(begin_at, std::string("unclosed '") + (block ? "{%" : "{{") + "' tag: expected '" +
                           (block ? "%}" : "}}") + "' before the end of the template");
      }
      if (balance.empty() && LexTagEnd(block)) return;
      const char c = src_[pos_];
      if (IsAsciiSpace(c)) {
        ++pos_;
        continue;
      }
      const size_t start = pos_;
      if (IsDigit(c)) {
        LexNumber();
      } else if (IsNameStart(c)) {
        size_t e = pos_;
        while (e < src_.size() && IsNameChar(src_[e])) ++e;
        Push(TokenType::kName, src_.substr(pos_, e - pos_), start);
        pos_ = e;
      } else if (c == '\'' || c == '"') {
        LexString();
      } else {
        static const char* const kOps[] = {"//", "**", "==", "!=", ">=", "<=", "+", "-", "/",
                                           "*",  "%",  "~",  "[",  "]",  "(",  ")", "{", "}",
                                           ">",  "<",  "=",  ".",  ":",  "|",  ",", ";"};
        const char* op = nullptr;
        for (const char* candidate : kOps) {
          if (At(pos_, candidate)) {
            op = candidate;
            break;
          }
        }
        if (op == nullptr) {
          Fail(start, "unexpected char " + PyStrRepr(std::string(1, c)) + " in tag");
        }
        const char o = op[0];
        if (op[1] == '\0' && (o == '(' || o == '[' || o == '{')) {
          balance.emplace_back(o, start);
        } else if (op[1] == '\0' && (o == ')' || o == ']' || o == '}')) {
          const char want = o == ')' ? '(' : o == ']' ? '[' : '{';
          if (balance.empty()) Fail(start, std::string("unexpected '") + o + "'");
          if (balance.back().first != want) {
            Fail(start, std::string("unexpected '") + o + "', expected the closing bracket of '" +
                            balance.back().first + "'");
          }
          balance.pop_back();
        }
        Push(TokenType::kOperator, op, start);
        pos_ += std::strlen(op);
      }
    }
  }

  bool LexTagEnd(bool block) {
    const size_t start = pos_;
    if (block) {
      if (At(pos_, "+%}")) {
        pos_ += 3;
      } else if (At(pos_, "-%}")) {
        pos_ += 3;
        pos_ += SpaceRun(src_, pos_);
      } else if (At(pos_, "%}")) {
        pos_ += 2;
        if (opt_.trim_blocks && pos_ < src_.size() && src_[pos_] == '\n') ++pos_;
      } else {
        return false;
      }
      Push(TokenType::kBlockEnd, "%}", start);
    } else {
      if (At(pos_, "-}}")) {
        pos_ += 3;
        pos_ += SpaceRun(src_, pos_);
      } else if (At(pos_, "}}")) {
        pos_ += 2;
      } else {
        return false;
      }
      Push(TokenType::kVariableEnd, "}}", start);
    }
    line_starting_ = src_[pos_ - 1] == '\n';
    return true;
  }

  // Digits with optional "_" separators; returns the end position and appends them to *out.
  size_t ScanDigits(size_t p, std::string* out, bool (*ok)(char)) const {
    while (p < src_.size()) {
      if (ok(src_[p])) {
        out->push_back(src_[p++]);
      } else if (src_[p] == '_' && p + 1 < src_.size() && ok(src_[p + 1]) && !out->empty()) {
        ++p;
      } else {
        break;
      }
    }
    return p;
  }

  void LexNumber() {
    const size_t start = pos_;
    const bool after_dot = start > 0 && src_[start - 1] == '.';
    static const auto is_dec = [](char c) { return IsDigit(c); };
    std::string digits;
    size_t p = ScanDigits(pos_, &digits, is_dec);
    // Float: digits, then a fraction and/or an exponent (not right after a '.', as in `x.0.1`).
    if (!after_dot) {
      std::string fdigits = digits;
      size_t q = p;
      bool is_float = false;
      if (q + 1 < src_.size() && src_[q] == '.' && IsDigit(src_[q + 1])) {
        std::string frac;
        q = ScanDigits(q + 1, &frac, is_dec);
        fdigits += "." + frac;
        is_float = true;
      }
      if (q < src_.size() && (src_[q] == 'e' || src_[q] == 'E')) {
        size_t r = q + 1;
        std::string exp = "e";
        if (r < src_.size() && (src_[r] == '+' || src_[r] == '-')) exp.push_back(src_[r++]);
        if (r < src_.size() && IsDigit(src_[r])) {
          std::string ed;
          r = ScanDigits(r, &ed, is_dec);
          fdigits += exp + ed;
          q = r;
          is_float = true;
        }
      }
      if (is_float) {
        Token t;
        t.type = TokenType::kFloat;
        t.value = src_.substr(start, q - start);
        t.float_value = std::stod(fdigits);
        SetPos(&t, start);
        tokens_.push_back(std::move(t));
        pos_ = q;
        return;
      }
    }
    int base = 10;
    if (src_[start] == '0' && p == start + 1 && p < src_.size()) {
      const char b = static_cast<char>(src_[p] | 0x20);
      bool (*ok)(char) = nullptr;
      if (b == 'x') {
        base = 16;
        ok = [](char c) { return IsDigit(c) || ((c | 0x20) >= 'a' && (c | 0x20) <= 'f'); };
      } else if (b == 'o') {
        base = 8;
        ok = [](char c) { return c >= '0' && c <= '7'; };
      } else if (b == 'b') {
        base = 2;
        ok = [](char c) { return c == '0' || c == '1'; };
      }
      if (ok != nullptr) {
        digits.clear();
        size_t r = p + 1;
        if (r < src_.size() && src_[r] == '_') ++r;
        p = ScanDigits(r, &digits, ok);
        if (digits.empty()) Fail(start, "invalid integer literal");
      }
    }
    Token t;
    t.type = TokenType::kInteger;
    t.value = src_.substr(start, p - start);
    try {
      t.int_value = std::stoll(digits, nullptr, base);
    } catch (const std::exception&) {
      Fail(start, "integer literal out of range: " + t.value);
    }
    SetPos(&t, start);
    tokens_.push_back(std::move(t));
    pos_ = p;
  }

  static int HexValue(char c) {
    if (IsDigit(c)) return c - '0';
    const char l = static_cast<char>(c | 0x20);
    if (l >= 'a' && l <= 'f') return l - 'a' + 10;
    return -1;
  }

  // A quoted string with Python's unicode-escape rules; unknown escapes keep their backslash.
  void LexString() {
    const size_t start = pos_;
    const char quote = src_[pos_++];
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) Fail(start, "unterminated string literal");
      const char c = src_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\') {
        out.push_back(c);
        ++pos_;
        continue;
      }
      if (pos_ + 1 >= src_.size()) Fail(start, "unterminated string literal");
      const char e = src_[pos_ + 1];
      pos_ += 2;
      switch (e) {
        case '\n': break;
        case '\\': out.push_back('\\'); break;
        case '\'': out.push_back('\''); break;
        case '"': out.push_back('"'); break;
        case 'a': out.push_back('\a'); break;
        case 'b': out.push_back('\b'); break;
        case 'f': out.push_back('\f'); break;
        case 'n': out.push_back('\n'); break;
        case 'r': out.push_back('\r'); break;
        case 't': out.push_back('\t'); break;
        case 'v': out.push_back('\v'); break;
        case 'x': case 'u': case 'U': {
          const int width = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (int k = 0; k < width; ++k) {
            const int h = pos_ + k < src_.size() ? HexValue(src_[pos_ + k]) : -1;
            if (h < 0) Fail(pos_ - 2, std::string("truncated \\") + e + " escape in string");
            cp = cp * 16 + static_cast<char32_t>(h);
          }
          pos_ += width;
          AppendUtf8(cp, &out);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && pos_ < src_.size() && src_[pos_] >= '0' && src_[pos_] <= '7';
                 ++k) {
              cp = cp * 8 + static_cast<char32_t>(src_[pos_++] - '0');
            }
            AppendUtf8(cp, &out);
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    Push(TokenType::kString, std::move(out), start);
  }

  const std::string src_;
  const std::string& name_;
  const LexOptions opt_;
  std::vector<size_t> line_starts_;
  std::vector<Token> tokens_;
  size_t pos_ = 0;
  // Whether the last consumed text ended a line (Jinja's `line_starting`), which lets lstrip_blocks
  // strip indentation at the very start of the data that follows.
  bool line_starting_ = true;
};

}  // namespace

std::vector<Token> Tokenize(std::string_view source, const std::string& template_name,
                            const LexOptions& options) {
  return Lexer(source, template_name, options).Run();
}

}  // namespace r1::jinja
