#include "r1/tokenizer/jinja_parser.h"

#include <algorithm>
#include <initializer_list>

#include "r1/core/error.h"
#include "r1/tokenizer/jinja_builtins.h"

namespace r1::jinja {
namespace {

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, const std::string& name)
      : toks_(tokens), name_(name) {}

  Body Run() {
    Body body = Subparse({});
    return body;
  }

 private:
  struct OpenBlock {
    std::string tag;
    SourcePos pos;
  };

  const Token& Cur() const { return toks_[i_]; }
  const Token& Look() const { return toks_[std::min(i_ + 1, toks_.size() - 1)]; }
  SourcePos Pos(const Token& t) const { return {t.line, t.col}; }
  void Next() {
    if (i_ + 1 < toks_.size()) ++i_;
  }

  [[noreturn]] void Fail(SourcePos p, const std::string& msg) const {
    throw Error("jinja template '" + name_ + "' line " + std::to_string(p.line) + " column " +
                std::to_string(p.col) + ": " + msg);
  }

  static std::string Describe(const Token& t) {
    switch (t.type) {
      case TokenType::kEof: return "end of template";
      case TokenType::kBlockEnd: return "end of statement block";
      case TokenType::kVariableEnd: return "end of print statement";
      case TokenType::kBlockBegin: return "begin of statement block";
      case TokenType::kVariableBegin: return "begin of print statement";
      case TokenType::kData: return "template data";
      case TokenType::kString: return "string";
      case TokenType::kInteger: return "integer";
      case TokenType::kFloat: return "float";
      default: return t.value;
    }
  }

  bool IsOp(const char* op) const {
    return Cur().type == TokenType::kOperator && Cur().value == op;
  }
  bool IsName(const char* name) const {
    return Cur().type == TokenType::kName && Cur().value == name;
  }
  bool SkipOp(const char* op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(const char* name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }
  void ExpectOp(const char* op) {
    if (!SkipOp(op)) {
      Fail(Pos(Cur()), std::string("expected '") + op + "', got '" + Describe(Cur()) + "'");
    }
  }
  std::string ExpectName() {
    if (Cur().type != TokenType::kName) {
      Fail(Pos(Cur()), "expected a name, got '" + Describe(Cur()) + "'");
    }
    std::string v = Cur().value;
    Next();
    return v;
  }
  void ExpectType(TokenType type) {
    if (Cur().type != type) {
      Token want;
      want.type = type;
      Fail(Pos(Cur()), "expected '" + Describe(want) + "', got '" + Describe(Cur()) + "'");
    }
    Next();
  }

  ExprPtr Make(Expr::Kind k, SourcePos p) { return std::make_unique<Expr>(k, p); }

  // ---- statements ----

  Body Subparse(std::initializer_list<const char*> end_tags) {
    Body body;
    while (true) {
      const Token& t = Cur();
      switch (t.type) {
        case TokenType::kData: {
          auto s = std::make_unique<Stmt>(Stmt::Kind::kText, Pos(t));
          s->text = t.value;
          body.push_back(std::move(s));
          Next();
          break;
        }
        case TokenType::kVariableBegin: {
          auto s = std::make_unique<Stmt>(Stmt::Kind::kPrint, Pos(t));
          Next();
          s->expr = ParseTuple(false, true, {}, false);
          ExpectType(TokenType::kVariableEnd);
          body.push_back(std::move(s));
          break;
        }
        case TokenType::kBlockBegin: {
          Next();
          if (Cur().type == TokenType::kName) {
            for (const char* end : end_tags) {
              if (Cur().value == end) return body;
            }
          }
          body.push_back(ParseStatement());
          ExpectType(TokenType::kBlockEnd);
          break;
        }
        case TokenType::kEof:
          if (end_tags.size() != 0) FailEof(end_tags);
          return body;
        default:
          Fail(Pos(t), "unexpected '" + Describe(t) + "'");
      }
    }
  }

  static std::string TagList(std::initializer_list<const char*> tags) {
    std::string out;
    for (const char* t : tags) {
      if (!out.empty()) out += " or ";
      out += std::string("'") + t + "'";
    }
    return out;
  }

  [[noreturn]] void FailEof(std::initializer_list<const char*> end_tags) const {
    const OpenBlock& open = blocks_.back();
    Fail(open.pos, "unexpected end of template: the '" + open.tag +
                       "' block opened here was never closed (Jinja was looking for " +
                       TagList(end_tags) + ")");
  }

  // Parses the body of a block after its opening tag, up to one of end_tags (left current).
  Body ParseStatements(std::initializer_list<const char*> end_tags, bool drop_needle) {
    ExpectType(TokenType::kBlockEnd);
    Body body = Subparse(end_tags);
    if (drop_needle) Next();
    return body;
  }

  StmtPtr ParseStatement() {
    const Token& t = Cur();
    if (t.type != TokenType::kName) Fail(Pos(t), "tag name expected");
    const std::string tag = t.value;
    const SourcePos pos = Pos(t);
    blocks_.push_back({tag, pos});
    StmtPtr s;
    if (tag == "if") s = ParseIf();
    else if (tag == "for") s = ParseFor();
    else if (tag == "set") s = ParseSet();
    else if (tag == "macro") s = ParseMacro();
    else if (tag == "filter") s = ParseFilterBlock();
    else if (tag == "with") s = ParseWith();
    else if (tag == "generation") s = ParseGeneration();
    else if (tag == "break" || tag == "continue") s = ParseLoopControl(tag);
    else {
      std::string msg = "encountered unknown tag '" + tag + "'";
      for (auto it = blocks_.rbegin() + 1; it != blocks_.rend(); ++it) {
        if (it->tag == "if" || it->tag == "for" || it->tag == "macro" || it->tag == "set" ||
            it->tag == "filter" || it->tag == "with" || it->tag == "generation") {
          msg += "; the innermost block that needs to be closed is '" + it->tag + "'";
          break;
        }
      }
      Fail(pos, msg);
    }
    blocks_.pop_back();
    return s;
  }

  StmtPtr ParseIf() {
    auto s = std::make_unique<Stmt>(Stmt::Kind::kIf, Pos(Cur()));
    Next();
    while (true) {
      ExprPtr test = ParseTuple(false, false, {}, false);
      Body body = ParseStatements({"elif", "else", "endif"}, false);
      s->branches.emplace_back(std::move(test), std::move(body));
      const std::string which = Cur().value;
      Next();
      if (which == "elif") continue;
      if (which == "else") s->else_body = ParseStatements({"endif"}, true);
      break;
    }
    return s;
  }

  StmtPtr ParseFor() {
    auto s = std::make_unique<Stmt>(Stmt::Kind::kFor, Pos(Cur()));
    Next();
    s->target = ParseAssignTarget(false, {"in"});
    if (!SkipName("in")) Fail(Pos(Cur()), "expected 'in', got '" + Describe(Cur()) + "'");
    s->expr = ParseTuple(false, false, {"recursive"}, false);
    if (SkipName("if")) s->filter = ParseExpression(true);
    if (IsName("recursive")) Fail(Pos(Cur()), "recursive loops are not supported");
    loop_depth_++;
    s->body = ParseStatements({"endfor", "else"}, false);
    loop_depth_--;
    const std::string which = Cur().value;
    Next();
    if (which == "else") s->else_body = ParseStatements({"endfor"}, true);
    return s;
  }

  StmtPtr ParseSet() {
    const SourcePos pos = Pos(Cur());
    Next();
    AssignTarget target = ParseAssignTarget(true, {});
    if (SkipOp("=")) {
      auto s = std::make_unique<Stmt>(Stmt::Kind::kSet, pos);
      s->target = std::move(target);
      s->expr = ParseTuple(false, true, {}, false);
      return s;
    }
    auto s = std::make_unique<Stmt>(Stmt::Kind::kSetBlock, pos);
    s->target = std::move(target);
    if (IsOp("|")) s->filter = ParseFilter(nullptr, false);
    s->body = ParseStatements({"endset"}, true);
    return s;
  }

  StmtPtr ParseMacro() {
    auto s = std::make_unique<Stmt>(Stmt::Kind::kMacro, Pos(Cur()));
    Next();
    s->text = ExpectName();
    ExpectOp("(");
    while (!IsOp(")")) {
      if (!s->params.empty()) ExpectOp(",");
      MacroParam p;
      p.name = ExpectName();
      if (SkipOp("=")) p.default_value = ParseExpression(true);
      s->params.push_back(std::move(p));
    }
    ExpectOp(")");
    const int saved = loop_depth_;
    loop_depth_ = 0;
    s->body = ParseStatements({"endmacro"}, true);
    loop_depth_ = saved;
    return s;
  }

  StmtPtr ParseFilterBlock() {
    auto s = std::make_unique<Stmt>(Stmt::Kind::kFilterBlock, Pos(Cur()));
    Next();
    s->filter = ParseFilter(nullptr, true);
    s->body = ParseStatements({"endfilter"}, true);
    return s;
  }

  StmtPtr ParseWith() {
    auto s = std::make_unique<Stmt>(Stmt::Kind::kWith, Pos(Cur()));
    Next();
    while (Cur().type != TokenType::kBlockEnd) {
      if (!s->assigns.empty()) ExpectOp(",");
      AssignTarget target = ParseAssignTarget(false, {});
      ExpectOp("=");
      s->assigns.emplace_back(std::move(target), ParseExpression(true));
    }
    s->body = ParseStatements({"endwith"}, true);
    return s;
  }

  StmtPtr ParseGeneration() {
    auto s = std::make_unique<Stmt>(Stmt::Kind::kScope, Pos(Cur()));
    Next();
    s->body = ParseStatements({"endgeneration"}, true);
    return s;
  }

  StmtPtr ParseLoopControl(const std::string& tag) {
    const SourcePos pos = Pos(Cur());
    if (loop_depth_ == 0) Fail(pos, "'" + tag + "' outside of a loop");
    Next();
    return std::make_unique<Stmt>(tag == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue,
                                  pos);
  }

  AssignTarget ParseAssignTarget(bool with_namespace, std::initializer_list<const char*> end) {
    AssignTarget t;
    if (with_namespace && Cur().type == TokenType::kName && Look().type == TokenType::kOperator &&
        Look().value == ".") {
      t.names.push_back(ExpectName());
      Next();
      t.ns_attr = ExpectName();
      return t;
    }
    const bool paren = SkipOp("(");
    while (true) {
      if (!t.names.empty()) {
        if (!SkipOp(",")) break;
        t.is_tuple = true;
      }
      if (paren && IsOp(")")) break;
      if (Cur().type != TokenType::kName) {
        if (!t.names.empty()) break;
        Fail(Pos(Cur()), "can't assign to '" + Describe(Cur()) + "'");
      }
      bool stop = false;
      for (const char* e : end) stop = stop || IsName(e);
      if (stop) break;
      const std::string n = ExpectName();
      if (n == "true" || n == "false" || n == "none" || n == "True" || n == "False" ||
          n == "None") {
        Fail(Pos(Cur()), "can't assign to constant '" + n + "'");
      }
      t.names.push_back(n);
    }
    if (paren) {
      ExpectOp(")");
      t.is_tuple = true;
    }
    if (t.names.empty()) Fail(Pos(Cur()), "expected an assignment target");
    return t;
  }

  // ---- expressions ----

  bool IsTupleEnd(std::initializer_list<const char*> extra_end) const {
    const Token& t = Cur();
    if (t.type == TokenType::kVariableEnd || t.type == TokenType::kBlockEnd ||
        t.type == TokenType::kEof)
      return true;
    if (t.type == TokenType::kOperator && t.value == ")") return true;
    for (const char* e : extra_end) {
      if (t.type == TokenType::kName && t.value == e) return true;
    }
    return false;
  }

  ExprPtr ParseTuple(bool simplified, bool with_condexpr, std::initializer_list<const char*> end,
                     bool explicit_parens) {
    const SourcePos pos = Pos(Cur());
    std::vector<ExprPtr> items;
    bool is_tuple = false;
    while (true) {
      if (!items.empty()) ExpectOp(",");
      if (IsTupleEnd(end)) break;
      items.push_back(simplified ? ParsePrimary() : ParseExpression(with_condexpr));
      if (IsOp(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!items.empty()) return std::move(items[0]);
      if (!explicit_parens) {
        Fail(Pos(Cur()), "expected an expression, got '" + Describe(Cur()) + "'");
      }
    }
    auto e = Make(Expr::Kind::kList, pos);
    e->items = std::move(items);
    e->value = Value::Bool(true);  // marks a tuple
    return e;
  }

  ExprPtr ParseExpression(bool with_condexpr) {
    return with_condexpr ? ParseCondExpr() : ParseOr();
  }

  ExprPtr ParseCondExpr() {
    ExprPtr expr = ParseOr();
    while (IsName("if")) {
      const SourcePos pos = Pos(Cur());
      Next();
      auto e = Make(Expr::Kind::kCond, pos);
      e->a = ParseOr();
      if (SkipName("else")) e->c = ParseCondExpr();
      e->b = std::move(expr);
      expr = std::move(e);
    }
    return expr;
  }

  ExprPtr ParseOr() {
    ExprPtr left = ParseAnd();
    while (IsName("or")) {
      auto e = Make(Expr::Kind::kOr, Pos(Cur()));
      Next();
      e->a = std::move(left);
      e->b = ParseAnd();
      left = std::move(e);
    }
    return left;
  }

  ExprPtr ParseAnd() {
    ExprPtr left = ParseNot();
    while (IsName("and")) {
      auto e = Make(Expr::Kind::kAnd, Pos(Cur()));
      Next();
      e->a = std::move(left);
      e->b = ParseNot();
      left = std::move(e);
    }
    return left;
  }

  ExprPtr ParseNot() {
    if (IsName("not")) {
      auto e = Make(Expr::Kind::kNot, Pos(Cur()));
      Next();
      e->a = ParseNot();
      return e;
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    const SourcePos pos = Pos(Cur());
    ExprPtr first = ParseMath1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      const Token& t = Cur();
      if (t.type == TokenType::kOperator &&
          (t.value == "==" || t.value == "!=" || t.value == "<" || t.value == "<=" ||
           t.value == ">" || t.value == ">=")) {
        ops.push_back(t.value);
        Next();
      } else if (IsName("in")) {
        ops.push_back("in");
        Next();
      } else if (IsName("not") && Look().type == TokenType::kName && Look().value == "in") {
        ops.push_back("not in");
        Next();
        Next();
      } else {
        break;
      }
      operands.push_back(ParseMath1());
    }
    if (ops.empty()) return first;
    auto e = Make(Expr::Kind::kCompare, pos);
    e->items.push_back(std::move(first));
    for (auto& o : operands) e->items.push_back(std::move(o));
    e->ops = std::move(ops);
    return e;
  }

  ExprPtr Binary(const std::string& op, ExprPtr a, ExprPtr b, SourcePos pos) {
    auto e = Make(Expr::Kind::kBinary, pos);
    e->name = op;
    e->a = std::move(a);
    e->b = std::move(b);
    return e;
  }

  ExprPtr ParseMath1() {
    ExprPtr left = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      const std::string op = Cur().value;
      const SourcePos pos = Pos(Cur());
      Next();
      left = Binary(op, std::move(left), ParseConcat(), pos);
    }
    return left;
  }

  ExprPtr ParseConcat() {
    ExprPtr left = ParseMath2();
    while (IsOp("~")) {
      const SourcePos pos = Pos(Cur());
      Next();
      left = Binary("~", std::move(left), ParseMath2(), pos);
    }
    return left;
  }

  ExprPtr ParseMath2() {
    ExprPtr left = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const std::string op = Cur().value;
      const SourcePos pos = Pos(Cur());
      Next();
      left = Binary(op, std::move(left), ParsePow(), pos);
    }
    return left;
  }

  ExprPtr ParsePow() {
    ExprPtr left = ParseUnary(true);
    while (IsOp("**")) {
      const SourcePos pos = Pos(Cur());
      Next();
      left = Binary("**", std::move(left), ParseUnary(true), pos);
    }
    return left;
  }

  ExprPtr ParseUnary(bool with_filter) {
    ExprPtr node;
    if (IsOp("-") || IsOp("+")) {
      node = Make(IsOp("-") ? Expr::Kind::kNeg : Expr::Kind::kPos, Pos(Cur()));
      Next();
      node->a = ParseUnary(false);
    } else {
      node = ParsePrimary();
    }
    node = ParsePostfix(std::move(node));
    if (with_filter) node = ParseFilterExpr(std::move(node));
    return node;
  }

  ExprPtr ParsePrimary() {
    const Token& t = Cur();
    const SourcePos pos = Pos(t);
    switch (t.type) {
      case TokenType::kName: {
        auto e = Make(Expr::Kind::kConst, pos);
        if (t.value == "true" || t.value == "True") {
          e->value = Value::Bool(true);
        } else if (t.value == "false" || t.value == "False") {
          e->value = Value::Bool(false);
        } else if (t.value == "none" || t.value == "None") {
          e->value = Value::None();
        } else {
          e = Make(Expr::Kind::kName, pos);
          e->name = t.value;
        }
        Next();
        return e;
      }
      case TokenType::kString: {
        std::string s;
        while (Cur().type == TokenType::kString) {
          s += Cur().value;
          Next();
        }
        auto e = Make(Expr::Kind::kConst, pos);
        e->value = Value::Str(std::move(s));
        return e;
      }
      case TokenType::kInteger:
      case TokenType::kFloat: {
        auto e = Make(Expr::Kind::kConst, pos);
        e->value = t.type == TokenType::kInteger ? Value::Int(t.int_value)
                                                 : Value::Float(t.float_value);
        Next();
        return e;
      }
      case TokenType::kOperator:
        if (t.value == "(") {
          Next();
          ExprPtr e = ParseTuple(false, true, {}, true);
          ExpectOp(")");
          return e;
        }
        if (t.value == "[") return ParseList();
        if (t.value == "{") return ParseDict();
        break;
      default:
        break;
    }
    Fail(pos, "unexpected '" + Describe(t) + "'");
  }

  ExprPtr ParseList() {
    auto e = Make(Expr::Kind::kList, Pos(Cur()));
    ExpectOp("[");
    while (!IsOp("]")) {
      if (!e->items.empty()) ExpectOp(",");
      if (IsOp("]")) break;
      e->items.push_back(ParseExpression(true));
    }
    ExpectOp("]");
    return e;
  }

  ExprPtr ParseDict() {
    auto e = Make(Expr::Kind::kDict, Pos(Cur()));
    ExpectOp("{");
    while (!IsOp("}")) {
      if (!e->pairs.empty()) ExpectOp(",");
      if (IsOp("}")) break;
      ExprPtr key = ParseExpression(true);
      ExpectOp(":");
      e->pairs.emplace_back(std::move(key), ParseExpression(true));
    }
    ExpectOp("}");
    return e;
  }

  ExprPtr ParsePostfix(ExprPtr node) {
    while (true) {
      if (IsOp(".") || IsOp("[")) {
        node = ParseSubscript(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseFilterExpr(ExprPtr node) {
    while (true) {
      if (IsOp("|")) {
        node = ParseFilter(std::move(node), false);
      } else if (IsName("is")) {
        node = ParseTest(std::move(node));
      } else if (IsOp("(")) {
        node = ParseCall(std::move(node));
      } else {
        return node;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr node) {
    const Token& t = Cur();
    const SourcePos pos = Pos(t);
    if (t.value == ".") {
      Next();
      const Token& attr = Cur();
      if (attr.type == TokenType::kName) {
        auto e = Make(Expr::Kind::kGetAttr, pos);
        e->a = std::move(node);
        e->name = attr.value;
        Next();
        return e;
      }
      if (attr.type != TokenType::kInteger) Fail(Pos(attr), "expected name or number");
      auto e = Make(Expr::Kind::kGetItem, pos);
      e->a = std::move(node);
      e->b = Make(Expr::Kind::kConst, Pos(attr));
      e->b->value = Value::Int(attr.int_value);
      Next();
      return e;
    }
    Next();  // [
    std::vector<ExprPtr> args;
    while (!IsOp("]")) {
      if (!args.empty()) ExpectOp(",");
      args.push_back(ParseSubscribed());
    }
    ExpectOp("]");
    auto e = Make(Expr::Kind::kGetItem, pos);
    e->a = std::move(node);
    if (args.size() == 1) {
      e->b = std::move(args[0]);
    } else {
      e->b = Make(Expr::Kind::kList, pos);
      e->b->items = std::move(args);
      e->b->value = Value::Bool(true);
    }
    return e;
  }

  ExprPtr ParseSubscribed() {
    const SourcePos pos = Pos(Cur());
    ExprPtr start;
    if (!IsOp(":")) {
      ExprPtr node = ParseExpression(true);
      if (!IsOp(":")) return node;
      start = std::move(node);
    }
    Next();  // :
    auto e = Make(Expr::Kind::kSlice, pos);
    e->a = std::move(start);
    if (!IsOp(":") && !IsOp("]") && !IsOp(",")) e->b = ParseExpression(true);
    if (SkipOp(":")) {
      if (!IsOp("]") && !IsOp(",")) e->c = ParseExpression(true);
    }
    return e;
  }

  ArgExprs ParseCallArgs() {
    ArgExprs args;
    const SourcePos open = Pos(Cur());
    ExpectOp("(");
    bool require_comma = false;
    while (!IsOp(")")) {
      if (require_comma) {
        ExpectOp(",");
        if (IsOp(")")) break;
      }
      if (IsOp("*") || IsOp("**")) Fail(Pos(Cur()), "*args and **kwargs are not supported");
      if (Cur().type == TokenType::kName && Look().type == TokenType::kOperator &&
          Look().value == "=") {
        std::string key = Cur().value;
        Next();
        Next();
        args.keyword.emplace_back(std::move(key), ParseExpression(true));
      } else {
        if (!args.keyword.empty()) Fail(open, "invalid syntax for function call expression");
        args.positional.push_back(ParseExpression(true));
      }
      require_comma = true;
    }
    ExpectOp(")");
    return args;
  }

  ExprPtr ParseCall(ExprPtr node) {
    auto e = Make(Expr::Kind::kCall, Pos(Cur()));
    e->args = ParseCallArgs();
    e->a = std::move(node);
    return e;
  }

  std::string ParseDottedName() {
    std::string name = ExpectName();
    while (IsOp(".")) {
      Next();
      name.push_back('.');
      name += ExpectName();
    }
    return name;
  }

  ExprPtr ParseFilter(ExprPtr node, bool start_inline) {
    while (IsOp("|") || start_inline) {
      if (!start_inline) Next();
      start_inline = false;
      const SourcePos pos = Pos(Cur());
      auto e = Make(Expr::Kind::kFilter, pos);
      e->name = ParseDottedName();
      if (!IsKnownFilter(e->name)) Fail(pos, "no filter named '" + e->name + "'");
      if (IsOp("(")) e->args = ParseCallArgs();
      e->a = std::move(node);
      node = std::move(e);
    }
    return node;
  }

  ExprPtr ParseTest(ExprPtr node) {
    const SourcePos is_pos = Pos(Cur());
    Next();  // is
    const bool negated = SkipName("not");
    const SourcePos pos = Pos(Cur());
    auto e = Make(Expr::Kind::kTest, pos);
    e->name = ParseDottedName();
    if (!IsKnownTest(e->name)) Fail(pos, "no test named '" + e->name + "'");
    const Token& t = Cur();
    const bool arg_start =
        t.type == TokenType::kName || t.type == TokenType::kString ||
        t.type == TokenType::kInteger || t.type == TokenType::kFloat ||
        (t.type == TokenType::kOperator && (t.value == "[" || t.value == "{"));
    if (IsOp("(")) {
      e->args = ParseCallArgs();
    } else if (arg_start && !IsName("else") && !IsName("or") && !IsName("and")) {
      if (IsName("is")) Fail(Pos(t), "you cannot chain multiple tests with is");
      e->args.positional.push_back(ParsePostfix(ParsePrimary()));
    }
    e->a = std::move(node);
    if (!negated) return e;
    auto n = Make(Expr::Kind::kNot, is_pos);
    n->a = std::move(e);
    return n;
  }

  const std::vector<Token>& toks_;
  const std::string& name_;
  size_t i_ = 0;
  int loop_depth_ = 0;
  std::vector<OpenBlock> blocks_;
};

}  // namespace

Body Parse(const std::vector<Token>& tokens, const std::string& template_name) {
  return Parser(tokens, template_name).Run();
}

}  // namespace r1::jinja
