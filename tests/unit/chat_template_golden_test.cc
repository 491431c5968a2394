// Every conversation of the golden chat/cases.jsonl renders byte-for-byte as Python Jinja2
// rendered it, for every template the case lists, both from the golden template files and from
// the built-in copies.
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "r1/tokenizer/chat_template.h"

namespace r1 {
namespace {

namespace fs = std::filesystem;

const fs::path kGolden = R1_GOLDEN_DIR;

std::vector<nlohmann::ordered_json> LoadCases() {
  std::vector<nlohmann::ordered_json> cases;
  std::ifstream f(kGolden / "chat" / "cases.jsonl");
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty()) cases.push_back(nlohmann::ordered_json::parse(line));
  }
  return cases;
}

// Where each golden template lives: the two tokenizer_config.json files and the two .jinja files.
fs::path GoldenFile(const std::string& name) {
  if (name == "deepseek-v3") return kGolden / "tokenizer" / "deepseek_v3" / "tokenizer_config.json";
  if (name == "qwen3") return kGolden / "tokenizer" / "qwen3" / "tokenizer_config.json";
  return kGolden / "chat" / (name + ".jinja");
}

TEST(ChatTemplateGoldenTest, EveryCaseRendersExactly) {
  const auto cases = LoadCases();
  if (cases.empty()) GTEST_SKIP() << "no golden chat cases under " << kGolden;
  std::map<std::string, ChatTemplate> from_file, builtin;
  int checked = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    ChatRenderOptions opts;
    opts.add_generation_prompt = c.at("add_generation_prompt").get<bool>();
    for (const auto& [name, want] : c.at("rendered").items()) {
      SCOPED_TRACE("case " + std::to_string(i) + " template " + name);
      if (!from_file.count(name)) {
        from_file.emplace(name, ChatTemplate::FromFile(GoldenFile(name).string()));
        builtin.emplace(name, ChatTemplate::Named(name));
      }
      EXPECT_EQ(from_file.at(name).Render(c.at("messages"), opts), want.get<std::string>());
      EXPECT_EQ(builtin.at(name).Render(c.at("messages"), opts), want.get<std::string>());
      ++checked;
    }
  }
  // 14 conversations x 4 templates in the shipped golden set.
  EXPECT_GE(checked, 56);
  RecordProperty("rendered_pairs", checked);
  std::cout << "[ golden   ] " << checked << " (conversation, template) pairs, each from the golden"
            << " file and the built-in\n";
}

TEST(ChatTemplateGoldenTest, BuiltinsAreTheGoldenTemplatesVerbatim) {
  for (const char* name : {"deepseek-v3", "deepseek-r1", "deepseek-r1-distill", "qwen3"}) {
    SCOPED_TRACE(name);
    const fs::path file = GoldenFile(name);
    if (!fs::exists(file)) GTEST_SKIP() << file << " missing";
    const ChatTemplate golden = ChatTemplate::FromFile(file.string());
    EXPECT_EQ(ChatTemplate::Named(name).source(), golden.source());
    EXPECT_EQ(golden.name(), name);  // recognised as the built-in
  }
}

TEST(ChatTemplateGoldenTest, TokenizerConfigTemplatesMapToTheirBuiltins) {
  for (const auto& [dir, name] : {std::pair{"deepseek_v3", "deepseek-v3"}, {"qwen3", "qwen3"}}) {
    std::ifstream f(kGolden / "tokenizer" / dir / "tokenizer_config.json");
    if (!f) GTEST_SKIP();
    const auto cfg = nlohmann::json::parse(f);
    const ChatTemplate t =
        ChatTemplate::ForModel(cfg.at("chat_template").get<std::string>(), "whatever");
    EXPECT_EQ(t.name(), name);
  }
}

}  // namespace
}  // namespace r1
