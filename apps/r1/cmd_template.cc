// r1 template: render conversations with a chat template, one JSON line in, one out.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/tokenizer/chat_template.h"

namespace r1::cli {

namespace {
struct TemplateArgs {
  std::string chat_template, jsonl, bos, eos;
};

int RunTemplate(const TemplateArgs& a) {
  const ChatTemplate tpl = ChatTemplate::FromFlag(a.chat_template);
  ForEachJsonLine(a.jsonl, [&](int64_t n, const nlohmann::ordered_json& j) {
    if (!j.contains("messages") || !j["messages"].is_array())
      throw Error(a.jsonl + ":" + std::to_string(n) + ": expected a \"messages\" list");
    ChatRenderOptions o;
    o.add_generation_prompt = j.value("add_generation_prompt", false);
    o.bos_token = a.bos;
    o.eos_token = a.eos;
    for (const char* k : {"tools", "enable_thinking", "date_string"})
      if (j.contains(k)) o.extra_vars[k] = j[k];
    nlohmann::json out;
    out["text"] = tpl.Render(j["messages"], o);
    std::printf("%s\n", out.dump().c_str());
  });
  return 0;
}
}  // namespace

void AddTemplate(CLI::App& app, Action& action) {
  auto a = std::make_shared<TemplateArgs>();
  auto* cmd = app.add_subcommand(
      "template",
      "Render conversations with a chat template: read one JSON object a line (\"messages\", "
      "\"add_generation_prompt\") and print one {\"text\": ...} line for each.\n"
      "Example: r1 template --chat-template deepseek-r1 --jsonl ../shared/golden/chat/cases.jsonl");
  cmd->add_option("--chat-template", a->chat_template,
                  "deepseek-v3, deepseek-r1, deepseek-r1-distill, qwen3, chatml, llama3, or a "
                  "Jinja file / tokenizer_config.json")
      ->required();
  cmd->add_option("--jsonl", a->jsonl, "Conversations, one JSON object a line")->required();
  cmd->add_option("--bos", a->bos, "BOS text (default: the template's own)");
  cmd->add_option("--eos", a->eos, "EOS text (default: the template's own)");
  cmd->callback([a, &action] { action = [a] { return RunTemplate(*a); }; });
}

}  // namespace r1::cli
