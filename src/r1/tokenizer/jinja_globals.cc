// Global functions of Hugging Face's chat-template environment: Jinja's range, dict and namespace,
// plus raise_exception and strftime_now, which transformers adds.
#include <ctime>

#include "r1/core/error.h"
#include "r1/tokenizer/jinja_builtins.h"

namespace r1::jinja {
namespace {

// Jinja's sandbox refuses ranges longer than this (MAX_RANGE).
constexpr int64_t kMaxRange = 100000;

int64_t IntArg(const Value& v) {
  if (v.kind() != Value::Kind::kInt && v.kind() != Value::Kind::kBool) {
    throw Error("'" + v.TypeName() + "' object cannot be interpreted as an integer");
  }
  return v.as_int();
}

Value Range(const CallArgs& a) {
  const auto& p = a.positional;
  if (p.empty() || p.size() > 3) throw Error("range expected 1 to 3 arguments");
  int64_t start = 0, stop = 0, step = 1;
  if (p.size() == 1) {
    stop = IntArg(p[0]);
  } else {
    start = IntArg(p[0]);
    stop = IntArg(p[1]);
    if (p.size() == 3) step = IntArg(p[2]);
  }
  if (step == 0) throw Error("range() arg 3 must not be zero");
  std::vector<Value> out;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (static_cast<int64_t>(out.size()) >= kMaxRange) {
      throw Error("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
    }
    out.push_back(Value::Int(i));
  }
  return Value::List(std::move(out));
}

// dict(mapping_or_pairs, **kwargs), as Python's dict() and Jinja's Namespace() accept.
DictData DictFromArgs(const CallArgs& a, const char* who) {
  DictData d;
  if (a.positional.size() > 1) throw Error(std::string(who) + " expected at most 1 argument");
  if (!a.positional.empty()) {
    const Value& src = a.positional[0];
    if (src.is_dict() || src.kind() == Value::Kind::kNamespace) {
      d = src.dict();
    } else {
      for (const Value& pair : Iterate(src)) {
        const std::vector<Value> kv = Iterate(pair);
        if (kv.size() != 2 || !kv[0].is_string()) {
          throw Error(std::string(who) + " needs (string key, value) pairs");
        }
        d.Set(kv[0].as_string(), kv[1]);
      }
    }
  }
  for (const auto& [k, v] : a.keyword) d.Set(k, v);
  return d;
}

Value StrftimeNow(const CallArgs& a) {
  const Value* fmt = a.Get(0, "format");
  if (fmt == nullptr || !fmt->is_string()) throw Error("strftime_now() needs a format string");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[256];
  const size_t n = std::strftime(buf, sizeof buf, fmt->as_string().c_str(), &tm);
  return Value::Str(std::string(buf, n));
}

}  // namespace

DictData GlobalFunctions() {
  DictData g;
  g.Set("range", Value::Function("range", Range));
  g.Set("dict", Value::Function("dict", [](const CallArgs& a) {
          return Value::Dict(DictFromArgs(a, "dict"));
        }));
  g.Set("namespace", Value::Function("namespace", [](const CallArgs& a) {
          return Value::Namespace(DictFromArgs(a, "namespace"));
        }));
  g.Set("raise_exception", Value::Function("raise_exception", [](const CallArgs& a) -> Value {
          const Value* msg = a.Get(0, "message");
          throw RaisedException(msg != nullptr ? msg->Str() : std::string());
        }));
  g.Set("strftime_now", Value::Function("strftime_now", StrftimeNow));
  return g;
}

}  // namespace r1::jinja
