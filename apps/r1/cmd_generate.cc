// r1 generate: continue token prompts with a KV cache and a sampler.
#include <unistd.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/infer/generate.h"
#include "r1/infer/speculative.h"
#include "chat_session.h"

namespace r1::cli {

namespace {
struct GenerateArgs {
  std::string model, prompt_ids, prompt, system, chat_template, tokenizer, mla = "absorbed";
  bool raw = false;
  int n = 128;
  SamplingParams sampling;
  bool json = false, ignore_eos = false, speculative = false;
  int threads = 0;
  std::vector<int32_t> stop_ids;
};

// Speculative decoding needs greedy sampling and an MTP module; say which is missing.
void CheckSpeculative(const GenerateArgs& a, const Model& model) {
  if (!a.speculative) return;
  const std::string why = SpeculativeUnsupportedReason(model, a.sampling);
  if (!why.empty()) throw Error("--speculative: " + why);
}

void AddSpeculativeJson(nlohmann::json& j, const SpeculativeStats& s) {
  j["draft_tokens"] = s.draft_tokens;
  j["accepted_tokens"] = s.accepted_tokens;
  j["acceptance_rate"] = s.acceptance_rate();
  j["main_steps"] = s.main_steps;
}

std::string SpeculativeSummary(const SpeculativeStats& s) {
  char buf[128];
  std::snprintf(buf, sizeof buf, ", %lld/%lld drafts accepted (%.0f%%)",
                static_cast<long long>(s.accepted_tokens), static_cast<long long>(s.draft_tokens),
                100.0 * s.acceptance_rate());
  return buf;
}

GenerateOptions Options(const GenerateArgs& a) {
  GenerateOptions opts;
  opts.max_new_tokens = a.n;
  opts.sampling = a.sampling;
  opts.ignore_eos = a.ignore_eos;
  opts.stop_ids = a.stop_ids;
  return opts;
}

// A text prompt: rendered with the chat template (unless --raw), streamed back as text.
int RunTextGenerate(const GenerateArgs& a) {
  auto model = LoadModel(a.model, false);
  model->set_mla_mode(a.mla == "naive" ? MlaMode::kNaive : MlaMode::kAbsorbed);
  CheckSpeculative(a, *model);
  ChatSession session(std::move(model), a.tokenizer, a.chat_template);
  session.set_speculative(a.speculative);
  std::vector<int32_t> prompt;
  bool in_reasoning = false;
  if (a.raw) {
    prompt = session.RawPromptIds(a.prompt);
  } else {
    nlohmann::json messages = nlohmann::json::array();
    if (!a.system.empty()) messages.push_back({{"role", "system"}, {"content", a.system}});
    messages.push_back({{"role", "user"}, {"content", a.prompt}});
    prompt = session.PromptIds(messages);
    in_reasoning = session.chat_template().opens_thinking();
  }
  const bool tty = isatty(STDOUT_FILENO);
  bool in_think_shown = false;
  auto on_text = [&](const std::string& reasoning, const std::string& content) {
    if (a.json) return;
    if (!reasoning.empty()) {
      if (!in_think_shown) {
        std::fputs(tty ? "\033[2m<think>\n" : "<think>\n", stdout);
        in_think_shown = true;
      }
      std::fputs(reasoning.c_str(), stdout);
    }
    if (!content.empty()) {
      if (in_think_shown) {
        std::fputs(tty ? "\n</think>\033[0m\n\n" : "\n</think>\n\n", stdout);
        in_think_shown = false;
      }
      std::fputs(content.c_str(), stdout);
    }
    std::fflush(stdout);
  };
  Reply r = session.Generate(prompt, Options(a), in_reasoning, on_text);
  if (a.json) {
    nlohmann::json j;
    j["tokens"] = r.tokens;
    j["text"] = r.text;
    j["reasoning"] = r.reasoning;
    j["content"] = r.content;
    j["finish_reason"] = r.finish_reason;
    j["prompt_tokens"] = r.stats.prompt_tokens;
    if (r.speculative) AddSpeculativeJson(j, *r.speculative);
    std::printf("%s\n", j.dump().c_str());
  } else {
    if (in_think_shown) std::fputs(tty ? "\033[0m" : "\n</think>", stdout);
    std::printf("\n");
    std::fprintf(stderr, "[%lld prompt tokens, %lld generated, %s%s]\n",
                 static_cast<long long>(r.stats.prompt_tokens),
                 static_cast<long long>(r.stats.generated_tokens), r.finish_reason.c_str(),
                 r.speculative ? SpeculativeSummary(*r.speculative).c_str() : "");
  }
  return 0;
}

int RunGenerate(const GenerateArgs& a) {
  ApplyThreads(a.threads);
  a.sampling.Validate();
  if (!a.prompt.empty()) return RunTextGenerate(a);
  const std::vector<int32_t> prompt = ParseIdList(a.prompt_ids);
  auto model = LoadModel(a.model, false);
  model->set_mla_mode(a.mla == "naive" ? MlaMode::kNaive : MlaMode::kAbsorbed);
  for (int32_t t : prompt)
    if (t >= model->config().vocab_size)
      throw Error("--prompt-ids: token id " + std::to_string(t) + " is outside the vocabulary of " +
                  std::to_string(model->config().vocab_size));
  CheckSpeculative(a, *model);
  GenerateOptions opts = Options(a);
  GenerationStats stats;
  SpeculativeStats spec;
  auto stream = [&](int32_t tok) {
    if (!a.json) {
      std::printf("%d ", tok);
      std::fflush(stdout);
    }
  };
  std::vector<GenerationResult> results;
  if (a.speculative) {
    results.push_back(GenerateSpeculative(*model, prompt, opts, stream, &spec));
    stats = spec.generation;
  } else {
    results = Generate(*model, {prompt}, opts, [&](int, int32_t tok) { stream(tok); }, &stats);
  }
  const double prefill_tps = stats.prefill_seconds > 0 ? stats.prompt_tokens / stats.prefill_seconds : 0;
  const double decode_tps =
      stats.decode_seconds > 0 ? (stats.generated_tokens - 1) / stats.decode_seconds : 0;
  if (a.json) {
    nlohmann::json j;
    j["tokens"] = results[0].tokens;
    j["finish_reason"] = results[0].finish_reason;
    j["prompt_tokens"] = stats.prompt_tokens;
    j["prefill_tokens_per_s"] = prefill_tps;
    j["decode_tokens_per_s"] = decode_tps;
    if (a.speculative) AddSpeculativeJson(j, spec);
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("\n");
    std::fprintf(stderr, "[%lld prompt tokens at %.1f tok/s, %lld generated at %.1f tok/s, %s%s]\n",
                 static_cast<long long>(stats.prompt_tokens), prefill_tps,
                 static_cast<long long>(stats.generated_tokens), decode_tps,
                 results[0].finish_reason.c_str(),
                 a.speculative ? SpeculativeSummary(spec).c_str() : "");
  }
  return 0;
}
}  // namespace

void AddGenerate(CLI::App& app, Action& action) {
  auto a = std::make_shared<GenerateArgs>();
  auto* cmd = app.add_subcommand(
      "generate",
      "Generate after a text prompt (-p, rendered with the model's chat template unless --raw, "
      "streamed as text with the <think> reasoning dimmed) or after token ids (--prompt-ids). "
      "Greedy by default (--temperature 0); stops at the end-of-sequence id unless --ignore-eos. "
      "--speculative drafts each next-but-one token with the model's MTP module and checks it in "
      "the following step (greedy only; same tokens as without it).\n"
      "Examples: r1 generate -m runs/nano -p \"What is 2+3?\" --temperature 0.6 --top-p 0.95\n"
      "          r1 generate -m ../shared/golden/deepseek-v3-tiny/model --prompt-ids "
      "284,186,1870 -n 16 --json\n"
      "          r1 generate -m runs/brown/model -p \"The jury said\" --raw -n 64 --speculative");
  cmd->add_option("-m,--model", a->model, "Model folder")->required();
  auto* ids = cmd->add_option("--prompt-ids", a->prompt_ids, "Prompt token ids, comma-separated");
  auto* text = cmd->add_option("-p,--prompt", a->prompt, "Prompt text (a user message)");
  ids->excludes(text);
  cmd->add_flag("--raw", a->raw, "Use the text as it is, without the chat template");
  cmd->add_option("--system", a->system, "System message for the chat template");
  cmd->add_option("--chat-template", a->chat_template,
                  "deepseek-v3, deepseek-r1, deepseek-r1-distill, qwen3, chatml, llama3, or a "
                  "Jinja file (default: the model's tokenizer_config.json)");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json or folder (default: the model's)");
  cmd->add_option("-n,--n-predict", a->n, "Tokens to generate")->check(CLI::Range(0, 1 << 24));
  cmd->add_option("--temperature", a->sampling.temperature, "0 = greedy");
  cmd->add_option("--top-k", a->sampling.top_k, "Keep the k most likely tokens (0 = off)");
  cmd->add_option("--top-p", a->sampling.top_p, "Nucleus sampling threshold (1 = off)");
  cmd->add_option("--min-p", a->sampling.min_p, "Drop tokens below min_p x p(best) (0 = off)");
  cmd->add_option("--repeat-penalty", a->sampling.repetition_penalty,
                  "Penalty for tokens already seen (1 = off)");
  cmd->add_option("--repeat-last-n", a->sampling.repetition_window,
                  "Window of the repetition penalty (0 = whole history)");
  cmd->add_option("--seed", a->sampling.seed, "Random seed (same seed, same tokens)");
  cmd->add_option("--stop-ids", a->stop_ids, "Stop after any of these ids (default: eos)")
      ->delimiter(',');
  cmd->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at the end-of-sequence id");
  cmd->add_flag("--json", a->json,
                "Print one JSON object: tokens, finish_reason, prompt_tokens, speeds (and with "
                "-p: text, reasoning, content; with --speculative: draft_tokens, "
                "accepted_tokens, acceptance_rate, main_steps)");
  cmd->add_flag("--speculative", a->speculative,
                "Self-speculative greedy decoding with the model's multi-token-prediction (MTP) "
                "module as the draft: up to two tokens per step of the main model, the same "
                "tokens as plain greedy decoding. Needs MTP weights and --temperature 0");
  cmd->add_option("--mla", a->mla, "MLA form for DeepSeek models: absorbed (default) or naive")
      ->check(CLI::IsMember({"absorbed", "naive"}));
  AddThreadsOption(cmd, a->threads);
  AddBf16ActivationsOption(cmd);
  cmd->callback([a, &action] {
    if (a->prompt.empty() && a->prompt_ids.empty()) throw CLI::RequiredError("-p or --prompt-ids");
    action = [a] { return RunGenerate(*a); };
  });
}

}  // namespace r1::cli
