// r1 quantize: re-encode a model folder's weights as Q8_0, Q4_0, BF16 or FP8.
#include <cstdio>

#include "commands.h"
#include "r1/core/progress.h"
#include "r1/model/quantize_model.h"

namespace r1::cli {

namespace {
struct QuantizeArgs {
  std::string model, out, to;
  bool force = false;
  bool q4_head = false;
  int threads = 0;
};

std::string Gib(uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", bytes / double(1ull << 30));
  if (bytes < (100ull << 20)) std::snprintf(buf, sizeof buf, "%.1f MiB", bytes / double(1 << 20));
  return buf;
}

int RunQuantize(const QuantizeArgs& a) {
  ApplyThreads(a.threads);
  QuantizeOptions o;
  o.to = ParseQuantTarget(a.to);
  o.overwrite = a.force;
  o.q4_head = a.q4_head;
  Progress progress(std::string("quantize to ") + QuantTargetName(o.to), 1.0);
  const QuantizeReport r = QuantizeModel(a.model, a.out, o, [&](double f) { progress.Update(f); });
  progress.Finish("wrote " + a.out);
  std::printf("%s -> %s (%s): %s -> %s (x%.2f)\n", a.model.c_str(), a.out.c_str(),
              QuantTargetName(o.to), Gib(r.bytes_in).c_str(), Gib(r.bytes_out).c_str(),
              r.bytes_in ? double(r.bytes_out) / double(r.bytes_in) : 0.0);
  std::printf("matrices: %lld encoded, %lld kept in 16 bits or more; %lld vectors copied",
              static_cast<long long>(r.matrices_encoded), static_cast<long long>(r.matrices_kept),
              static_cast<long long>(r.vectors_copied));
  if (r.unknown_copied)
    std::printf("; %lld tensors the model does not use copied unchanged",
                static_cast<long long>(r.unknown_copied));
  std::printf("\n");
  return 0;
}
}  // namespace

void AddQuantize(CLI::App& app, Action& action) {
  auto a = std::make_shared<QuantizeArgs>();
  auto* cmd = app.add_subcommand(
      "quantize",
      "Write a copy of a model folder with its weight matrices in a smaller format; every "
      "command loads the result. q8: int8 codes, one F16 scale per 32 values (8.5 bits per "
      "weight). q4: 4-bit codes, one F16 scale per 32 (4.5 bits; the output head gets q8). "
      "fp8: E4M3 with a float scale per 128x128 block, as DeepSeek-V3 ships. bf16: plain "
      "16-bit. MoE routers stay as they are. Accuracy cost: docs/quantization.md.\n"
      "Example: r1 quantize -m runs/brown/model --to q8 -o runs/brown/model-q8");
  cmd->add_option("-m,--model", a->model, "Model folder to read")->required();
  cmd->add_option("--to", a->to, "Target format: q8, q4, bf16 or fp8")
      ->required()
      ->check(CLI::IsMember({"q8", "q4", "bf16", "fp8", "q8_0", "q4_0"}));
  cmd->add_option("-o,--out", a->out, "Output folder (created; must not be the input)")
      ->required();
  cmd->add_flag("--force", a->force, "Replace a model already in the output folder");
  cmd->add_flag("--q4-head", a->q4_head,
                "With --to q4: the output head in q4 too, not q8 (as a GGUF q4_0 made with "
                "--pure; smaller and faster, less accurate)");
  AddThreadsOption(cmd, a->threads);
  cmd->callback([a, &action] { action = [a] { return RunQuantize(*a); }; });
}

}  // namespace r1::cli
