// Syntax tree of a parsed Jinja template. Nodes are plain data; the evaluator walks them.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "r1/tokenizer/jinja_value.h"

namespace r1::jinja {

struct SourcePos {
  int line = 0;
  int col = 0;
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct ArgExprs {
  std::vector<ExprPtr> positional;
  std::vector<std::pair<std::string, ExprPtr>> keyword;
};

struct Expr {
  enum class Kind {
    kConst,     // value
    kName,      // name
    kList,      // items (tuple when is_tuple)
    kDict,      // items as key/value pairs in `pairs`
    kGetAttr,   // a.name
    kGetItem,   // a[b]
    kSlice,     // a[b:c:d], b/c/d may be null
    kNeg,       // -a
    kPos,       // +a
    kNot,       // not a
    kBinary,    // a op b (arithmetic, ~)
    kAnd,       // a and b
    kOr,        // a or b
    kCompare,   // a op1 b op2 c ... (ops, items = operands)
    kCond,      // b if a else c (a = test, b, c may be null)
    kCall,      // a(args)
    kFilter,    // a | name(args); a is null inside {% filter %} blocks
    kTest,      // a is name(args)
  };

  Kind kind;
  SourcePos pos;
  Value value;
  std::string name;  // name, attribute, operator, filter or test
  ExprPtr a, b, c;
  std::vector<ExprPtr> items;
  std::vector<std::string> ops;
  std::vector<std::pair<ExprPtr, ExprPtr>> pairs;
  ArgExprs args;

  Expr(Kind k, SourcePos p) : kind(k), pos(p) {}
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

// Target of set/for: one name, a tuple of names, or namespace attribute `ns.attr`.
struct AssignTarget {
  std::vector<std::string> names;  // more than one: tuple unpacking
  bool is_tuple = false;
  std::string ns_attr;  // non-empty: names[0].ns_attr
};

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // may be null
};

struct Stmt {
  enum class Kind {
    kText,      // text
    kPrint,     // expr
    kIf,        // branches (test, body), else_body
    kFor,       // target, expr (iterable), filter (may be null), body, else_body
    kSet,       // target, expr
    kSetBlock,  // target, body, filters (kFilter chain over null input, may be null)
    kMacro,     // text (name), params, body
    kFilterBlock,  // filters, body
    kWith,      // assigns, body
    kBreak,
    kContinue,
    kScope,     // body rendered in place ({% generation %})
  };

  Kind kind;
  SourcePos pos;
  std::string text;
  ExprPtr expr;
  ExprPtr filter;
  AssignTarget target;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body;
  Body else_body;
  std::vector<MacroParam> params;
  std::vector<std::pair<AssignTarget, ExprPtr>> assigns;

  Stmt(Kind k, SourcePos p) : kind(k), pos(p) {}
};

}  // namespace r1::jinja
