// r1 bench: prefill, decode and batched decode speed of a model folder beside the machine's own
// limits, measured in the same run; for a model with MTP weights also MTP speculative decoding
// of the same tokens, its acceptance rate and its speed-up over the plain decode.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/core/machine_limits.h"
#include "r1/core/progress.h"
#include "r1/io/huge_pages.h"
#include "r1/infer/speculative.h"
#include "r1/kernels/amx.h"
#include "r1/kernels/gemm_bf16.h"
#include "r1/kernels/matvec_int8.h"
#include "r1/kernels/simd.h"
#include "r1/model/cost.h"
#include "r1/model/model.h"

namespace r1::cli {

namespace {
struct BenchArgs {
  std::string model;
  int prompt = 512, gen = 128, reps = 2, threads = 0;
  int decode_after = 0;  // tokens before the timed decode; 0: the prefill's prompt
  std::string batch = "1,8,32";
  // Batched decode is timed over few steps: at batch 32 one step is already a 32-token matmul,
  // so 16 steps measure it as well as 128 would, in an eighth of the time.
  int batch_prompt = 16, batch_gen = 16;
  bool json = false, no_speculative = false;
};

double Seconds(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int32_t Argmax(const float* row, int64_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

std::vector<int> ParseBatchSizes(const std::string& s) {
  std::vector<int> sizes;
  size_t i = 0;
  while (i < s.size()) {
    size_t j = s.find(',', i);
    if (j == std::string::npos) j = s.size();
    const std::string item = s.substr(i, j - i);
    size_t used = 0;
    int b = 0;
    try {
      b = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || item.find_first_not_of(" ", used) != std::string::npos || b < 1 || b > 4096)
      throw Error("--batch: expected comma-separated batch sizes 1..4096, got '" + s + "'");
    if (std::find(sizes.begin(), sizes.end(), b) == sizes.end()) sizes.push_back(b);
    i = j + 1;
  }
  if (sizes.empty()) throw Error("--batch: no batch sizes given");
  return sizes;
}

// Best seconds of `reps` runs of `steps` greedy decode steps of `batch` sequences together, one
// Model::Step with `batch` one-token chunks per step. Each sequence first gets its own
// `prompt_len`-token prompt (all in one untimed step); the prompt is run once and every rep
// truncates the caches back to it, since at batch 32 that prefill costs as much as the decoding.
double TimeBatchDecode(const Model& model, int batch, int prompt_len, int steps, int reps,
                       const std::function<void(int)>& rep_done) {
  const Config& cfg = model.config();
  KVCache cache = model.NewCache();
  std::vector<int> slots(batch);
  std::vector<int32_t> tokens(static_cast<size_t>(batch) * prompt_len);
  std::vector<SeqChunk> chunks(batch);
  for (int b = 0; b < batch; ++b) {
    slots[b] = cache.AddSequence();
    for (int i = 0; i < prompt_len; ++i)
      tokens[b * prompt_len + i] =
          static_cast<int32_t>((static_cast<int64_t>(b) * 104729 + i * 7919 + 13) % cfg.vocab_size);
    chunks[b] = {slots[b], std::span<const int32_t>(tokens.data() + b * prompt_len, prompt_len)};
  }
  StepOutput out;
  model.Step(cache, chunks, {}, out);
  const std::vector<float> prompt_logits = out.logits;
  std::vector<int32_t> next(batch);
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    for (int slot : slots) cache.Truncate(slot, prompt_len);
    out.logits = prompt_logits;
    const auto t0 = std::chrono::steady_clock::now();
    for (int s = 0; s < steps; ++s) {
      for (int b = 0; b < batch; ++b) {
        next[b] =
            Argmax(out.logits.data() + static_cast<int64_t>(b) * cfg.vocab_size, cfg.vocab_size);
        chunks[b] = {slots[b], std::span<const int32_t>(&next[b], 1)};
      }
      model.Step(cache, chunks, {}, out);
    }
    best = std::min(best, Seconds(t0));
    rep_done(r);
  }
  return best;
}

std::string BatchLabel(int batch) { return "batch " + std::to_string(batch) + " decode"; }

void PrintPeak(const char* label, double value, const char* unit, double fp32) {
  if (value > 0)
    std::printf("%-17s%.0f %s (%.2fx FP32)\n", label, value, unit, value / fp32);
  else
    std::printf("%-17snot supported by this CPU\n", label);
}

// The MTP speculative decode of the same prompt and token count as the plain decode, best of
// `reps` runs (all runs are greedy, so they produce the same tokens and the same counts).
struct SpeculativeBench {
  SpeculativeStats stats;  // of the fastest run
  std::vector<int32_t> tokens;
};

SpeculativeBench TimeSpeculativeDecode(const Model& model, const std::vector<int32_t>& prompt,
                                       int gen, int reps, const std::function<void(int)>& rep_done) {
  // The plain decode feeds `gen` tokens, the first chosen by the prefill, and its last step's
  // logits give one more: `gen` + 1 tokens, `gen` of them from decode steps, as here.
  GenerateOptions opts;
  opts.max_new_tokens = gen + 1;
  opts.ignore_eos = true;
  SpeculativeBench best;
  for (int r = 0; r < reps; ++r) {
    SpeculativeStats st;
    GenerationResult res = GenerateSpeculative(model, prompt, opts, {}, &st);
    if (r == 0 || st.generation.decode_seconds < best.stats.generation.decode_seconds) {
      best.stats = st;
      best.tokens = std::move(res.tokens);
    }
    rep_done(r);
  }
  return best;
}

int RunBench(const BenchArgs& a) {
  using Clock = std::chrono::steady_clock;
  const std::vector<int> batches = ParseBatchSizes(a.batch);
  ApplyThreads(a.threads);
  const int threads = DefaultPool().size();
  auto model = LoadModel(a.model, a.json);
  const Config& cfg = model->config();
  const TokenCost cost = ComputeTokenCost(cfg, model->weights());
  const auto format_bytes = MatrixBytesByFormat(model->weights());
  const bool quiet = a.json;

  const int decode_after = a.decode_after > 0 ? a.decode_after : a.prompt;
  std::vector<int32_t> tokens(std::max(a.prompt, decode_after));
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = static_cast<int32_t>((i * 7919 + 13) % cfg.vocab_size);
  const std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + a.prompt);
  // What the decode (plain and speculative) continues: the prefill's prompt, or --decode-after's.
  const std::vector<int32_t> decode_prompt(tokens.begin(), tokens.begin() + decode_after);

  // Empty: the speculative decode runs after the plain one; else why it does not.
  const std::string spec_skipped =
      a.no_speculative ? "--no-speculative" : SpeculativeUnsupportedReason(*model, SamplingParams{});
  const bool spec = spec_skipped.empty();

  const int nb = static_cast<int>(batches.size());
  Progress progress("bench", 6.0 + (2 + nb + (spec ? 1 : 0)) * a.reps, quiet);
  double done = 0;
  // Touch every weight page once so the first timed run does not measure page faults.
  {
    KVCache cache = model->NewCache();
    SeqChunk c{cache.AddSequence(), std::span<const int32_t>(prompt.data(), 1)};
    StepOutput out;
    model->Step(cache, {&c, 1}, {}, out);
  }
  progress.Update(++done, "measuring memory bandwidth");
  const double bw_before = MeasureReadBandwidthGBs(threads, BandwidthBufferBytes());
  progress.Update(++done, "measuring FP32 FMA peak");
  const double peak = MeasurePeakFp32Gflops(threads);
  progress.Update(++done, "measuring BF16 dot peak");
  const double peak_bf16 = MeasurePeakBf16Gflops(threads);
  progress.Update(++done, "measuring INT8 dot peak");
  const double peak_int8 = MeasurePeakInt8Gops(threads);
  const double peak_amx_bf16 = MeasurePeakAmxBf16Gflops(threads);
  progress.Update(++done, "prefill");

  double best_prefill = 1e30, best_decode = 1e30;
  // The plain greedy tokens (the prefill's choice, one per decode step, and the one after the
  // last step), to compare with the speculative decode's.
  std::vector<int32_t> plain_tokens;
  plain_tokens.reserve(a.gen + 1);
  const std::string after_decode = spec ? std::string("speculative decode") : BatchLabel(batches[0]);
  for (int r = 0; r < a.reps; ++r) {
    KVCache cache = model->NewCache();
    const int slot = cache.AddSequence();
    StepOutput out;
    SeqChunk c{slot, prompt};
    auto t0 = Clock::now();
    model->Step(cache, {&c, 1}, {}, out);
    best_prefill = std::min(best_prefill, Seconds(t0));
    if (decode_after != a.prompt) {
      cache.RemoveSequence(slot);
      c = {cache.AddSequence(), decode_prompt};
      model->Step(cache, {&c, 1}, {}, out);
    }
    progress.Update(++done, "decode");
    int32_t tok = 0;
    plain_tokens.clear();
    t0 = Clock::now();
    for (int i = 0; i < a.gen; ++i) {
      tok = Argmax(out.logits.data(), cfg.vocab_size);
      plain_tokens.push_back(tok);
      SeqChunk d{c.slot, std::span<const int32_t>(&tok, 1)};
      model->Step(cache, {&d, 1}, {}, out);
    }
    best_decode = std::min(best_decode, Seconds(t0));
    plain_tokens.push_back(Argmax(out.logits.data(), cfg.vocab_size));
    progress.Update(++done, r + 1 < a.reps ? "prefill" : after_decode);
  }
  SpeculativeBench sb;
  if (spec) {
    auto rep_done = [&](int r) {
      progress.Update(++done, r + 1 < a.reps ? "speculative decode" : BatchLabel(batches[0]));
    };
    sb = TimeSpeculativeDecode(*model, decode_prompt, a.gen, a.reps, rep_done);
  }
  std::vector<double> best_batch(nb);
  for (int k = 0; k < nb; ++k) {
    // The label names what runs next: this batch size again, the next one, or nothing.
    auto rep_done = [&](int r) {
      const bool last = r + 1 == a.reps;
      progress.Update(++done, !last        ? BatchLabel(batches[k])
                              : k + 1 < nb ? BatchLabel(batches[k + 1])
                                           : std::string());
    };
    best_batch[k] =
        TimeBatchDecode(*model, batches[k], a.batch_prompt, a.batch_gen, a.reps, rep_done);
  }
  // Measured again after the timed runs, and the higher kept: a probe only reads low when
  // something else takes the memory system (the kernel reclaiming pages after a large load,
  // another process), and a low figure would inflate every roofline ratio.
  progress.Update(done, "measuring memory bandwidth again");
  const double bw_after = MeasureReadBandwidthGBs(threads, BandwidthBufferBytes());
  const double bw = std::max(bw_before, bw_after);
  progress.Update(++done, "");
  progress.Finish();

  const double prefill_tps = a.prompt / best_prefill;
  const double decode_tps = a.gen / best_decode;
  const double roofline_tps = bw * 1e9 / cost.decode_weight_bytes;
  const double prefill_gflops = prefill_tps * cost.prefill_flops / 1e9;
  // Speculative figures over the decode steps only, like decode_tps: the tokens after the
  // prefill's one, per second of the decode loop and per main-model step.
  const SpeculativeStats& ss = sb.stats;
  const int64_t spec_decoded = ss.generation.generated_tokens - 1;
  const double spec_tps =
      ss.generation.decode_seconds > 0 ? spec_decoded / ss.generation.decode_seconds : 0;
  const double spec_per_step =
      ss.main_steps > 0 ? static_cast<double>(spec_decoded) / ss.main_steps : 0;
  const bool spec_matches = sb.tokens == plain_tokens;
  const std::string format = WeightFormat(format_bytes);
  // The prefill's matrix products run on the instruction of the format holding most weight
  // bytes; its ratio is taken against that instruction's peak.
  std::string main_format;
  uint64_t main_bytes = 0;
  for (const auto& [name, bytes] : format_bytes)
    if (bytes > main_bytes) main_bytes = bytes, main_format = name;
  std::string prefill_peak_name = "fp32_fma";
  double prefill_peak = peak;
  const bool quantized = main_format == "q8" || main_format == "q4";
  if (quantized && Int8ActivationsEnabled() && AmxEnabled() && peak_amx_bf16 > 0 &&
      a.prompt >= kQuantizedAmxMinTokens) {
    // Q8/Q4 prompts of this length run on BF16 AMX tiles (gemm_bf16.h).
    prefill_peak_name = "amx_bf16";
    prefill_peak = peak_amx_bf16;
  } else if (quantized && Int8ActivationsEnabled() &&
             (CpuHasAvx512Vnni() || DetectIsa() >= IsaLevel::kAvx2) && peak_int8 > 0) {
    prefill_peak_name = "int8_dot";
    prefill_peak = peak_int8;
  } else if (main_format == "bf16" && Bf16GemmEnabled() && AmxEnabled() && peak_amx_bf16 > 0) {
    prefill_peak_name = "amx_bf16";
    prefill_peak = peak_amx_bf16;
  } else if (main_format == "bf16" && Bf16GemmEnabled() && CpuHasAvx512Bf16() && peak_bf16 > 0) {
    prefill_peak_name = "bf16_dot";
    prefill_peak = peak_bf16;
  }
  const std::string isa = KernelIsaDescription();
  const std::string cpu = CpuModelName();
  // Where the weights sit in 2 MiB pages decode reads them faster (docs/performance.md).
  const MappingPages pages = ReadMappingPages(model->store());
  const double huge_fraction =
      pages.resident > 0 ? static_cast<double>(pages.huge) / static_cast<double>(pages.resident) : 0.0;
  const bool copied = pages.anonymous > 0;

  nlohmann::ordered_json j;
  j["model"] = a.model;
  j["architecture"] = cfg.architecture;
  j["weight_format"] = format;
  for (const auto& [name, bytes] : format_bytes)
    j["weight_bytes_by_format"][name] = static_cast<int64_t>(bytes);
  j["cpu"] = cpu;
  j["isa"] = isa;
  j["threads"] = threads;
  j["reps"] = a.reps;
  j["prompt_tokens"] = a.prompt;
  j["generated_tokens"] = a.gen;
  j["decode_after_tokens"] = decode_after;
  j["prefill_tokens_per_s"] = prefill_tps;
  j["decode_tokens_per_s"] = decode_tps;
  j["batch_prompt_tokens"] = a.batch_prompt;
  j["batch_generated_tokens"] = a.batch_gen;
  for (size_t k = 0; k < batches.size(); ++k)
    j["batch_decode_tokens_per_s"][std::to_string(batches[k])] =
        static_cast<double>(batches[k]) * a.batch_gen / best_batch[k];
  j["bandwidth_gb_s"] = bw;
  j["bandwidth_probes_gb_s"] = {bw_before, bw_after};
  j["peak_gflops"] = peak;
  j["peak_bf16_gflops"] = peak_bf16;
  j["peak_int8_gops"] = peak_int8;
  j["peak_amx_bf16_gflops"] = peak_amx_bf16;
  j["decode_weight_bytes_per_token"] = static_cast<int64_t>(cost.decode_weight_bytes);
  j["decode_roofline_tokens_per_s"] = roofline_tps;
  j["decode_roofline_ratio"] = decode_tps / roofline_tps;
  j["prefill_gflops"] = prefill_gflops;
  j["prefill_flops_ratio"] = prefill_gflops / prefill_peak;
  j["prefill_peak"] = prefill_peak_name;
  j["bf16_rounded_activations"] =
      Bf16RoundedActivations() || (quantized && prefill_peak_name == "amx_bf16");
  if (pages.known) j["weights_huge_page_fraction"] = huge_fraction;
  // LoadModel copies them into anonymous memory with R1_MMAP=0 (io/huge_pages.h).
  if (pages.known) j["weights_memory"] = copied ? "anonymous" : "file_mapping";
  if (spec) {
    j["speculative_decode_tokens_per_s"] = spec_tps;
    j["speculative_acceptance_rate"] = ss.acceptance_rate();
    j["speculative_tokens_per_step"] = spec_per_step;
    j["speculative_speedup"] = spec_tps / decode_tps;
    j["speculative_matches_plain"] = spec_matches;
    j["speculative_draft_tokens"] = ss.draft_tokens;
    j["speculative_accepted_tokens"] = ss.accepted_tokens;
    j["speculative_main_steps"] = ss.main_steps;
  } else {
    j["speculative_skipped"] = spec_skipped;
  }
  if (a.json) {
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%-17s%s: %s weights, %.3g GB read per decoded token\n", "model", a.model.c_str(),
              format.c_str(), cost.decode_weight_bytes / 1e9);
  std::printf("%-17s%s, kernels %s, %d threads\n", "cpu", cpu.c_str(), isa.c_str(), threads);
  std::printf("%-17s%.1f GB/s\n", "read bandwidth", bw);
  if (pages.known)
    std::printf("%-17s%.0f%% of the %s weights\n", "2 MiB pages", 100 * huge_fraction,
                copied ? "copied (R1_MMAP=0)" : "mapped");
  std::printf("%-17s%.0f GFLOP/s\n", "FP32 FMA peak", peak);
  PrintPeak("BF16 dot peak", peak_bf16, "GFLOP/s", peak);
  PrintPeak("INT8 dot peak", peak_int8, "GOP/s", peak);
  if (peak_amx_bf16 > 0) PrintPeak("AMX BF16 peak", peak_amx_bf16, "GFLOP/s", peak);
  std::printf("%-17s%d tokens: %.1f tok/s = %.1f GFLOP/s (%.1f%% of the %s peak)%s\n", "prefill",
              a.prompt, prefill_tps, prefill_gflops, 100 * prefill_gflops / prefill_peak,
              prefill_peak_name.c_str(),
              prefill_peak_name.find("bf16") == std::string::npos ? ""
              : quantized ? ", weights and activations rounded to BF16"
              : Bf16RoundedActivations() ? ", activations rounded to BF16"
                                         : "");
  std::printf("%-17s%d tokens after %d: %.2f tok/s; roofline %.2f tok/s -> ratio %.2f\n",
              "decode", a.gen, decode_after, decode_tps, roofline_tps, decode_tps / roofline_tps);
  if (spec) {
    std::printf("%-17s%d tokens: %.2f tok/s = x%.2f plain decode; %lld/%lld drafts accepted "
                "(%.1f%%), %.2f tokens per main step; %s\n",
                "speculative", a.gen, spec_tps, spec_tps / decode_tps,
                static_cast<long long>(ss.accepted_tokens),
                static_cast<long long>(ss.draft_tokens), 100 * ss.acceptance_rate(),
                spec_per_step,
                spec_matches ? "same tokens as plain decode" : "TOKENS DIFFER from plain decode");
  } else {
    std::printf("%-17sskipped: %s\n", "speculative", spec_skipped.c_str());
  }
  for (size_t k = 0; k < batches.size(); ++k) {
    const double tps = static_cast<double>(batches[k]) * a.batch_gen / best_batch[k];
    std::printf("%-17s%d x %d tokens: %.2f tok/s (%.2f per sequence)\n", "batch decode",
                batches[k], a.batch_gen, tps, tps / batches[k]);
  }
  return 0;
}
}  // namespace

void AddBench(CLI::App& app, Action& action) {
  auto a = std::make_shared<BenchArgs>();
  auto* cmd = app.add_subcommand(
      "bench",
      "Measure prefill, decode and batched decode tokens/s of a model folder, and in the same run "
      "the machine's read bandwidth and FP32 FMA, BF16 dot and INT8 dot peaks; report decode "
      "speed as a ratio of the bandwidth roofline (bandwidth / weight bytes read per token) and "
      "prefill as a ratio of the peak of the instruction its products use (INT8 dot for Q8/Q4, "
      "BF16 dot for BF16 where the CPU has them, else FP32 FMA). For a model with MTP weights, also MTP speculative "
      "decoding of the same --gen greedy tokens: its tokens/s, draft acceptance rate, tokens "
      "per main-model step, speed-up over the plain decode, and whether its tokens equal the "
      "plain decode's. The best of --reps runs is reported.\n"
      "Example: r1 init --preset r1-distill-qwen-1.5b --out runs/q15 && r1 bench -m runs/q15");
  cmd->add_option("-m,--model", a->model, "Model folder")->required();
  cmd->add_option("--prompt", a->prompt, "Prompt tokens for prefill")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--gen", a->gen, "Tokens to decode")->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--decode-after", a->decode_after,
                  "Tokens in the cache before the timed decode (default: the --prompt ones; 1 "
                  "times it from an empty cache, as llama-bench's tg128 does)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--batch", a->batch,
                  "Batch sizes for batched decode, comma-separated (B sequences decoding together, "
                  "one token each per step)")
      ->capture_default_str();
  cmd->add_option("--batch-prompt", a->batch_prompt, "Prompt tokens of each batched sequence")
      ->check(CLI::Range(1, 1 << 16))
      ->capture_default_str();
  cmd->add_option("--batch-gen", a->batch_gen, "Decode steps timed at each batch size")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--reps", a->reps, "Repetitions (best is reported)")->check(CLI::Range(1, 100));
  cmd->add_flag("--no-speculative", a->no_speculative,
                "Skip the MTP speculative decode measurement (run by default when the model has "
                "MTP weights)");
  cmd->add_flag("--json", a->json, "Print JSON");
  AddThreadsOption(cmd, a->threads);
  AddBf16ActivationsOption(cmd);
  cmd->callback([a, &action] { action = [a] { return RunBench(*a); }; });
}

}  // namespace r1::cli
