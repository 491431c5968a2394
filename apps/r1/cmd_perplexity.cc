// r1 perplexity: how well a model (any format, quantized included) predicts a text.
#include <cstdio>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/core/progress.h"
#include "r1/infer/perplexity.h"
#include "r1/io/safetensors.h"
#include "r1/tokenizer/tokenizer.h"

namespace r1::cli {

namespace {
struct PerplexityArgs {
  std::string model, file, tokenizer;
  int64_t context = 512, chunks = 0;
  bool json = false;
  int threads = 0;
};

int RunPerplexity(const PerplexityArgs& a) {
  ApplyThreads(a.threads);
  auto model = LoadModel(a.model, a.json);
  auto tokenizer = Tokenizer::Load(a.tokenizer.empty() ? a.model : a.tokenizer);
  const std::string text = ReadFileToString(a.file);
  const std::vector<int32_t> tokens = tokenizer->Encode(text);
  PerplexityOptions o;
  o.context = a.context;
  o.max_windows = a.chunks;
  Progress progress("perplexity", 1.0, a.json);
  const PerplexityResult r =
      EvaluatePerplexity(*model, tokens, o, [&](double f) { progress.Update(f); });
  progress.Finish();
  if (a.json) {
    nlohmann::ordered_json j;
    j["model"] = a.model;
    j["file"] = a.file;
    j["text_tokens"] = tokens.size();
    j["context"] = std::min<int64_t>(a.context, static_cast<int64_t>(tokens.size()));
    j["windows"] = r.windows;
    j["tokens_scored"] = r.tokens_scored;
    j["mean_nll"] = r.mean_nll;
    j["nll_stderr"] = r.nll_stderr;
    j["perplexity"] = r.perplexity;
    j["seconds"] = r.seconds;
    j["tokens_per_s"] = r.tokens_per_s;
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("%s: %lld tokens, %lld windows of %lld, %lld scored\n", a.file.c_str(),
                static_cast<long long>(tokens.size()), static_cast<long long>(r.windows),
                static_cast<long long>(std::min<int64_t>(a.context, tokens.size())),
                static_cast<long long>(r.tokens_scored));
    std::printf("mean NLL %.4f +- %.4f nats/token, perplexity %.3f (%.0f tokens/s)\n", r.mean_nll,
                r.nll_stderr, r.perplexity, r.tokens_per_s);
  }
  return 0;
}
}  // namespace

void AddPerplexity(CLI::App& app, Action& action) {
  auto a = std::make_shared<PerplexityArgs>();
  auto* cmd = app.add_subcommand(
      "perplexity",
      "Perplexity of a model on a text file, as llama.cpp's llama-perplexity measures it: the "
      "text is tokenized, cut into consecutive windows of --context tokens, each run from an "
      "empty cache, and every token but a window's first is scored. Use it to compare a model "
      "with its quantized copies (docs/quantization.md).\n"
      "Example: r1 perplexity -m runs/brown/model-q4 -f runs/brown/text/heldout.txt --context 128");
  cmd->add_option("-m,--model", a->model, "Model folder")->required();
  cmd->add_option("-f,--file", a->file, "Text file to score (UTF-8)")->required();
  cmd->add_option("--context", a->context, "Tokens per window (default 512)")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20));
  cmd->add_option("--chunks", a->chunks, "Score at most this many windows (default: all)");
  cmd->add_option("--tokenizer", a->tokenizer, "tokenizer.json or folder (default: the model's)");
  cmd->add_flag("--json", a->json, "Print one JSON object");
  AddThreadsOption(cmd, a->threads);
  AddBf16ActivationsOption(cmd);
  cmd->callback([a, &action] { action = [a] { return RunPerplexity(*a); }; });
}

}  // namespace r1::cli
