// Walks a parsed template and produces its output, with Jinja2's scoping: `set` inside a for loop
// is local to that iteration, `set` inside an if is not, namespaces are shared objects.
#pragma once

#include <string>

#include "r1/tokenizer/jinja_ast.h"

namespace r1::jinja {

// Throws r1::Error naming the template, line and column for runtime errors (undefined values
// used in arithmetic, type errors, ...) and RaisedException, unprefixed, for raise_exception().
std::string RenderBody(const Body& body, const std::string& template_name, const DictData& vars);

}  // namespace r1::jinja
