// r1 init: a Hugging Face model folder with random weights of a named shape.
#include <cstdio>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/core/progress.h"
#include "r1/model/presets.h"

namespace r1::cli {

namespace {
struct InitArgs {
  std::string preset, out, dtype = "bf16", tokenizer;
  uint64_t seed = 0;
  int layers = 0;
  bool force = false;
};

int RunInit(const InitArgs& a) {
  InitOptions o;
  o.seed = a.seed;
  o.dtype = a.dtype == "f32" ? DType::kF32 : DType::kBF16;
  o.tokenizer_path = a.tokenizer;
  o.overwrite = a.force;
  o.layers = a.layers;
  Progress progress("init " + a.preset, 1.0);
  InitModel(a.preset, a.out, o, [&](double f) { progress.Update(f); });
  progress.Finish("wrote " + a.out);
  return 0;
}
}  // namespace

void AddInit(CLI::App& app, Action& action) {
  auto a = std::make_shared<InitArgs>();
  auto* cmd = app.add_subcommand(
      "init",
      "Write a model folder (config.json, model.safetensors, generation_config.json) with "
      "random weights of a preset's shape, for benchmarks, tests and training from scratch.\n"
      "Example: r1 init --preset v3-nano --out runs/nano --seed 1");
  cmd->add_option("--preset", a->preset,
                  "deepseek-v2-lite, r1-distill-qwen-1.5b, r1-distill-llama-8b, v3-nano, v3-small")
      ->required();
  cmd->add_option("-o,--out", a->out, "Output folder")->required();
  cmd->add_option("--seed", a->seed, "Random seed (same seed, same bytes)");
  cmd->add_option("--layers", a->layers,
                  "Decoder layers instead of the preset's (each of the preset's shape), e.g. a "
                  "4-layer deepseek-v2-lite to benchmark its MoE layers in 4 GB instead of 32")
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--dtype", a->dtype, "Stored weight type: bf16 (default) or f32")
      ->check(CLI::IsMember({"bf16", "f32"}));
  cmd->add_option("--tokenizer", a->tokenizer,
                  "tokenizer.json (or a folder with it) to copy in; sizes the vocabulary to it");
  cmd->add_flag("--force", a->force, "Replace an existing model folder");
  cmd->callback([a, &action] { action = [a] { return RunInit(*a); }; });
}

}  // namespace r1::cli
