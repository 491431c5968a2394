// r1 chat: an interactive conversation in the terminal, streaming the reply with the <think>
// reasoning dimmed, keeping the history, with /reset, /system, /save and Ctrl-C to stop a reply.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "chat_session.h"
#include "commands.h"
#include "r1/core/error.h"

namespace r1::cli {

namespace {
std::atomic<bool> g_interrupted{false};
// Set while ReadMessage waits for a line on a terminal.
std::atomic<bool> g_at_prompt{false};

constexpr char kIdleHint[] = "\n(Ctrl-C: type /exit or press Ctrl-D to leave)\n\033[1m>\033[0m ";

void OnSigint(int) {
  g_interrupted.store(true);
  // At the prompt the hint is written here, not after the read returns: a Ctrl-C that lands
  // just before the read starts does not interrupt it, and the user would see nothing until
  // the next Enter. write(2) is async-signal-safe; stdout was flushed before the read.
  if (g_at_prompt.load()) {
    const ssize_t ignored = write(STDOUT_FILENO, kIdleHint, sizeof kIdleHint - 1);
    (void)ignored;
  }
}

struct ChatArgs {
  std::string model, system, chat_template, tokenizer, mla = "absorbed";
  int n = 2048;
  SamplingParams sampling;
  int threads = 0;
};

const char* kHelp =
    "Type a message and press Enter. A line ending in \\ continues on the next line; \"\"\" on a "
    "line of its own starts and ends a multi-line message.\n"
    "  /reset          forget the conversation\n"
    "  /system TEXT    set the system message (and reset)\n"
    "  /save FILE      write the conversation as JSON\n"
    "  /help           this text\n"
    "  /exit, Ctrl-D   leave\n"
    "Ctrl-C stops a reply and keeps what was generated.\n";

// Reads one user message; false at end of input.
bool ReadMessage(std::string& out, bool tty) {
  out.clear();
  bool block = false, show_prompt = true;
  for (;;) {
    if (tty && show_prompt) std::fputs(out.empty() && !block ? "\033[1m>\033[0m " : ". ", stdout);
    show_prompt = true;
    std::fflush(stdout);
    std::string line;
    g_interrupted.store(false);
    g_at_prompt.store(tty);
    const bool got = static_cast<bool>(std::getline(std::cin, line));
    g_at_prompt.store(false);
    if (g_interrupted.exchange(false)) {
      // Ctrl-C while typing drops the message so far; the handler already wrote a fresh
      // prompt. An interrupted read leaves cin in eof/fail state though input continues.
      out.clear();
      block = false;
      if (!got) {
        std::cin.clear();
        clearerr(stdin);
        if (!tty) std::fputs("\n(Ctrl-C: type /exit or press Ctrl-D to leave)\n", stdout);
        show_prompt = !tty;
        continue;
      }
    }
    if (!got) {
      return !out.empty();
    }
    if (line == "\"\"\"") {
      if (block) return true;
      block = true;
      continue;
    }
    if (block) {
      out += line + "\n";
      continue;
    }
    if (!line.empty() && line.back() == '\\') {
      line.pop_back();
      out += line + "\n";
      continue;
    }
    out += line;
    return true;
  }
}

int RunChat(const ChatArgs& a) {
  ApplyThreads(a.threads);
  a.sampling.Validate();
  auto model = LoadModel(a.model, false);
  model->set_mla_mode(a.mla == "naive" ? MlaMode::kNaive : MlaMode::kAbsorbed);
  ChatSession session(std::move(model), a.tokenizer, a.chat_template);
  const bool tty = isatty(STDOUT_FILENO) && isatty(STDIN_FILENO);

  struct sigaction sa {};
  sa.sa_handler = OnSigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: Ctrl-C at the prompt interrupts the read
  sigaction(SIGINT, &sa, nullptr);

  std::string system = a.system;
  nlohmann::json history = nlohmann::json::array();
  std::printf("r1 chat with %s (template %s). /help for commands.\n", a.model.c_str(),
              session.chat_template().name().c_str());
  std::string msg;
  while (ReadMessage(msg, tty)) {
    if (msg.empty()) continue;
    if (msg == "/exit" || msg == "/quit") break;
    if (msg == "/help") {
      std::fputs(kHelp, stdout);
      continue;
    }
    if (msg == "/reset") {
      history = nlohmann::json::array();
      std::puts("(conversation cleared)");
      continue;
    }
    if (msg.rfind("/system", 0) == 0) {
      system = msg.size() > 8 ? msg.substr(8) : "";
      history = nlohmann::json::array();
      std::printf("(system message %s; conversation cleared)\n", system.empty() ? "removed" : "set");
      continue;
    }
    if (msg.rfind("/save", 0) == 0) {
      const std::string path = msg.size() > 6 ? msg.substr(6) : "";
      if (path.empty()) {
        std::puts("usage: /save FILE");
        continue;
      }
      nlohmann::json all = nlohmann::json::array();
      if (!system.empty()) all.push_back({{"role", "system"}, {"content", system}});
      for (const auto& m : history) all.push_back(m);
      std::ofstream f(path);
      f << nlohmann::json{{"messages", all}}.dump(2) << "\n";
      std::printf(f ? "(saved %zu messages to %s)\n" : "(could not write %zu messages to %s)\n",
                  all.size(), path.c_str());
      continue;
    }
    if (msg[0] == '/') {
      std::printf("unknown command %s; /help lists them\n", msg.c_str());
      continue;
    }
    history.push_back({{"role", "user"}, {"content", msg}});
    nlohmann::json all = nlohmann::json::array();
    if (!system.empty()) all.push_back({{"role", "system"}, {"content", system}});
    for (const auto& m : history) all.push_back(m);
    const auto prompt = session.PromptIds(all);

    GenerateOptions opts;
    opts.max_new_tokens = a.n;
    opts.sampling = a.sampling;
    opts.cancel = &g_interrupted;
    g_interrupted.store(false);
    bool thinking = false;
    auto on_text = [&](const std::string& reasoning, const std::string& content) {
      if (!reasoning.empty()) {
        if (!thinking) std::fputs(tty ? "\033[2m" : "<think>\n", stdout);
        thinking = true;
        std::fputs(reasoning.c_str(), stdout);
      }
      if (!content.empty()) {
        if (thinking) std::fputs(tty ? "\033[0m\n\n" : "\n</think>\n\n", stdout);
        thinking = false;
        std::fputs(content.c_str(), stdout);
      }
      std::fflush(stdout);
    };
    Reply r = session.Generate(prompt, opts, session.chat_template().opens_thinking(), on_text);
    if (thinking && tty) std::fputs("\033[0m", stdout);
    if (r.finish_reason == "cancelled") std::fputs(" [stopped]", stdout);
    std::fputs("\n", stdout);
    g_interrupted.store(false);
    // The template keeps only the answer of earlier turns; store the full text so it can decide.
    std::string stored = r.reasoning.empty() ? r.content
                                             : "<think>\n" + r.reasoning + "\n</think>\n\n" + r.content;
    history.push_back({{"role", "assistant"}, {"content", stored}});
  }
  std::fputs("\n", stdout);
  return 0;
}
}  // namespace

void AddChat(CLI::App& app, Action& action) {
  auto a = std::make_shared<ChatArgs>();
  a->sampling.temperature = 0.6f;  // DeepSeek's recommendation for R1 models
  a->sampling.top_p = 0.95f;
  auto* cmd = app.add_subcommand(
      "chat",
      "Chat with a model in the terminal. Replies stream as they are generated, reasoning "
      "(<think>) dimmed and separated from the answer; the conversation is kept between turns. "
      "Commands: /reset, /system TEXT, /save FILE, /help, /exit; Ctrl-C stops a reply.\n"
      "Example: r1 chat -m runs/nano --system \"You are terse.\"");
  cmd->add_option("-m,--model", a->model, "Model folder (with tokenizer.json)")->required();
  cmd->add_option("--system", a->system, "System message");
  cmd->add_option("--chat-template", a->chat_template, "Template name or Jinja file");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json or folder (default: the model's)");
  cmd->add_option("-n,--n-predict", a->n, "Most tokens per reply")->check(CLI::Range(1, 1 << 24));
  cmd->add_option("--temperature", a->sampling.temperature, "Sampling temperature (default 0.6)");
  cmd->add_option("--top-k", a->sampling.top_k, "Top-k (0 = off)");
  cmd->add_option("--top-p", a->sampling.top_p, "Top-p (default 0.95)");
  cmd->add_option("--min-p", a->sampling.min_p, "Min-p (0 = off)");
  cmd->add_option("--repeat-penalty", a->sampling.repetition_penalty, "Repetition penalty");
  cmd->add_option("--seed", a->sampling.seed, "Random seed");
  cmd->add_option("--mla", a->mla, "MLA form: absorbed or naive")
      ->check(CLI::IsMember({"absorbed", "naive"}));
  AddThreadsOption(cmd, a->threads);
  AddBf16ActivationsOption(cmd);
  cmd->callback([a, &action] { action = [a] { return RunChat(*a); }; });
}

}  // namespace r1::cli
