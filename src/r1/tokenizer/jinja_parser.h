// Builds the syntax tree from tokens, following Jinja2's parser (operator precedence, how tests,
// filters and ternaries bind, which statements exist) so templates mean what they mean in Python.
#pragma once

#include <string>
#include <vector>

#include "r1/tokenizer/jinja_ast.h"
#include "r1/tokenizer/jinja_lexer.h"

namespace r1::jinja {

// Throws r1::Error naming the template, line and column for syntax errors, unknown tags,
// filters and tests, and blocks left open.
Body Parse(const std::vector<Token>& tokens, const std::string& template_name);

}  // namespace r1::jinja
