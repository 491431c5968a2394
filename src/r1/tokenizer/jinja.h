// A Jinja2 interpreter for chat templates: the subset of Jinja2 3.1 that Hugging Face chat
// templates use, evaluated with the settings of transformers' apply_chat_template (sandboxed,
// trim_blocks, lstrip_blocks, loop controls, its tojson / raise_exception / strftime_now), so a
// template renders byte-for-byte as it does in Python.
//
// Supported: text, {{ }}, {# #}, whitespace control (-/+), {% if/elif/else %}, {% for %} with
// loop.*, inline `if` filters and `else`, {% set %} (names, tuples, namespace attributes, blocks),
// {% macro %}, {% filter %}, {% with %}, {% break %}/{% continue %}, {% raw %},
// {% generation %}; Python expressions with Jinja precedence; the common filters, tests and
// str/dict/list methods (see jinja_builtins.h).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "r1/tokenizer/jinja_ast.h"
#include "r1/tokenizer/jinja_error.h"
#include "r1/tokenizer/jinja_value.h"

namespace r1::jinja {

class Template {
 public:
  // Parses source; throws r1::Error naming `name`, line and column on syntax errors (unclosed
  // tags or blocks, unknown tags, filters or tests).
  explicit Template(std::string_view source, std::string name = "template");

  // Renders with the members of `vars` (a JSON object) as variables. JSON key order is kept,
  // as Python dicts keep it, since tojson output depends on it. Throws r1::Error on runtime
  // errors, and RaisedException (an r1::Error carrying only the template's message) when the
  // template calls raise_exception().
  std::string Render(const nlohmann::ordered_json& vars) const;
  std::string Render(const DictData& vars) const;

  const std::string& name() const { return name_; }

 private:
  std::string name_;
  std::shared_ptr<const Body> body_;
};

}  // namespace r1::jinja
