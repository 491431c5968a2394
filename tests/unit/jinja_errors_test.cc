// Malformed templates and runtime failures: each error names the template, line and column, and
// raise_exception() surfaces the template's own message.
#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/tokenizer/jinja.h"

namespace r1::jinja {
namespace {

std::string ParseError(const std::string& source) {
  try {
    Template t(source, "tmpl");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string RenderError(const std::string& source,
                        const nlohmann::ordered_json& vars = nlohmann::ordered_json::object()) {
  try {
    Template(source, "tmpl").Render(vars);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

void ExpectMentions(const std::string& msg, std::initializer_list<const char*> parts) {
  EXPECT_FALSE(msg.empty()) << "no error";
  for (const char* p : parts) EXPECT_NE(msg.find(p), std::string::npos) << msg << "\n  lacks: " << p;
}

TEST(JinjaErrorTest, UnclosedExpressionTag) {
  ExpectMentions(ParseError("ab\ncd {{ x "), {"'tmpl'", "line 2 column 4", "unclosed '{{'"});
}

TEST(JinjaErrorTest, UnclosedStatementTag) {
  ExpectMentions(ParseError("{% if x "), {"line 1 column 1", "unclosed '{%'"});
}

TEST(JinjaErrorTest, UnclosedBlockNamesTheOpeningTag) {
  ExpectMentions(ParseError("x\n  {% for m in ms %}\n{% if m %}a{% endif %}"),
                 {"line 2 column 6", "'for'", "'endfor'"});
  ExpectMentions(ParseError("{% if a %}x{% else %}y"), {"line 1 column 4", "'if'", "'endif'"});
}

TEST(JinjaErrorTest, UnclosedCommentAndRaw) {
  ExpectMentions(ParseError("a {# note"), {"line 1 column 3", "comment"});
  ExpectMentions(ParseError("{% raw %}{{ x }}"), {"line 1 column 1", "raw"});
}

TEST(JinjaErrorTest, UnknownFilterTestAndTag) {
  ExpectMentions(ParseError("{{ x }}\n{{ x | nope }}"), {"line 2 column 8", "no filter named 'nope'"});
  ExpectMentions(ParseError("{{ x is nope }}"), {"line 1 column 9", "no test named 'nope'"});
  ExpectMentions(ParseError("{% frobnicate %}"), {"line 1 column 4", "unknown tag 'frobnicate'"});
  ExpectMentions(ParseError("{% endif %}"), {"unknown tag 'endif'"});
  ExpectMentions(ParseError("{% for x in y %}{% endif %}{% endfor %}"),
                 {"unknown tag 'endif'", "'for'"});
}

TEST(JinjaErrorTest, BadExpressions) {
  ExpectMentions(ParseError("{{ 'abc }}"), {"line 1 column 4", "unterminated string"});
  ExpectMentions(ParseError("{{ (1 }}"), {"tmpl", "line 1"});
  ExpectMentions(ParseError("{{ 1 + }}"), {"line 1 column 8", "unexpected"});
  ExpectMentions(ParseError("{{ x ]] }}"), {"unexpected ']'"});
  ExpectMentions(ParseError("{{ a @ b }}"), {"line 1 column 6", "unexpected char"});
  ExpectMentions(ParseError("{% break %}"), {"outside of a loop"});
  ExpectMentions(ParseError("{% set 1 = 2 %}"), {"can't assign"});
  ExpectMentions(ParseError("{{ }}"), {"expected an expression"});
}

TEST(JinjaErrorTest, RuntimeErrorsNameThePosition) {
  ExpectMentions(RenderError("{{ x + 1 }}"), {"line 1 column 6", "'x' is undefined"});
  ExpectMentions(RenderError("\n{{ foo.bar }}"), {"line 2 column 7", "'foo' is undefined"});
  ExpectMentions(RenderError("{{ 'a' + 1 }}"), {"can only concatenate str (not \"int\") to str"});
  ExpectMentions(RenderError("{{ '<' + m.content }}", {{"m", {{"content", nullptr}}}}),
                 {"can only concatenate str (not \"NoneType\") to str"});
  ExpectMentions(RenderError("{{ 1 / 0 }}"), {"division by zero"});
  ExpectMentions(RenderError("{{ 1 < 'a' }}"), {"'<' not supported"});
  ExpectMentions(RenderError("{% set x = 1 %}{% set x.a = 2 %}"), {"non-namespace"});
  ExpectMentions(RenderError("{% for a, b in [[1, 2, 3]] %}{% endfor %}"), {"too many values"});
  ExpectMentions(RenderError("{{ none|tojson }}{{ y|tojson }}"), {"not JSON serializable"});
  ExpectMentions(RenderError("{{ '</think>' in none }}"), {"'NoneType' is not iterable"});
}

TEST(JinjaErrorTest, MutatingMethodsAreRefusedAsInTheSandbox) {
  ExpectMentions(RenderError("{{ xs.append(1) }}", {{"xs", {1}}}),
                 {"access to attribute 'append' of 'list' object is unsafe"});
  ExpectMentions(RenderError("{{ d.update({}) }}", {{"d", {{"a", 1}}}}),
                 {"access to attribute 'update' of 'dict' object is unsafe"});
}

TEST(JinjaErrorTest, RaiseExceptionCarriesTheTemplateMessage) {
  const Template t("{% if messages|length == 0 %}{{ raise_exception('No messages: ' ~ 0) }}"
                   "{% endif %}ok");
  try {
    t.Render(nlohmann::ordered_json{{"messages", nlohmann::ordered_json::array()}});
    ADD_FAILURE() << "no exception";
  } catch (const RaisedException& e) {
    EXPECT_STREQ(e.what(), "No messages: 0");
  }
  EXPECT_EQ(t.Render(nlohmann::ordered_json{{"messages", {1}}}), "ok");
  // It is an r1::Error like every other failure.
  EXPECT_THROW(t.Render(nlohmann::ordered_json{{"messages", nlohmann::ordered_json::array()}}),
               Error);
}

}  // namespace
}  // namespace r1::jinja
