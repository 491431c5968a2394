// The values a Jinja template computes with: JSON-like data plus the Python notions Jinja exposes
// (undefined, tuples, namespaces, callables). Lists, dicts and namespaces are shared by reference,
// as Python objects are, so `ns.x = ...` inside a loop is seen after it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace r1::jinja {

class Value;

// Arguments of a call, filter or test as the template wrote them.
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;

  // The argument at position `index`, or the keyword `name`, or nullptr.
  const Value* Get(size_t index, std::string_view name) const;
};

using NativeFunction = std::function<Value(const CallArgs&)>;

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
};

// Insertion-ordered, as Python dicts are: tojson output and iteration order depend on it.
struct DictData {
  std::vector<std::pair<std::string, Value>> items;

  const Value* Find(std::string_view key) const;
  void Set(const std::string& key, Value value);
};

struct FunctionData {
  std::string name;
  NativeFunction fn;
};

class Value {
 public:
  enum class Kind { kUndefined, kNone, kBool, kInt, kFloat, kString, kList, kDict, kNamespace,
                    kFunction };

  // An undefined value; `message` is what the error says if the template uses it for more than
  // printing or testing (Jinja's default Undefined).
  Value() = default;
  static Value Undefined(std::string message);
  static Value None();
  static Value Bool(bool v);
  static Value Int(int64_t v);
  static Value Float(double v);
  static Value Str(std::string v);
  static Value List(std::vector<Value> items, bool is_tuple = false);
  static Value Dict(DictData data = {});
  static Value Namespace(DictData data = {});
  static Value Function(std::string name, NativeFunction fn);
  static Value FromJson(const nlohmann::ordered_json& j);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_number() const {
    return kind_ == Kind::kBool || kind_ == Kind::kInt || kind_ == Kind::kFloat;
  }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return kind_ == Kind::kBool ? (b_ ? 1 : 0) : i_; }
  double as_float() const { return kind_ == Kind::kFloat ? f_ : static_cast<double>(as_int()); }
  const std::string& as_string() const { return s_; }
  const std::string& undefined_message() const { return s_; }
  ListData& list() const { return *list_; }
  DictData& dict() const { return *dict_; }
  const FunctionData& function() const { return *fn_; }
  bool SameObject(const Value& other) const;

  // Python truthiness.
  bool Truthy() const;
  // Python str(); undefined prints as "".
  std::string Str() const;
  // Python repr(), as lists and dicts print their items.
  std::string Repr() const;
  // Python type name, for error messages.
  std::string TypeName() const;

  // Python json.dumps (Hugging Face's tojson): ", " and ": " separators unless indented.
  std::string ToJson(std::optional<int> indent = std::nullopt, bool ensure_ascii = false,
                     bool sort_keys = false,
                     std::optional<std::pair<std::string, std::string>> separators = {}) const;

  // Throws the Undefined error if this is undefined (Jinja's strict operations on Undefined).
  void RequireDefined() const;

 private:
  Kind kind_ = Kind::kUndefined;
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::string s_;  // string value, or the undefined message
  std::shared_ptr<ListData> list_;
  std::shared_ptr<DictData> dict_;  // dict or namespace
  std::shared_ptr<FunctionData> fn_;
};

// Python ==, <, and `in`.
bool Equal(const Value& a, const Value& b);
bool Less(const Value& a, const Value& b);  // throws on unorderable types
bool Contains(const Value& container, const Value& item);

// Python iteration: list items, dict keys, string code points; undefined is empty.
std::vector<Value> Iterate(const Value& v);
// Python len().
int64_t Length(const Value& v);

}  // namespace r1::jinja
