// r1 bench: prefill and decode speed of a model folder beside the machine's own limits,
// measured in the same run.
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/core/machine_limits.h"
#include "r1/core/progress.h"
#include "r1/model/cost.h"
#include "r1/model/model.h"

namespace r1::cli {

namespace {
struct BenchArgs {
  std::string model;
  int prompt = 512, gen = 128, reps = 2, threads = 0;
  bool json = false;
};

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int RunBench(const BenchArgs& a) {
  using Clock = std::chrono::steady_clock;
  ApplyThreads(a.threads);
  const int threads = DefaultPool().size();
  auto model = LoadModel(a.model, a.json);
  const Config& cfg = model->config();
  const TokenCost cost = ComputeTokenCost(cfg, model->weights());
  const bool quiet = a.json;

  std::vector<int32_t> prompt(a.prompt);
  for (int i = 0; i < a.prompt; ++i) prompt[i] = static_cast<int32_t>((i * 7919 + 13) % cfg.vocab_size);

  Progress progress("bench", 3 + 2.0 * a.reps, quiet);
  // Touch every weight page once so the first timed run does not measure page faults.
  {
    KVCache cache = model->NewCache();
    SeqChunk c{cache.AddSequence(), std::span<const int32_t>(prompt.data(), 1)};
    StepOutput out;
    model->Step(cache, {&c, 1}, {}, out);
  }
  progress.Update(1, "measuring memory bandwidth");
  const double bw = MeasureReadBandwidthGBs(threads);
  progress.Update(2, "measuring FP32 peak");
  const double peak = MeasurePeakFp32Gflops(threads);
  progress.Update(3, "prefill + decode");

  double best_prefill = 1e30, best_decode = 1e30;
  for (int r = 0; r < a.reps; ++r) {
    KVCache cache = model->NewCache();
    const int slot = cache.AddSequence();
    StepOutput out;
    SeqChunk c{slot, prompt};
    auto t0 = Clock::now();
    model->Step(cache, {&c, 1}, {}, out);
    best_prefill = std::min(best_prefill, Seconds(t0));
    progress.Update(3 + 2 * r + 1, "decode");
    int32_t tok = 0;
    t0 = Clock::now();
    for (int i = 0; i < a.gen; ++i) {
      tok = static_cast<int32_t>(std::max_element(out.logits.begin(), out.logits.end()) -
                                 out.logits.begin());
      SeqChunk d{slot, std::span<const int32_t>(&tok, 1)};
      model->Step(cache, {&d, 1}, {}, out);
    }
    best_decode = std::min(best_decode, Seconds(t0));
    progress.Update(3 + 2 * r + 2);
  }
  progress.Finish();

  const double prefill_tps = a.prompt / best_prefill;
  const double decode_tps = a.gen / best_decode;
  const double roofline_tps = bw * 1e9 / cost.decode_weight_bytes;
  const double prefill_gflops = prefill_tps * cost.prefill_flops / 1e9;
  nlohmann::json j;
  j["model"] = a.model;
  j["threads"] = threads;
  j["prompt_tokens"] = a.prompt;
  j["generated_tokens"] = a.gen;
  j["prefill_tokens_per_s"] = prefill_tps;
  j["decode_tokens_per_s"] = decode_tps;
  j["bandwidth_gb_s"] = bw;
  j["peak_gflops"] = peak;
  j["decode_weight_bytes_per_token"] = cost.decode_weight_bytes;
  j["decode_roofline_tokens_per_s"] = roofline_tps;
  j["decode_roofline_ratio"] = decode_tps / roofline_tps;
  j["prefill_gflops"] = prefill_gflops;
  j["prefill_flops_ratio"] = prefill_gflops / peak;
  if (a.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model            %s (%d threads)\n", a.model.c_str(), threads);
  std::printf("machine          read bandwidth %.1f GB/s, FP32 FMA peak %.0f GFLOP/s\n", bw, peak);
  std::printf("prefill          %d tokens: %.1f tok/s = %.1f GFLOP/s (%.1f%% of FP32 peak)\n",
              a.prompt, prefill_tps, prefill_gflops, 100 * prefill_gflops / peak);
  std::printf("decode           %d tokens: %.2f tok/s; roofline %.2f tok/s (%.3g GB read per token)"
              " -> ratio %.2f\n",
              a.gen, decode_tps, roofline_tps, cost.decode_weight_bytes / 1e9,
              decode_tps / roofline_tps);
  return 0;
}
}  // namespace

void AddBench(CLI::App& app, Action& action) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand(
      "bench",
      "Measure prefill and decode tokens/s of a model folder, and in the same run the machine's "
      "read bandwidth and FP32 peak; report decode speed as a ratio of the bandwidth roofline "
      "(bandwidth / weight bytes read per token) and prefill as a ratio of the FP32 peak.\n"
      "Example: r1 init --preset r1-distill-qwen-1.5b --out runs/q15 && r1 bench -m runs/q15");
  cmd->add_option("-m,--model", a->model, "Model folder")->required();
  cmd->add_option("--prompt", a->prompt, "Prompt tokens for prefill")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--gen", a->gen, "Tokens to decode")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--reps", a->reps, "Repetitions (best is reported)")->check(CLI::Range(1, 100));
  cmd->add_flag("--json", a->json, "Print JSON");
  AddThreadsOption(cmd, a->threads);
  cmd->callback([a, &action] { action = [a] { return RunBench(*a); }; });
}

}  // namespace r1::cli
