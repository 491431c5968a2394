// Jinja's built-in tests (`x is defined`, `x is string`, ...), as in jinja2/tests.py.
#include <algorithm>
#include <map>
#include <set>

#include "r1/core/error.h"
#include "r1/tokenizer/jinja_builtins.h"
#include "r1/tokenizer/jinja_text.h"

namespace r1::jinja {
namespace {

using TestFn = bool (*)(const Value&, const CallArgs&);
using K = Value::Kind;

const Value& Arg(const CallArgs& a, size_t i, const char* name, const char* test) {
  const Value* v = a.Get(i, name);
  if (v == nullptr) throw Error(std::string("test '") + test + "' needs an argument");
  return *v;
}

int64_t IntOf(const Value& v, const char* test) {
  if (v.kind() != K::kInt && v.kind() != K::kBool) {
    throw Error(std::string("test '") + test + "' needs an integer, got " + v.TypeName());
  }
  return v.as_int();
}

const std::map<std::string, TestFn, std::less<>>& Registry() {
  static const std::map<std::string, TestFn, std::less<>> kTests = {
      {"defined", [](const Value& v, const CallArgs&) { return !v.is_undefined(); }},
      {"undefined", [](const Value& v, const CallArgs&) { return v.is_undefined(); }},
      {"none", [](const Value& v, const CallArgs&) { return v.is_none(); }},
      {"boolean", [](const Value& v, const CallArgs&) { return v.kind() == K::kBool; }},
      {"false",
       [](const Value& v, const CallArgs&) { return v.kind() == K::kBool && !v.as_bool(); }},
      {"true",
       [](const Value& v, const CallArgs&) { return v.kind() == K::kBool && v.as_bool(); }},
      {"integer", [](const Value& v, const CallArgs&) { return v.kind() == K::kInt; }},
      {"float", [](const Value& v, const CallArgs&) { return v.kind() == K::kFloat; }},
      {"number", [](const Value& v, const CallArgs&) { return v.is_number(); }},
      {"string", [](const Value& v, const CallArgs&) { return v.is_string(); }},
      {"mapping", [](const Value& v, const CallArgs&) { return v.is_dict(); }},
      // Undefined iterates as empty and has a length in Jinja, so it counts as both.
      {"iterable",
       [](const Value& v, const CallArgs&) {
         return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
       }},
      {"sequence",
       [](const Value& v, const CallArgs&) {
         return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
       }},
      {"callable", [](const Value& v, const CallArgs&) { return v.kind() == K::kFunction; }},
      {"escaped", [](const Value&, const CallArgs&) { return false; }},
      {"lower",
       [](const Value& v, const CallArgs&) {
         const std::string s = v.Str();
         return PyLower(s) == s && PyUpper(s) != s;
       }},
      {"upper",
       [](const Value& v, const CallArgs&) {
         const std::string s = v.Str();
         return PyUpper(s) == s && PyLower(s) != s;
       }},
      {"odd", [](const Value& v, const CallArgs&) { return IntOf(v, "odd") % 2 != 0; }},
      {"even", [](const Value& v, const CallArgs&) { return IntOf(v, "even") % 2 == 0; }},
      {"divisibleby",
       [](const Value& v, const CallArgs& a) {
         const int64_t d = IntOf(Arg(a, 0, "num", "divisibleby"), "divisibleby");
         if (d == 0) throw Error("integer division or modulo by zero");
         return IntOf(v, "divisibleby") % d == 0;
       }},
      {"sameas",
       [](const Value& v, const CallArgs& a) {
         return v.SameObject(Arg(a, 0, "other", "sameas"));
       }},
      {"in",
       [](const Value& v, const CallArgs& a) { return Contains(Arg(a, 0, "seq", "in"), v); }},
      {"eq", [](const Value& v, const CallArgs& a) { return Equal(v, Arg(a, 0, "other", "eq")); }},
      {"ne",
       [](const Value& v, const CallArgs& a) { return !Equal(v, Arg(a, 0, "other", "ne")); }},
      {"lt", [](const Value& v, const CallArgs& a) { return Less(v, Arg(a, 0, "other", "lt")); }},
      {"gt", [](const Value& v, const CallArgs& a) { return Less(Arg(a, 0, "other", "gt"), v); }},
      {"le",
       [](const Value& v, const CallArgs& a) { return !Less(Arg(a, 0, "other", "le"), v); }},
      {"ge",
       [](const Value& v, const CallArgs& a) { return !Less(v, Arg(a, 0, "other", "ge")); }},
      {"filter",
       [](const Value& v, const CallArgs&) { return v.is_string() && IsKnownFilter(v.as_string()); }},
      {"test",
       [](const Value& v, const CallArgs&) { return v.is_string() && IsKnownTest(v.as_string()); }},
  };
  return kTests;
}

std::string Canonical(const std::string& name) {
  static const std::map<std::string, std::string, std::less<>> kAliases = {
      {"==", "eq"}, {"equalto", "eq"}, {"!=", "ne"}, {"<", "lt"}, {"lessthan", "lt"},
      {">", "gt"},  {"greaterthan", "gt"}, {"<=", "le"}, {">=", "ge"}};
  const auto it = kAliases.find(name);
  return it == kAliases.end() ? name : it->second;
}

}  // namespace

bool IsKnownTest(const std::string& name) { return Registry().count(Canonical(name)) != 0; }

bool ApplyTest(const std::string& name, const Value& input, const CallArgs& args) {
  const std::string canonical = Canonical(name);
  const auto it = Registry().find(canonical);
  if (it == Registry().end()) throw Error("no test named '" + name + "'");
  // Python rejects extra arguments; Jinja's grammar makes that reachable (`x is defined not in y`
  // parses `not` as the test's argument), so do the same.
  static const std::set<std::string, std::less<>> kOneArg = {"divisibleby", "sameas", "in", "eq",
                                                            "ne", "lt", "gt", "le", "ge"};
  const size_t max_args = kOneArg.count(canonical) != 0 ? 1 : 0;
  const size_t given = args.positional.size() + args.keyword.size();
  if (given > max_args) {
    throw Error("test '" + name + "' takes " + std::to_string(max_args) + " argument(s) but " +
                std::to_string(given) + " were given");
  }
  return it->second(input, args);
}

}  // namespace r1::jinja
