// Jinja's built-in filters (jinja2/filters.py) with Hugging Face's tojson override.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>

#include "r1/core/error.h"
#include "r1/tokenizer/jinja_builtins.h"
#include "r1/tokenizer/jinja_text.h"

namespace r1::jinja {
namespace {

using FilterFn = Value (*)(const Value&, const CallArgs&);
using K = Value::Kind;

const Value* Opt(const CallArgs& a, size_t i, const char* name) {
  const Value* v = a.Get(i, name);
  return (v == nullptr || v->is_none()) ? nullptr : v;
}

bool BoolArg(const CallArgs& a, size_t i, const char* name, bool fallback) {
  const Value* v = a.Get(i, name);
  return v == nullptr ? fallback : v->Truthy();
}

// Jinja's make_attrgetter: "a.b.0" looks up each part with getitem (integers as indexes).
Value AttrPath(const Value& v, const std::string& path) {
  Value cur = v;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part = path.substr(start, dot == std::string::npos ? dot : dot - start);
    const bool numeric =
        !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; });
    cur = GetItem(cur, numeric ? Value::Int(std::stoll(part)) : Value::Str(part));
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

std::string StrOf(const Value* v, const char* what) {
  if (v == nullptr) throw Error(std::string("missing argument '") + what + "'");
  return v->Str();
}

// Sort key: strings compare case-insensitively unless case_sensitive.
Value SortKey(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::Str(PyLower(v.as_string()));
  return v;
}

Value KeyOf(const Value& item, const Value* attribute, bool case_sensitive) {
  const Value k = attribute != nullptr ? AttrPath(item, attribute->Str()) : item;
  return SortKey(k, case_sensitive);
}

Value FDefault(const Value& v, const CallArgs& a) {
  const Value* dflt = a.Get(0, "default_value");
  if (v.is_undefined() || (BoolArg(a, 1, "boolean", false) && !v.Truthy())) {
    return dflt != nullptr ? *dflt : Value::Str("");
  }
  return v;
}

Value FLength(const Value& v, const CallArgs&) { return Value::Int(Length(v)); }

Value FFirst(const Value& v, const CallArgs&) {
  const std::vector<Value> items = Iterate(v);
  if (items.empty()) return Value::Undefined("No first item, sequence was empty.");
  return items.front();
}

Value FLast(const Value& v, const CallArgs&) {
  const std::vector<Value> items = Iterate(v);
  if (items.empty()) return Value::Undefined("No last item, sequence was empty.");
  return items.back();
}

Value FJoin(const Value& v, const CallArgs& a) {
  const Value* sep = a.Get(0, "d");
  const Value* attribute = Opt(a, 1, "attribute");
  std::string out;
  bool first = true;
  for (const Value& item : Iterate(v)) {
    if (!first && sep != nullptr) out += sep->Str();
    first = false;
    out += (attribute != nullptr ? AttrPath(item, attribute->Str()) : item).Str();
  }
  return Value::Str(std::move(out));
}

Value FTrim(const Value& v, const CallArgs& a) {
  const Value* chars = Opt(a, 0, "chars");
  const std::string set = chars != nullptr ? chars->Str() : std::string();
  return Value::Str(PyStrip(v.Str(), chars != nullptr ? &set : nullptr, true, true));
}

Value FLower(const Value& v, const CallArgs&) { return Value::Str(PyLower(v.Str())); }
Value FUpper(const Value& v, const CallArgs&) { return Value::Str(PyUpper(v.Str())); }
Value FTitle(const Value& v, const CallArgs&) { return Value::Str(PyTitle(v.Str())); }
Value FCapitalize(const Value& v, const CallArgs&) { return Value::Str(PyCapitalize(v.Str())); }
Value FString(const Value& v, const CallArgs&) { return Value::Str(v.Str()); }
Value FSafe(const Value& v, const CallArgs&) { return v; }

Value FReplace(const Value& v, const CallArgs& a) {
  const Value* count = Opt(a, 2, "count");
  return Value::Str(PyReplace(v.Str(), StrOf(a.Get(0, "old"), "old"), StrOf(a.Get(1, "new"), "new"),
                              count != nullptr ? count->as_int() : -1));
}

Value FEscape(const Value& v, const CallArgs&) {
  std::string out;
  for (char c : v.Str()) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out.push_back(c);
    }
  }
  return Value::Str(std::move(out));
}

// Python float(str): surrounding whitespace allowed, underscores between digits, inf/nan.
std::optional<double> ParseFloat(const std::string& text) {
  std::string s = PyStrip(text, nullptr, true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double d = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return d;
}

std::optional<int64_t> ParseInt(const std::string& text, int base) {
  std::string s = PyStrip(text, nullptr, true, true);
  s.erase(std::remove(s.begin(), s.end(), '_'), s.end());
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, base);
  if (end != s.c_str() + s.size() || errno != 0) return std::nullopt;
  return v;
}

// int(), float(), abs() and round() of an Undefined raise its error rather than a TypeError, so
// these filters fail on undefined input instead of returning their default.
Value FInt(const Value& v, const CallArgs& a) {
  v.RequireDefined();
  const Value* dflt = a.Get(0, "default");
  const Value* base_v = a.Get(1, "base");
  const int base = base_v != nullptr ? static_cast<int>(base_v->as_int()) : 10;
  const Value fallback = dflt != nullptr ? *dflt : Value::Int(0);
  switch (v.kind()) {
    case K::kBool:
    case K::kInt:
      return Value::Int(v.as_int());
    case K::kFloat:
      if (!std::isfinite(v.as_float())) return fallback;
      return Value::Int(static_cast<int64_t>(std::trunc(v.as_float())));
    case K::kString: {
      if (auto i = ParseInt(v.as_string(), base)) return Value::Int(*i);
      if (auto f = ParseFloat(v.as_string()); f && std::isfinite(*f))
        return Value::Int(static_cast<int64_t>(std::trunc(*f)));
      return fallback;
    }
    default:
      return fallback;
  }
}

Value FFloat(const Value& v, const CallArgs& a) {
  v.RequireDefined();
  const Value* dflt = a.Get(0, "default");
  const Value fallback = dflt != nullptr ? *dflt : Value::Float(0.0);
  if (v.is_number()) return Value::Float(v.as_float());
  if (v.is_string()) {
    if (auto f = ParseFloat(v.as_string())) return Value::Float(*f);
  }
  return fallback;
}

Value FAbs(const Value& v, const CallArgs&) {
  v.RequireDefined();
  if (v.kind() == K::kFloat) return Value::Float(std::fabs(v.as_float()));
  if (v.is_number()) return Value::Int(std::llabs(v.as_int()));
  throw Error("bad operand type for abs(): '" + v.TypeName() + "'");
}

Value FRound(const Value& v, const CallArgs& a) {
  v.RequireDefined();
  const Value* p = a.Get(0, "precision");
  const int64_t precision = p != nullptr ? p->as_int() : 0;
  const std::string method = a.Get(1, "method") != nullptr ? a.Get(1, "method")->Str() : "common";
  if (!v.is_number()) throw Error("type " + v.TypeName() + " doesn't define __round__ method");
  if (method == "common") {
    if (v.kind() != K::kFloat) return Value::Int(v.as_int());
    // printf rounds the exact binary value half-to-even, as Python's round() does.
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(std::clamp<int64_t>(precision, 0, 300)),
                  v.as_float());
    return Value::Float(std::strtod(buf, nullptr));
  }
  if (method != "ceil" && method != "floor") {
    throw Error("method must be 'common', 'ceil' or 'floor'");
  }
  const double scale = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_float() * scale;
  return Value::Float((method == "ceil" ? std::ceil(x) : std::floor(x)) / scale);
}

Value FList(const Value& v, const CallArgs&) { return Value::List(Iterate(v)); }

Value FItems(const Value& v, const CallArgs&) {
  if (v.is_undefined()) return Value::List({});
  if (!v.is_dict()) throw Error("Can only get item pairs from a mapping.");
  std::vector<Value> out;
  for (const auto& [k, x] : v.dict().items) out.push_back(Value::List({Value::Str(k), x}, true));
  return Value::List(std::move(out));
}

Value FReverse(const Value& v, const CallArgs&) {
  if (v.is_string()) {
    std::u32string cps = DecodeUtf8(v.as_string());
    std::reverse(cps.begin(), cps.end());
    return Value::Str(EncodeUtf8(cps));
  }
  std::vector<Value> items = Iterate(v);
  std::reverse(items.begin(), items.end());
  return Value::List(std::move(items));
}

// Hugging Face replaces Jinja's tojson with json.dumps(x, ensure_ascii=False, indent=None,
// separators=None, sort_keys=False): no HTML escaping, insertion order kept.
Value FToJson(const Value& v, const CallArgs& a) {
  const bool ensure_ascii = BoolArg(a, 0, "ensure_ascii", false);
  const Value* indent_v = Opt(a, 1, "indent");
  const Value* seps = Opt(a, 2, "separators");
  const bool sort_keys = BoolArg(a, 3, "sort_keys", false);
  std::optional<int> indent;
  if (indent_v != nullptr) indent = static_cast<int>(indent_v->as_int());
  std::optional<std::pair<std::string, std::string>> separators;
  if (seps != nullptr) {
    const std::vector<Value> parts = Iterate(*seps);
    if (parts.size() != 2) throw Error("separators must be a pair of strings");
    separators = std::make_pair(parts[0].Str(), parts[1].Str());
  }
  return Value::Str(v.ToJson(indent, ensure_ascii, sort_keys, separators));
}

Value FIndent(const Value& v, const CallArgs& a) {
  const Value* width = a.Get(0, "width");
  std::string indention(4, ' ');
  if (width != nullptr) {
    indention = width->is_string() ? width->as_string()
                                   : std::string(static_cast<size_t>(std::max<int64_t>(0, width->as_int())), ' ');
  }
  const bool first = BoolArg(a, 1, "first", false);
  const bool blank = BoolArg(a, 2, "blank", false);
  const std::vector<std::string> lines = PySplitLines(v.Str() + "\n");
  std::string rv;
  if (blank) {
    for (size_t i = 0; i < lines.size(); ++i) {
      if (i > 0) rv += "\n" + indention;
      rv += lines[i];
    }
  } else {
    rv = lines.empty() ? "" : lines[0];
    for (size_t i = 1; i < lines.size(); ++i) {
      rv += "\n";
      if (!lines[i].empty()) rv += indention;
      rv += lines[i];
    }
  }
  if (first) rv = indention + rv;
  return Value::Str(std::move(rv));
}

Value FAttr(const Value& v, const CallArgs& a) {
  v.RequireDefined();
  const std::string name = StrOf(a.Get(0, "name"), "name");
  // Attribute only: a dict's keys are items, not attributes, so they are not found here.
  if (v.kind() == K::kNamespace) return GetAttr(v, name);
  if (v.is_dict() || v.is_list() || v.is_string()) {
    const Value r = GetAttr(v, name);
    if (r.kind() == K::kFunction) return r;
  }
  std::string msg = "'";
  msg += v.TypeName();
  msg += " object' has no attribute '";
  msg += name;
  msg += "'";
  return Value::Undefined(std::move(msg));
}

std::vector<Value> SortedItems(const Value& v, const CallArgs& a) {
  const bool reverse = BoolArg(a, 0, "reverse", false);
  const bool case_sensitive = BoolArg(a, 1, "case_sensitive", false);
  const Value* attribute = Opt(a, 2, "attribute");
  std::vector<Value> items = Iterate(v);
  std::vector<std::pair<Value, Value>> keyed;
  for (auto& it : items) keyed.emplace_back(KeyOf(it, attribute, case_sensitive), it);
  std::stable_sort(keyed.begin(), keyed.end(), [&](const auto& x, const auto& y) {
    return reverse ? Less(y.first, x.first) : Less(x.first, y.first);
  });
  std::vector<Value> out;
  for (auto& kv : keyed) out.push_back(kv.second);
  return out;
}

Value FSort(const Value& v, const CallArgs& a) { return Value::List(SortedItems(v, a)); }

Value FDictSort(const Value& v, const CallArgs& a) {
  const bool case_sensitive = BoolArg(a, 0, "case_sensitive", false);
  const std::string by = a.Get(1, "by") != nullptr ? a.Get(1, "by")->Str() : "key";
  const bool reverse = BoolArg(a, 2, "reverse", false);
  if (!v.is_dict()) throw Error("dictsort expects a mapping");
  std::vector<Value> pairs;
  for (const auto& [k, x] : v.dict().items) pairs.push_back(Value::List({Value::Str(k), x}, true));
  const size_t pos = by == "value" ? 1 : 0;
  std::stable_sort(pairs.begin(), pairs.end(), [&](const Value& x, const Value& y) {
    const Value kx = SortKey(x.list().items[pos], case_sensitive);
    const Value ky = SortKey(y.list().items[pos], case_sensitive);
    return reverse ? Less(ky, kx) : Less(kx, ky);
  });
  return Value::List(std::move(pairs));
}

Value FUnique(const Value& v, const CallArgs& a) {
  const bool case_sensitive = BoolArg(a, 0, "case_sensitive", false);
  const Value* attribute = Opt(a, 1, "attribute");
  std::vector<Value> seen, out;
  for (const Value& item : Iterate(v)) {
    const Value key = KeyOf(item, attribute, case_sensitive);
    if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return Equal(s, key); }))
      continue;
    seen.push_back(key);
    out.push_back(item);
  }
  return Value::List(std::move(out));
}

Value MinMax(const Value& v, const CallArgs& a, bool want_max) {
  const bool case_sensitive = BoolArg(a, 0, "case_sensitive", false);
  const Value* attribute = Opt(a, 1, "attribute");
  const std::vector<Value> items = Iterate(v);
  if (items.empty()) {
    return Value::Undefined(std::string("No aggregated item, sequence was empty."));
  }
  size_t best = 0;
  Value best_key = KeyOf(items[0], attribute, case_sensitive);
  for (size_t i = 1; i < items.size(); ++i) {
    const Value k = KeyOf(items[i], attribute, case_sensitive);
    if (want_max ? Less(best_key, k) : Less(k, best_key)) {
      best = i;
      best_key = k;
    }
  }
  return items[best];
}

Value FMin(const Value& v, const CallArgs& a) { return MinMax(v, a, false); }
Value FMax(const Value& v, const CallArgs& a) { return MinMax(v, a, true); }

Value Add(const Value& x, const Value& y) {
  if (x.kind() == K::kFloat || y.kind() == K::kFloat) return Value::Float(x.as_float() + y.as_float());
  return Value::Int(x.as_int() + y.as_int());
}

Value FSum(const Value& v, const CallArgs& a) {
  const Value* attribute = Opt(a, 0, "attribute");
  const Value* start = a.Get(1, "start");
  Value total = start != nullptr ? *start : Value::Int(0);
  for (const Value& item : Iterate(v)) {
    const Value x = attribute != nullptr ? AttrPath(item, attribute->Str()) : item;
    if (!x.is_number() || !total.is_number()) {
      throw Error("unsupported operand type(s) for +: '" + total.TypeName() + "' and '" +
                  x.TypeName() + "'");
    }
    total = Add(total, x);
  }
  return total;
}

// The remaining positional arguments after `skip`, for filters that forward them.
CallArgs Rest(const CallArgs& a, size_t skip) {
  CallArgs r;
  for (size_t i = skip; i < a.positional.size(); ++i) r.positional.push_back(a.positional[i]);
  r.keyword = a.keyword;
  return r;
}

Value FMap(const Value& v, const CallArgs& a) {
  std::vector<Value> out;
  if (a.positional.empty()) {
    const Value* attribute = a.Get(99, "attribute");
    if (attribute == nullptr) throw Error("map requires a filter name or attribute=");
    const Value* dflt = a.Get(99, "default");
    for (const Value& item : Iterate(v)) {
      Value x = AttrPath(item, attribute->Str());
      if (x.is_undefined() && dflt != nullptr) x = *dflt;
      out.push_back(std::move(x));
    }
    return Value::List(std::move(out));
  }
  const std::string name = a.positional[0].Str();
  if (!IsKnownFilter(name)) throw Error("no filter named '" + name + "'");
  const CallArgs rest = Rest(a, 1);
  for (const Value& item : Iterate(v)) out.push_back(ApplyFilter(name, item, rest));
  return Value::List(std::move(out));
}

Value Select(const Value& v, const CallArgs& a, bool by_attr, bool keep) {
  size_t next = 0;
  std::string attr;
  if (by_attr) {
    if (a.positional.empty()) throw Error("selectattr/rejectattr need an attribute name");
    attr = a.positional[next++].Str();
  }
  std::string test;
  if (next < a.positional.size()) test = a.positional[next++].Str();
  if (!test.empty() && !IsKnownTest(test)) throw Error("no test named '" + test + "'");
  const CallArgs rest = Rest(a, next);
  std::vector<Value> out;
  for (const Value& item : Iterate(v)) {
    const Value x = by_attr ? AttrPath(item, attr) : item;
    const bool ok = test.empty() ? x.Truthy() : ApplyTest(test, x, rest);
    if (ok == keep) out.push_back(item);
  }
  return Value::List(std::move(out));
}

Value FSelect(const Value& v, const CallArgs& a) { return Select(v, a, false, true); }
Value FReject(const Value& v, const CallArgs& a) { return Select(v, a, false, false); }
Value FSelectAttr(const Value& v, const CallArgs& a) { return Select(v, a, true, true); }
Value FRejectAttr(const Value& v, const CallArgs& a) { return Select(v, a, true, false); }

const std::map<std::string, FilterFn, std::less<>>& Registry() {
  static const std::map<std::string, FilterFn, std::less<>> kFilters = {
      {"abs", FAbs},         {"attr", FAttr},           {"capitalize", FCapitalize},
      {"count", FLength},    {"d", FDefault},           {"default", FDefault},
      {"dictsort", FDictSort}, {"e", FEscape},          {"escape", FEscape},
      {"first", FFirst},     {"float", FFloat},         {"forceescape", FEscape},
      {"indent", FIndent},   {"int", FInt},             {"items", FItems},
      {"join", FJoin},       {"last", FLast},           {"length", FLength},
      {"list", FList},       {"lower", FLower},         {"map", FMap},
      {"max", FMax},         {"min", FMin},             {"reject", FReject},
      {"rejectattr", FRejectAttr}, {"replace", FReplace}, {"reverse", FReverse},
      {"round", FRound},     {"safe", FSafe},           {"select", FSelect},
      {"selectattr", FSelectAttr}, {"sort", FSort},     {"string", FString},
      {"sum", FSum},         {"title", FTitle},         {"tojson", FToJson},
      {"trim", FTrim},       {"unique", FUnique},       {"upper", FUpper},
  };
  return kFilters;
}

}  // namespace

bool IsKnownFilter(const std::string& name) { return Registry().count(name) != 0; }

Value ApplyFilter(const std::string& name, const Value& input, const CallArgs& args) {
  const auto it = Registry().find(name);
  if (it == Registry().end()) throw Error("no filter named '" + name + "'");
  return it->second(input, args);
}

}  // namespace r1::jinja
