// r1 tokenize: text to token ids with a tokenizer.json, one text or a JSONL file of them.
#include <cstdio>
#include <fstream>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/tokenizer/tokenizer.h"

namespace r1::cli {

namespace {
struct TokenizeArgs {
  std::string tokenizer, text, jsonl;
  bool decode = false;
};

int RunTokenize(const TokenizeArgs& a) {
  auto tok = Tokenizer::Load(a.tokenizer);
  if (!a.jsonl.empty()) {
    std::ifstream in(a.jsonl);
    if (!in) throw Error(a.jsonl + ": cannot open");
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
      nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("text") || !j["text"].is_string())
        throw Error(a.jsonl + ":" + std::to_string(n) + ": expected a JSON object with a \"text\" string");
      nlohmann::json out;
      out["ids"] = tok->Encode(j["text"].get<std::string>());
      std::printf("%s\n", out.dump().c_str());
    }
    return 0;
  }
  if (a.decode) {
    const auto ids = ParseIdList(a.text, "--decode");
    std::printf("%s\n", tok->Decode(ids).c_str());
    return 0;
  }
  const auto ids = tok->Encode(a.text);
  for (size_t i = 0; i < ids.size(); ++i) std::printf(i ? " %d" : "%d", ids[i]);
  std::printf("\n");
  return 0;
}
}  // namespace

void AddTokenize(CLI::App& app, Action& action) {
  auto a = std::make_shared<TokenizeArgs>();
  auto* cmd = app.add_subcommand(
      "tokenize",
      "Print the token ids of a text (no special tokens added; special tokens written in the text "
      "map to their ids). With --jsonl, read one {\"text\": ...} object a line and print one "
      "{\"ids\": [...]} line for each. With --decode, turn ids back into text.\n"
      "Example: r1 tokenize --tokenizer ../shared/golden/tokenizer/deepseek_v3 \"Hello, world!\"");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json, or a model folder holding one")
      ->required();
  cmd->add_option("text", a->text, "Text to encode (or ids with --decode)");
  cmd->add_option("--jsonl", a->jsonl, "JSONL file of {\"text\": ...} objects");
  cmd->add_flag("--decode", a->decode, "Decode comma-separated ids instead");
  cmd->callback([a, &action] {
    if (a->jsonl.empty() && a->text.empty()) throw CLI::RequiredError("text or --jsonl");
    action = [a] { return RunTokenize(*a); };
  });
}

}  // namespace r1::cli
