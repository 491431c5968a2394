#include "r1/tokenizer/jinja.h"

#include "r1/core/error.h"
#include "r1/tokenizer/jinja_eval.h"
#include "r1/tokenizer/jinja_lexer.h"
#include "r1/tokenizer/jinja_parser.h"

namespace r1::jinja {

Template::Template(std::string_view source, std::string name) : name_(std::move(name)) {
  body_ = std::make_shared<const Body>(Parse(Tokenize(source, name_), name_));
}

std::string Template::Render(const nlohmann::ordered_json& vars) const {
  if (!vars.is_object() && !vars.is_null()) {
    throw Error("jinja template '" + name_ + "': variables must be a JSON object");
  }
  DictData d;
  if (vars.is_object()) {
    for (const auto& [k, v] : vars.items()) d.Set(k, Value::FromJson(v));
  }
  return Render(d);
}

std::string Template::Render(const DictData& vars) const { return RenderBody(*body_, name_, vars); }

}  // namespace r1::jinja
