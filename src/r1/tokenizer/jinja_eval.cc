#include "r1/tokenizer/jinja_eval.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <unordered_map>

#include "r1/core/error.h"
#include "r1/tokenizer/jinja_builtins.h"

namespace r1::jinja {
namespace {

// An error that already names its template position, so outer nodes pass it through unchanged.
class PositionedError : public Error {
 public:
  using Error::Error;
};

struct Scope {
  std::unordered_map<std::string, Value> vars;
  std::shared_ptr<Scope> parent;
};
using ScopePtr = std::shared_ptr<Scope>;

ScopePtr Child(const ScopePtr& parent) {
  auto s = std::make_shared<Scope>();
  s->parent = parent;
  return s;
}

enum class Flow { kNormal, kBreak, kContinue };

// Recursion guard for macros calling themselves.
constexpr int kMaxMacroDepth = 200;

// Python ints do not overflow; rather than wrap silently, refuse results outside int64.
void CheckOverflow(bool overflow) {
  if (overflow) throw Error("integer overflow");
}

Value Arithmetic(const std::string& op, const Value& a, const Value& b) {
  using K = Value::Kind;
  if (op == "~") return Value::Str(a.Str() + b.Str());
  a.RequireDefined();
  b.RequireDefined();
  const bool ints = (a.kind() == K::kInt || a.kind() == K::kBool) &&
                    (b.kind() == K::kInt || b.kind() == K::kBool);
  const bool nums = a.is_number() && b.is_number();
  int64_t r = 0;
  if (op == "+") {
    if (ints) {
      CheckOverflow(__builtin_add_overflow(a.as_int(), b.as_int(), &r));
      return Value::Int(r);
    }
    if (nums) return Value::Float(a.as_float() + b.as_float());
    if (a.is_string() && b.is_string()) return Value::Str(a.as_string() + b.as_string());
    if (a.is_list() && b.is_list() && a.list().is_tuple == b.list().is_tuple) {
      std::vector<Value> items = a.list().items;
      items.insert(items.end(), b.list().items.begin(), b.list().items.end());
      return Value::List(std::move(items), a.list().is_tuple);
    }
    if (a.is_string() || a.is_list()) {
      throw Error("can only concatenate " + a.TypeName() + " (not \"" + b.TypeName() + "\") to " +
                  a.TypeName());
    }
  } else if (op == "-") {
    if (ints) {
      CheckOverflow(__builtin_sub_overflow(a.as_int(), b.as_int(), &r));
      return Value::Int(r);
    }
    if (nums) return Value::Float(a.as_float() - b.as_float());
  } else if (op == "*") {
    if (ints) {
      CheckOverflow(__builtin_mul_overflow(a.as_int(), b.as_int(), &r));
      return Value::Int(r);
    }
    if (nums) return Value::Float(a.as_float() * b.as_float());
    const Value* seq = (a.is_string() || a.is_list()) ? &a : (b.is_string() || b.is_list()) ? &b : nullptr;
    const Value* count = seq == &a ? &b : &a;
    if (seq != nullptr && (count->kind() == K::kInt || count->kind() == K::kBool)) {
      const int64_t n = count->as_int();
      if (seq->is_string()) {
        std::string out;
        for (int64_t i = 0; i < n; ++i) out += seq->as_string();
        return Value::Str(std::move(out));
      }
      std::vector<Value> items;
      for (int64_t i = 0; i < n; ++i) {
        items.insert(items.end(), seq->list().items.begin(), seq->list().items.end());
      }
      return Value::List(std::move(items), seq->list().is_tuple);
    }
  } else if (op == "/") {
    if (nums) {
      if (b.as_float() == 0) throw Error("division by zero");
      return Value::Float(a.as_float() / b.as_float());
    }
  } else if (op == "//" || op == "%") {
    if (nums) {
      if (b.as_float() == 0) {
        throw Error(op == "%" ? "integer division or modulo by zero" : "division by zero");
      }
      if (ints) {
        const int64_t x = a.as_int(), y = b.as_int();
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {  // Python floors toward negative infinity
          --q;
          m += y;
        }
        return Value::Int(op == "//" ? q : m);
      }
      const double x = a.as_float(), y = b.as_float();
      if (op == "//") return Value::Float(std::floor(x / y));
      double m = std::fmod(x, y);
      if (m != 0 && ((m < 0) != (y < 0))) m += y;
      return Value::Float(m);
    }
    if (op == "%" && a.is_string()) throw Error("printf-style string formatting is not supported");
  } else if (op == "**") {
    if (ints && b.as_int() >= 0) {
      int64_t acc = 1;
      for (int64_t i = 0; i < b.as_int(); ++i) {
        CheckOverflow(__builtin_mul_overflow(acc, a.as_int(), &acc));
      }
      return Value::Int(acc);
    }
    if (nums) return Value::Float(std::pow(a.as_float(), b.as_float()));
  }
  throw Error("unsupported operand type(s) for " + op + ": '" + a.TypeName() + "' and '" +
              b.TypeName() + "'");
}

bool CompareOp(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return Equal(a, b);
  if (op == "!=") return !Equal(a, b);
  if (op == "<") return Less(a, b);
  if (op == ">") return Less(b, a);
  if (op == "<=") return Less(a, b) || Equal(a, b);
  if (op == ">=") return Less(b, a) || Equal(a, b);
  if (op == "in") return Contains(b, a);
  return !Contains(b, a);  // not in
}

class Renderer {
 public:
  explicit Renderer(const std::string& name) : name_(name) {}

  std::string Run(const Body& body, const DictData& vars) {
    auto globals = std::make_shared<Scope>();
    for (const auto& [k, v] : GlobalFunctions().items) globals->vars[k] = v;
    auto top = Child(globals);
    for (const auto& [k, v] : vars.items) top->vars[k] = v;
    std::string out;
    Exec(body, top, &out);
    return out;
  }

 private:
  std::string Where(SourcePos p) const {
    return "jinja template '" + name_ + "' line " + std::to_string(p.line) + " column " +
           std::to_string(p.col) + ": ";
  }

  // Runs fn, giving plain errors the position of the node that raised them.
  template <typename Fn>
  auto AtPos(SourcePos pos, Fn&& fn) -> decltype(fn()) {
    try {
      return fn();
    } catch (const RaisedException&) {
      throw;
    } catch (const PositionedError&) {
      throw;
    } catch (const std::exception& e) {
      throw PositionedError(Where(pos) + e.what());
    }
  }

  static Value Lookup(const ScopePtr& scope, const std::string& name) {
    for (const Scope* s = scope.get(); s != nullptr; s = s->parent.get()) {
      const auto it = s->vars.find(name);
      if (it != s->vars.end()) return it->second;
    }
    return Value::Undefined("'" + name + "' is undefined");
  }

  static void Assign(const AssignTarget& t, const Value& v, const ScopePtr& scope) {
    if (!t.ns_attr.empty()) {
      const Value ns = Lookup(scope, t.names[0]);
      if (ns.kind() != Value::Kind::kNamespace) {
        throw Error("cannot assign attribute on non-namespace object");
      }
      ns.dict().Set(t.ns_attr, v);
      return;
    }
    if (!t.is_tuple) {
      scope->vars[t.names[0]] = v;
      return;
    }
    const std::vector<Value> parts = Iterate(v);
    if (parts.size() != t.names.size()) {
      throw Error(parts.size() > t.names.size()
                      ? "too many values to unpack (expected " + std::to_string(t.names.size()) + ")"
                      : "not enough values to unpack (expected " + std::to_string(t.names.size()) +
                            ", got " + std::to_string(parts.size()) + ")");
    }
    for (size_t i = 0; i < parts.size(); ++i) scope->vars[t.names[i]] = parts[i];
  }

  Flow Exec(const Body& body, const ScopePtr& scope, std::string* out) {
    for (const auto& s : body) {
      const Flow f = ExecStmt(*s, scope, out);
      if (f != Flow::kNormal) return f;
    }
    return Flow::kNormal;
  }

  Flow ExecStmt(const Stmt& s, const ScopePtr& scope, std::string* out) {
    switch (s.kind) {
      case Stmt::Kind::kText:
        *out += s.text;
        return Flow::kNormal;
      case Stmt::Kind::kPrint:
        *out += Eval(*s.expr, scope).Str();
        return Flow::kNormal;
      case Stmt::Kind::kIf:
        for (const auto& [test, body] : s.branches) {
          if (Eval(*test, scope).Truthy()) return Exec(body, scope, out);
        }
        return Exec(s.else_body, scope, out);
      case Stmt::Kind::kFor:
        return ExecFor(s, scope, out);
      case Stmt::Kind::kSet: {
        const Value v = Eval(*s.expr, scope);
        AtPos(s.pos, [&] { Assign(s.target, v, scope); });
        return Flow::kNormal;
      }
      case Stmt::Kind::kSetBlock: {
        std::string text;
        Exec(s.body, scope, &text);
        Value v = Value::Str(std::move(text));
        if (s.filter) v = ApplyChain(*s.filter, v, scope);
        AtPos(s.pos, [&] { Assign(s.target, v, scope); });
        return Flow::kNormal;
      }
      case Stmt::Kind::kFilterBlock: {
        std::string text;
        Exec(s.body, scope, &text);
        *out += ApplyChain(*s.filter, Value::Str(std::move(text)), scope).Str();
        return Flow::kNormal;
      }
      case Stmt::Kind::kMacro:
        scope->vars[s.text] = MakeMacro(s, scope);
        return Flow::kNormal;
      case Stmt::Kind::kWith: {
        auto inner = Child(scope);
        for (const auto& [target, expr] : s.assigns) {
          const Value v = Eval(*expr, scope);
          AtPos(s.pos, [&] { Assign(target, v, inner); });
        }
        return Exec(s.body, inner, out);
      }
      case Stmt::Kind::kScope:
        return Exec(s.body, scope, out);
      case Stmt::Kind::kBreak:
        return Flow::kBreak;
      case Stmt::Kind::kContinue:
        return Flow::kContinue;
    }
    return Flow::kNormal;
  }

  Flow ExecFor(const Stmt& s, const ScopePtr& scope, std::string* out) {
    const Value seq = Eval(*s.expr, scope);
    std::vector<Value> items = AtPos(s.expr->pos, [&] { return Iterate(seq); });
    if (s.filter) {
      std::vector<Value> kept;
      for (auto& item : items) {
        auto probe = Child(scope);
        AtPos(s.pos, [&] { Assign(s.target, item, probe); });
        if (Eval(*s.filter, probe).Truthy()) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    const int64_t n = static_cast<int64_t>(items.size());
    for (int64_t i = 0; i < n; ++i) {
      auto iter = Child(scope);
      AtPos(s.pos, [&] { Assign(s.target, items[static_cast<size_t>(i)], iter); });
      iter->vars["loop"] = LoopObject(items, i);
      if (Exec(s.body, iter, out) == Flow::kBreak) break;
    }
    if (n == 0) Exec(s.else_body, Child(scope), out);
    return Flow::kNormal;
  }

  static Value LoopObject(const std::vector<Value>& items, int64_t i) {
    const int64_t n = static_cast<int64_t>(items.size());
    DictData d;
    d.Set("index", Value::Int(i + 1));
    d.Set("index0", Value::Int(i));
    d.Set("revindex", Value::Int(n - i));
    d.Set("revindex0", Value::Int(n - i - 1));
    d.Set("first", Value::Bool(i == 0));
    d.Set("last", Value::Bool(i == n - 1));
    d.Set("length", Value::Int(n));
    d.Set("depth", Value::Int(1));
    d.Set("depth0", Value::Int(0));
    d.Set("previtem", i > 0 ? items[static_cast<size_t>(i - 1)]
                            : Value::Undefined("there is no previous item"));
    d.Set("nextitem", i + 1 < n ? items[static_cast<size_t>(i + 1)]
                                : Value::Undefined("there is no next item"));
    d.Set("cycle", Value::Function("cycle", [i](const CallArgs& a) {
            if (a.positional.empty()) throw Error("no items for cycling given");
            return a.positional[static_cast<size_t>(i) % a.positional.size()];
          }));
    return Value::Namespace(std::move(d));
  }

  Value MakeMacro(const Stmt& s, const ScopePtr& scope) {
    const Stmt* macro = &s;
    // The macro lives in the scope it closes over; holding that scope weakly (and keeping it alive
    // here for the render) avoids a shared_ptr cycle.
    macro_scopes_.push_back(scope);
    std::weak_ptr<Scope> weak_scope = scope;
    return Value::Function(s.text, [this, macro, weak_scope](const CallArgs& a) {
      const ScopePtr scope = weak_scope.lock();
      if (!scope) throw Error("macro '" + macro->text + "' called after its render ended");
      if (++macro_depth_ > kMaxMacroDepth) {
        --macro_depth_;
        throw Error("macro recursion too deep in '" + macro->text + "'");
      }
      struct Guard {
        int* d;
        ~Guard() { --*d; }
      } guard{&macro_depth_};
      if (a.positional.size() > macro->params.size()) {
        throw Error("macro '" + macro->text + "' takes not more than " +
                    std::to_string(macro->params.size()) + " argument(s)");
      }
      auto call = Child(scope);
      for (const auto& [k, v] : a.keyword) {
        const bool known = std::any_of(macro->params.begin(), macro->params.end(),
                                       [&](const MacroParam& p) { return p.name == k; });
        if (!known) throw Error("macro '" + macro->text + "' takes no keyword argument '" + k + "'");
      }
      for (size_t i = 0; i < macro->params.size(); ++i) {
        const MacroParam& p = macro->params[i];
        const Value* given = a.Get(i, p.name);
        if (given != nullptr) {
          call->vars[p.name] = *given;
        } else if (p.default_value) {
          call->vars[p.name] = Eval(*p.default_value, call);
        } else {
          call->vars[p.name] = Value::Undefined("parameter '" + p.name + "' was not provided");
        }
      }
      std::string text;
      Exec(macro->body, call, &text);
      return Value::Str(std::move(text));
    });
  }

  CallArgs EvalArgs(const ArgExprs& args, const ScopePtr& scope) {
    CallArgs out;
    for (const auto& e : args.positional) out.positional.push_back(Eval(*e, scope));
    for (const auto& [k, e] : args.keyword) out.keyword.emplace_back(k, Eval(*e, scope));
    return out;
  }

  // Applies a filter chain parsed over a null input ({% filter %}, {% set x | f %}) to v.
  Value ApplyChain(const Expr& chain, const Value& v, const ScopePtr& scope) {
    const Value input = chain.a ? ApplyChain(*chain.a, v, scope) : v;
    const CallArgs args = EvalArgs(chain.args, scope);
    return AtPos(chain.pos, [&] { return ApplyFilter(chain.name, input, args); });
  }

  Value Eval(const Expr& e, const ScopePtr& scope) {
    switch (e.kind) {
      case Expr::Kind::kConst:
        return e.value;
      case Expr::Kind::kName:
        return Lookup(scope, e.name);
      case Expr::Kind::kList: {
        std::vector<Value> items;
        items.reserve(e.items.size());
        for (const auto& i : e.items) items.push_back(Eval(*i, scope));
        return Value::List(std::move(items), e.value.Truthy());
      }
      case Expr::Kind::kDict: {
        DictData d;
        for (const auto& [k, v] : e.pairs) {
          const Value key = Eval(*k, scope);
          if (!key.is_string()) {
            throw PositionedError(Where(k->pos) + "dict literal keys must be strings here, got " +
                                  key.TypeName());
          }
          d.Set(key.as_string(), Eval(*v, scope));
        }
        return Value::Dict(std::move(d));
      }
      case Expr::Kind::kGetAttr: {
        const Value obj = Eval(*e.a, scope);
        return AtPos(e.pos, [&] { return GetAttr(obj, e.name); });
      }
      case Expr::Kind::kGetItem: {
        const Value obj = Eval(*e.a, scope);
        if (e.b->kind == Expr::Kind::kSlice) {
          const Expr& sl = *e.b;
          const Value start = sl.a ? Eval(*sl.a, scope) : Value::None();
          const Value stop = sl.b ? Eval(*sl.b, scope) : Value::None();
          const Value step = sl.c ? Eval(*sl.c, scope) : Value::None();
          return AtPos(e.pos, [&] { return SliceValue(obj, &start, &stop, &step); });
        }
        const Value key = Eval(*e.b, scope);
        return AtPos(e.pos, [&] { return GetItem(obj, key); });
      }
      case Expr::Kind::kSlice:
        throw PositionedError(Where(e.pos) + "slice outside of a subscript");
      case Expr::Kind::kNeg:
      case Expr::Kind::kPos: {
        const Value v = Eval(*e.a, scope);
        return AtPos(e.pos, [&] {
          v.RequireDefined();
          if (!v.is_number()) {
            throw Error(std::string("bad operand type for unary ") +
                        (e.kind == Expr::Kind::kNeg ? "-" : "+") + ": '" + v.TypeName() + "'");
          }
          if (e.kind == Expr::Kind::kPos) {
            return v.kind() == Value::Kind::kBool ? Value::Int(v.as_int()) : v;
          }
          if (v.kind() == Value::Kind::kFloat) return Value::Float(-v.as_float());
          return Value::Int(-v.as_int());
        });
      }
      case Expr::Kind::kNot:
        return Value::Bool(!Eval(*e.a, scope).Truthy());
      case Expr::Kind::kBinary: {
        const Value a = Eval(*e.a, scope);
        const Value b = Eval(*e.b, scope);
        return AtPos(e.pos, [&] { return Arithmetic(e.name, a, b); });
      }
      case Expr::Kind::kAnd: {
        Value a = Eval(*e.a, scope);
        return a.Truthy() ? Eval(*e.b, scope) : a;
      }
      case Expr::Kind::kOr: {
        Value a = Eval(*e.a, scope);
        return a.Truthy() ? a : Eval(*e.b, scope);
      }
      case Expr::Kind::kCompare: {
        Value left = Eval(*e.items[0], scope);
        for (size_t i = 0; i < e.ops.size(); ++i) {
          Value right = Eval(*e.items[i + 1], scope);
          const bool ok = AtPos(e.pos, [&] { return CompareOp(e.ops[i], left, right); });
          if (!ok) return Value::Bool(false);
          left = std::move(right);
        }
        return Value::Bool(true);
      }
      case Expr::Kind::kCond:
        if (Eval(*e.a, scope).Truthy()) return Eval(*e.b, scope);
        if (e.c) return Eval(*e.c, scope);
        return Value::Undefined("the inline if-expression on line " + std::to_string(e.pos.line) +
                                " evaluated to false and no else section was defined.");
      case Expr::Kind::kCall: {
        const Value callee = Eval(*e.a, scope);
        const CallArgs args = EvalArgs(e.args, scope);
        return AtPos(e.pos, [&] { return CallValue(callee, args); });
      }
      case Expr::Kind::kFilter: {
        const Value input = e.a ? Eval(*e.a, scope) : Value();
        const CallArgs args = EvalArgs(e.args, scope);
        return AtPos(e.pos, [&] { return ApplyFilter(e.name, input, args); });
      }
      case Expr::Kind::kTest: {
        const Value input = Eval(*e.a, scope);
        const CallArgs args = EvalArgs(e.args, scope);
        return Value::Bool(AtPos(e.pos, [&] { return ApplyTest(e.name, input, args); }));
      }
    }
    return Value();
  }

  const std::string& name_;
  int macro_depth_ = 0;
  std::vector<ScopePtr> macro_scopes_;
};

}  // namespace

std::string RenderBody(const Body& body, const std::string& template_name, const DictData& vars) {
  return Renderer(template_name).Run(body, vars);
}

}  // namespace r1::jinja
