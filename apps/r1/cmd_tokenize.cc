// r1 tokenize: text to token ids with a tokenizer.json, one text or a JSONL file of them.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/tokenizer/tokenizer.h"

namespace r1::cli {

namespace {
struct TokenizeArgs {
  std::string tokenizer, text, jsonl, time_file;
  int reps = 3;
  bool decode = false;
};

// Encoding speed on a file, best and median of `reps` runs after a warm-up, as JSON.
int RunTime(const Tokenizer& tok, const TokenizeArgs& a) {
  std::ifstream in(a.time_file, std::ios::binary);
  if (!in) throw Error(a.time_file + ": cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<int32_t> ids;
  tok.Encode(std::string_view(text).substr(0, 20000), ids);
  std::vector<double> secs;
  for (int r = 0; r < a.reps; ++r) {
    ids.clear();
    const auto t0 = std::chrono::steady_clock::now();
    tok.Encode(text, ids);
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(secs.begin(), secs.end());
  nlohmann::json j;
  j["bytes"] = text.size();
  j["tokens"] = ids.size();
  j["MB_s_best"] = text.size() / 1e6 / secs.front();
  j["MB_s_median"] = text.size() / 1e6 / secs[secs.size() / 2];
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

int RunTokenize(const TokenizeArgs& a) {
  auto tok = Tokenizer::Load(a.tokenizer);
  if (!a.time_file.empty()) return RunTime(*tok, a);
  if (!a.jsonl.empty()) {
    ForEachJsonLine(a.jsonl, [&](int64_t n, const nlohmann::ordered_json& j) {
      if (!j.contains("text") || !j["text"].is_string())
        throw Error(a.jsonl + ":" + std::to_string(n) + ": expected a \"text\" string");
      nlohmann::json out;
      out["ids"] = tok->Encode(j["text"].get<std::string>());
      std::printf("%s\n", out.dump().c_str());
    });
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
  cmd->add_option("--time", a->time_file,
                  "Measure encoding speed on this file (single thread) and print JSON");
  cmd->add_option("--reps", a->reps, "Repetitions for --time")->check(CLI::Range(1, 1000));
  cmd->callback([a, &action] {
    if (a->jsonl.empty() && a->text.empty() && a->time_file.empty())
      throw CLI::RequiredError("text, --jsonl or --time");
    action = [a] { return RunTokenize(*a); };
  });
}

}  // namespace r1::cli
