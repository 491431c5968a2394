// Attribute and item access, slicing, calls, and the Python methods of str, dict and list.
#include <algorithm>
#include <utf8proc.h>

#include "r1/core/error.h"
#include "r1/tokenizer/jinja_builtins.h"
#include "r1/tokenizer/jinja_text.h"

namespace r1::jinja {
namespace {

// Jinja's object_type_repr, used in "has no attribute" messages.
std::string ObjectTypeRepr(const Value& v) {
  if (v.is_none()) return "None";
  if (v.kind() == Value::Kind::kNamespace) return "jinja2.utils.Namespace object";
  return v.TypeName() + " object";
}

Value MissingAttr(const Value& obj, const std::string& name) {
  std::string msg = "'";
  msg += ObjectTypeRepr(obj);
  msg += "' has no attribute '";
  msg += name;
  msg += "'";
  return Value::Undefined(std::move(msg));
}

Value Unsafe(const Value& obj, const std::string& name) {
  return Value::Undefined("access to attribute '" + name + "' of '" + obj.TypeName() +
                          "' object is unsafe.");
}

const std::string& StrArg(const Value* v, const std::string& method, const char* what = "str") {
  if (v == nullptr) throw Error(method + "() missing a required argument");
  if (!v->is_string()) {
    throw Error(method + "() argument must be " + what + ", not " + v->TypeName());
  }
  return v->as_string();
}

// An optional argument that may be None: returns nullptr for absent or None.
const std::string* OptStrArg(const Value* v, const std::string& method) {
  if (v == nullptr || v->is_none()) return nullptr;
  return &StrArg(v, method, "str or None");
}

int64_t IntArg(const Value* v, int64_t fallback, const std::string& method) {
  if (v == nullptr || v->is_none()) return fallback;
  if (v->kind() != Value::Kind::kInt && v->kind() != Value::Kind::kBool) {
    throw Error(method + "() expected an integer, got " + v->TypeName());
  }
  return v->as_int();
}

Value StrList(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(Value::Str(std::move(p)));
  return Value::List(std::move(items));
}

bool AllCodePoints(const std::string& s, bool (*pred)(char32_t)) {
  const std::u32string cps = DecodeUtf8(s);
  if (cps.empty()) return false;
  return std::all_of(cps.begin(), cps.end(), pred);
}

bool IsAlphaCp(char32_t c) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
}
bool IsDigitCp(char32_t c) {
  return utf8proc_category(static_cast<utf8proc_int32_t>(c)) == UTF8PROC_CATEGORY_ND;
}
bool IsAlnumCp(char32_t c) {
  const auto cat = utf8proc_category(static_cast<utf8proc_int32_t>(c));
  return IsAlphaCp(c) || (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

// islower / isupper: at least one cased character and none of the other case.
bool CaseCheck(const std::string& s, bool want_lower) {
  bool cased = false;
  for (char32_t c : DecodeUtf8(s)) {
    const char32_t lo = static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c)));
    const char32_t up = static_cast<char32_t>(utf8proc_toupper(static_cast<utf8proc_int32_t>(c)));
    if (lo == up) continue;
    cased = true;
    if (want_lower ? c != lo : c != up) return false;
  }
  return cased;
}

// str.startswith / endswith with an optional tuple of candidates and start/end bounds.
bool AffixMatch(const std::string& s, const CallArgs& args, bool prefix, const std::string& m) {
  const Value* what = args.Get(0, "prefix");
  const Value* start = args.Get(1, "start");
  const Value* end = args.Get(2, "end");
  std::string sub = s;
  if ((start != nullptr && !start->is_none()) || (end != nullptr && !end->is_none())) {
    sub = SliceValue(Value::Str(s), start, end, nullptr).as_string();
  }
  std::vector<Value> candidates;
  if (what != nullptr && what->is_list()) {
    candidates = what->list().items;
  } else {
    candidates.push_back(what == nullptr ? Value() : *what);
  }
  for (const auto& c : candidates) {
    const std::string& a = StrArg(&c, m, "str or a tuple of str");
    if (a.size() > sub.size()) continue;
    if (prefix ? sub.compare(0, a.size(), a) == 0
               : sub.compare(sub.size() - a.size(), a.size(), a) == 0)
      return true;
  }
  return false;
}

Value StrMethod(const std::string& s, const std::string& m, const CallArgs& a) {
  if (m == "split" || m == "rsplit") {
    const std::string* sep = OptStrArg(a.Get(0, "sep"), m);
    if (sep != nullptr && sep->empty()) throw Error("empty separator");
    const int64_t maxsplit = IntArg(a.Get(1, "maxsplit"), -1, m);
    return StrList(m == "split" ? PySplit(s, sep, maxsplit) : PyRSplit(s, sep, maxsplit));
  }
  if (m == "splitlines") return StrList(PySplitLines(s));
  if (m == "strip" || m == "lstrip" || m == "rstrip") {
    const std::string* chars = OptStrArg(a.Get(0, "chars"), m);
    return Value::Str(PyStrip(s, chars, m != "rstrip", m != "lstrip"));
  }
  if (m == "startswith" || m == "endswith") {
    return Value::Bool(AffixMatch(s, a, m == "startswith", m));
  }
  if (m == "replace") {
    return Value::Str(PyReplace(s, StrArg(a.Get(0, "old"), m), StrArg(a.Get(1, "new"), m),
                                IntArg(a.Get(2, "count"), -1, m)));
  }
  if (m == "find" || m == "rfind" || m == "index" || m == "rindex") {
    const int64_t i = PyFind(s, StrArg(a.Get(0, "sub"), m), m[0] == 'r');
    if (i < 0 && (m == "index" || m == "rindex")) throw Error("substring not found");
    return Value::Int(i);
  }
  if (m == "count") return Value::Int(PyCount(s, StrArg(a.Get(0, "sub"), m)));
  if (m == "lower") return Value::Str(PyLower(s));
  if (m == "upper") return Value::Str(PyUpper(s));
  if (m == "title") return Value::Str(PyTitle(s));
  if (m == "capitalize") return Value::Str(PyCapitalize(s));
  if (m == "removeprefix" || m == "removesuffix") {
    const std::string& x = StrArg(a.Get(0, "prefix"), m);
    if (x.size() <= s.size()) {
      if (m == "removeprefix" && s.compare(0, x.size(), x) == 0) return Value::Str(s.substr(x.size()));
      if (m == "removesuffix" && s.compare(s.size() - x.size(), x.size(), x) == 0)
        return Value::Str(s.substr(0, s.size() - x.size()));
    }
    return Value::Str(s);
  }
  if (m == "join") {
    const Value* it = a.Get(0, "iterable");
    if (it == nullptr) throw Error("join() takes exactly one argument");
    std::string out;
    bool first = true;
    for (const Value& v : Iterate(*it)) {
      if (!v.is_string()) {
        throw Error("sequence item: expected str instance, " + v.TypeName() + " found");
      }
      if (!first) out += s;
      first = false;
      out += v.as_string();
    }
    return Value::Str(std::move(out));
  }
  if (m == "isdigit") return Value::Bool(AllCodePoints(s, IsDigitCp));
  if (m == "isalpha") return Value::Bool(AllCodePoints(s, IsAlphaCp));
  if (m == "isalnum") return Value::Bool(AllCodePoints(s, IsAlnumCp));
  if (m == "isspace") return Value::Bool(AllCodePoints(s, IsPySpace));
  if (m == "islower") return Value::Bool(CaseCheck(s, true));
  if (m == "isupper") return Value::Bool(CaseCheck(s, false));
  throw Error("'str' object has no attribute '" + m + "'");
}

bool IsStrMethod(const std::string& m) {
  static const char* const kNames[] = {
      "split", "rsplit", "splitlines", "strip", "lstrip", "rstrip", "startswith", "endswith",
      "replace", "find", "rfind", "index", "rindex", "count", "lower", "upper", "title",
      "capitalize", "removeprefix", "removesuffix", "join", "isdigit", "isalpha", "isalnum",
      "isspace", "islower", "isupper"};
  return std::find(std::begin(kNames), std::end(kNames), m) != std::end(kNames);
}

Value Pairs(const DictData& d) {
  std::vector<Value> items;
  for (const auto& [k, v] : d.items) items.push_back(Value::List({Value::Str(k), v}, true));
  return Value::List(std::move(items));
}

Value DictMethod(const Value& obj, const std::string& m, const CallArgs& a) {
  const DictData& d = obj.dict();
  if (m == "get") {
    const Value* key = a.Get(0, "key");
    if (key == nullptr) throw Error("get expected at least 1 argument, got 0");
    const Value* def = a.Get(1, "default");
    const Value* hit = key->is_string() ? d.Find(key->as_string()) : nullptr;
    if (hit != nullptr) return *hit;
    return def != nullptr ? *def : Value::None();
  }
  if (m == "items") return Pairs(d);
  if (m == "keys" || m == "values") {
    std::vector<Value> out;
    for (const auto& [k, v] : d.items) out.push_back(m == "keys" ? Value::Str(k) : v);
    return Value::List(std::move(out));
  }
  if (m == "copy") return Value::Dict(d);
  throw Error("'dict' object has no attribute '" + m + "'");
}

Value ListMethod(const Value& obj, const std::string& m, const CallArgs& a) {
  const auto& items = obj.list().items;
  if (m == "index" || m == "count") {
    const Value* x = a.Get(0, "value");
    if (x == nullptr) throw Error(m + "() takes at least 1 argument");
    int64_t n = 0;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!Equal(items[i], *x)) continue;
      if (m == "index") return Value::Int(static_cast<int64_t>(i));
      ++n;
    }
    if (m == "index") throw Error(x->Repr() + " is not in list");
    return Value::Int(n);
  }
  if (m == "copy") return Value::List(items, obj.list().is_tuple);
  throw Error("'list' object has no attribute '" + m + "'");
}

Value Bind(const Value& obj, const std::string& name,
           Value (*fn)(const Value&, const std::string&, const CallArgs&)) {
  return Value::Function(name, [obj, name, fn](const CallArgs& a) { return fn(obj, name, a); });
}

Value CallStrMethod(const Value& obj, const std::string& m, const CallArgs& a) {
  return StrMethod(obj.as_string(), m, a);
}

// Python attribute lookup only (no item fallback); nullopt when the type has no such attribute.
std::optional<Value> PyAttribute(const Value& obj, const std::string& name) {
  switch (obj.kind()) {
    case Value::Kind::kString:
      if (IsStrMethod(name)) return Bind(obj, name, CallStrMethod);
      return std::nullopt;
    case Value::Kind::kDict:
      if (name == "get" || name == "items" || name == "keys" || name == "values" ||
          name == "copy")
        return Bind(obj, name, DictMethod);
      if (name == "clear" || name == "pop" || name == "popitem" || name == "setdefault" ||
          name == "update")
        return Unsafe(obj, name);
      return std::nullopt;
    case Value::Kind::kList:
      if (name == "index" || name == "count" || name == "copy") return Bind(obj, name, ListMethod);
      if (!obj.list().is_tuple &&
          (name == "append" || name == "extend" || name == "insert" || name == "pop" ||
           name == "remove" || name == "reverse" || name == "sort" || name == "clear"))
        return Unsafe(obj, name);
      return std::nullopt;
    case Value::Kind::kNamespace: {
      const Value* v = obj.dict().Find(name);
      if (v != nullptr) return *v;
      return std::nullopt;
    }
    default:
      return std::nullopt;
  }
}

// Python obj[key]; nullopt on KeyError/IndexError/TypeError.
std::optional<Value> PyItem(const Value& obj, const Value& key) {
  switch (obj.kind()) {
    case Value::Kind::kDict: {
      if (!key.is_string()) return std::nullopt;
      const Value* v = obj.dict().Find(key.as_string());
      if (v != nullptr) return *v;
      return std::nullopt;
    }
    case Value::Kind::kList:
    case Value::Kind::kString: {
      if (key.kind() != Value::Kind::kInt && key.kind() != Value::Kind::kBool) return std::nullopt;
      int64_t i = key.as_int();
      if (obj.is_list()) {
        const auto& items = obj.list().items;
        const int64_t n = static_cast<int64_t>(items.size());
        if (i < 0) i += n;
        if (i < 0 || i >= n) return std::nullopt;
        return items[static_cast<size_t>(i)];
      }
      const std::u32string cps = DecodeUtf8(obj.as_string());
      const int64_t n = static_cast<int64_t>(cps.size());
      if (i < 0) i += n;
      if (i < 0 || i >= n) return std::nullopt;
      std::string out;
      AppendUtf8(cps[static_cast<size_t>(i)], &out);
      return Value::Str(std::move(out));
    }
    default:
      return std::nullopt;
  }
}

}  // namespace

Value GetAttr(const Value& obj, const std::string& name) {
  obj.RequireDefined();
  if (auto attr = PyAttribute(obj, name)) return *attr;
  if (auto item = PyItem(obj, Value::Str(name))) return *item;
  return MissingAttr(obj, name);
}

Value GetItem(const Value& obj, const Value& key) {
  obj.RequireDefined();
  if (auto item = PyItem(obj, key)) return *item;
  if (key.is_string()) {
    if (auto attr = PyAttribute(obj, key.as_string())) return *attr;
    return MissingAttr(obj, key.as_string());
  }
  return Value::Undefined(ObjectTypeRepr(obj) + " has no element " + key.Repr());
}

Value SliceValue(const Value& obj, const Value* start, const Value* stop, const Value* step) {
  obj.RequireDefined();
  // Jinja compiles slices to a plain Python subscript (no getitem fallback), so slicing a
  // non-sequence is a TypeError rather than an undefined value.
  if (!obj.is_list() && !obj.is_string()) {
    throw Error("'" + obj.TypeName() + "' object is not subscriptable");
  }
  const auto bound = [](const Value* v, const char* what) -> std::optional<int64_t> {
    if (v == nullptr || v->is_none()) return std::nullopt;
    if (v->kind() != Value::Kind::kInt && v->kind() != Value::Kind::kBool) {
      throw Error(std::string("slice ") + what + " must be an integer or None");
    }
    return v->as_int();
  };
  const int64_t st = bound(step, "step").value_or(1);
  if (st == 0) throw Error("slice step cannot be zero");
  std::u32string cps;
  int64_t n;
  if (obj.is_string()) {
    cps = DecodeUtf8(obj.as_string());
    n = static_cast<int64_t>(cps.size());
  } else {
    n = static_cast<int64_t>(obj.list().items.size());
  }
  // CPython's PySlice_AdjustIndices.
  const auto adjust = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t i = *v;
    if (i < 0) {
      i += n;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= n) {
      i = st < 0 ? n - 1 : n;
    }
    return i;
  };
  const int64_t b = adjust(bound(start, "start"), st < 0 ? n - 1 : 0);
  const int64_t e = adjust(bound(stop, "stop"), st < 0 ? -1 : n);
  std::vector<size_t> idx;
  for (int64_t i = b; st > 0 ? i < e : i > e; i += st) idx.push_back(static_cast<size_t>(i));
  if (obj.is_string()) {
    std::string out;
    for (size_t i : idx) AppendUtf8(cps[i], &out);
    return Value::Str(std::move(out));
  }
  std::vector<Value> items;
  items.reserve(idx.size());
  for (size_t i : idx) items.push_back(obj.list().items[i]);
  return Value::List(std::move(items), obj.list().is_tuple);
}

Value CallValue(const Value& callee, const CallArgs& args) {
  callee.RequireDefined();
  if (callee.kind() != Value::Kind::kFunction) {
    throw Error("'" + callee.TypeName() + "' object is not callable");
  }
  return callee.function().fn(args);
}

}  // namespace r1::jinja
