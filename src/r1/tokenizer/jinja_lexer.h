// Splits Jinja template source into tokens the way Jinja2's lexer does with trim_blocks and
// lstrip_blocks on (the Hugging Face apply_chat_template environment): whitespace control is
// applied here, so the parser only sees the text that will be output.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace r1::jinja {

enum class TokenType {
  kData,           // literal template text, already whitespace-controlled
  kBlockBegin,     // {%
  kBlockEnd,       // %}
  kVariableBegin,  // {{
  kVariableEnd,    // }}
  kName,
  kString,   // value is the unescaped text
  kInteger,  // int_value
  kFloat,    // float_value
  kOperator,
  kEof,
};

struct Token {
  TokenType type = TokenType::kEof;
  std::string value;
  int64_t int_value = 0;
  double float_value = 0;
  int line = 1;
  int col = 1;
};

struct LexOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
  bool keep_trailing_newline = false;
};

// Throws r1::Error naming `template_name`, line and column for unclosed tags, comments and raw
// blocks, unbalanced brackets and characters that cannot start a token.
std::vector<Token> Tokenize(std::string_view source, const std::string& template_name,
                            const LexOptions& options = {});

}  // namespace r1::jinja
