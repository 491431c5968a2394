// r1 info: what a model is and what it needs, for a model folder or a preset name.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/core/process_memory.h"
#include "r1/core/thread_pool.h"
#include "r1/infer/kv_cache.h"
#include "r1/io/huge_pages.h"
#include "r1/io/safetensors.h"
#include "r1/model/cost.h"
#include "r1/model/presets.h"
#include "r1/model/weights.h"

namespace r1::cli {

namespace {
struct InfoArgs {
  std::string model, preset;
  int64_t context = 4096, prefill = 512;
  int threads = 0;
  bool json = false, measure = false;
};

std::string Human(double v, const char* unit) {
  const char* prefixes[] = {"", "K", "M", "G", "T"};
  int i = 0;
  const double base = std::string(unit) == "B" ? 1024.0 : 1000.0;
  while (v >= base && i < 4) {
    v /= base;
    ++i;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %s%s%s", v, prefixes[i],
                std::string(unit) == "B" && i ? "i" : "", unit);
  return buf;
}

std::string Commas(int64_t v) {
  const std::string digits = std::to_string(v);
  std::string s;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0 && digits[i - 1] != '-') s += ',';
    s += digits[i];
  }
  return s;
}

// Stored dtype of a preset's tensor: FP8 checkpoints keep embeddings, heads, norms, routers and
// the MTP projection in BF16 (model-spec §2.4).
std::string PresetDtype(const Config& cfg, const TensorSpec& t) {
  if (!cfg.fp8_declared || !t.is_matrix) return "BF16";
  for (const char* keep : {"embed_tokens", "lm_head", "mlp.gate.weight", "eh_proj", "shared_head"})
    if (t.name.find(keep) != std::string::npos) return "BF16";
  return "F8_E4M3";
}

int RunInfo(const InfoArgs& a) {
  ApplyThreads(a.threads);
  Config cfg;
  std::string source;
  std::map<std::string, std::pair<int64_t, int64_t>> dtypes;  // name -> (elements, bytes)
  int64_t weight_bytes = 0;
  // Loading maps the files and copies only norms, biases and non-F32 FP8 scales, as float32.
  int64_t owned_bytes = 0;
  int64_t file_bytes = 0;  // the safetensors files on disk, headers included
  const ProcessMemory before = ReadProcessMemory();
  std::string target = a.model.empty() ? a.preset : a.model;
  const bool is_dir = !a.model.empty() && std::filesystem::is_directory(a.model);
  if (!a.model.empty() && !is_dir) {
    const auto names = PresetNames();
    if (std::find(names.begin(), names.end(), a.model) == names.end())
      throw Error(a.model + ": not a model folder (no such directory) and not a preset name");
  }
  if (is_dir) {
    cfg = LoadConfig(a.model);
    TensorStore store = TensorStore::OpenDir(a.model);
    source = a.model;
    // Q8/Q4 tensors are tile groups of codes and scales; their element counts come from the
    // matrix shapes the config implies.
    std::map<std::string, int64_t> matrix_elements;
    for (const auto& spec : ExpectedTensors(cfg, true))
      if (spec.shape.size() == 2) matrix_elements[spec.name] = spec.shape[0] * spec.shape[1];
    for (const auto& name : store.Names()) {
      const TensorView& t = store.Get(name);
      // Quantized codes and block scales are named by what they are, not by their carrier dtype.
      std::string key(DTypeName(t.dtype));
      int64_t elements = t.numel();
      if (name.ends_with("_scale") || name.ends_with("_scale_inv")) {
        key = "scales";
      } else if (t.dtype == DType::kI8 || t.dtype == DType::kU8) {
        key = t.dtype == DType::kI8 ? "Q8_0" : "Q4_0";
        const auto it = matrix_elements.find(name);
        if (it != matrix_elements.end()) elements = it->second;
      }
      auto& e = dtypes[key];
      e.first += elements;
      e.second += static_cast<int64_t>(t.nbytes);
      weight_bytes += static_cast<int64_t>(t.nbytes);
      const bool fp8_scale = name.ends_with("_scale_inv");
      if (t.shape.size() == 1 || (fp8_scale && t.dtype != DType::kF32))
        owned_bytes += 4 * t.numel();
    }
    for (const auto& e : std::filesystem::directory_iterator(a.model))
      if (e.is_regular_file() && e.path().extension() == ".safetensors")
        file_bytes += static_cast<int64_t>(e.file_size());
  } else {
    if (a.measure) throw Error("--measure needs a model folder to load, not a preset");
    cfg = ParseConfig(PresetConfig(target), "preset " + target);
    source = "preset " + target + " (no weights read)";
    for (const auto& t : ExpectedTensors(cfg, true)) {
      int64_t n = 1;
      for (int64_t s : t.shape) n *= s;
      const std::string dt = PresetDtype(cfg, t);
      int64_t bytes = dt == "F8_E4M3" ? n : 2 * n;
      if (dt == "F8_E4M3") {  // plus one float32 scale per 128x128 block
        const int64_t scales = ((t.shape[0] + 127) / 128) * ((t.shape[1] + 127) / 128);
        dtypes["F32"].first += scales;
        dtypes["F32"].second += 4 * scales;
        weight_bytes += 4 * scales;
      }
      dtypes[dt].first += n;
      dtypes[dt].second += bytes;
      weight_bytes += bytes;
      if (!t.is_matrix) owned_bytes += 4 * n;
    }
  }
  const ParamCounts pc = CountParams(cfg);
  const int64_t kv_f32 = KVBytesPerToken(cfg, 4), kv_bf16 = KVBytesPerToken(cfg, 2);
  const int64_t moe_layers = [&] {
    int64_t m = 0;
    for (int l = 0; l < cfg.num_hidden_layers; ++l) m += cfg.is_moe_layer(l);
    return m;
  }();
  const int64_t memory = weight_bytes + kv_f32 * a.context;
  const int64_t full_context = cfg.max_position_embeddings;
  const int threads = DefaultPool().size();
  const int64_t scratch_decode = StepScratchBytes(cfg, 1, 1, a.context, threads);
  const int64_t scratch_prefill = StepScratchBytes(cfg, a.prefill, 1, a.prefill, threads);

  // Loads the model as every command does, then reads every mapped page, so the resident set is
  // what a long run settles at; the difference to `before` is what the model cost.
  ProcessMemory loaded;
  double load_seconds = 0;
  size_t reread = 0;
  MappingPages pages;  // the weight files' mappings: how much decode reads through 2 MiB entries
  if (a.measure) {
    const auto t0 = std::chrono::steady_clock::now();
    auto model = Model::Load(a.model);
    reread = model->Prefault();
    load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    loaded = ReadProcessMemory();
    pages = ReadMappingPages(model->store());
  }

  // Whether the weights sit in anonymous memory (R1_MMAP=0): what the loading did, or else what
  // every command's loading (LoadModel) does.
  const bool anon = a.measure ? pages.anonymous > 0
                              : WeightsInAnonymousMemory() &&
                                    static_cast<size_t>(weight_bytes) >= kPrefaultMinBytes;
  if (a.json) {
    nlohmann::json j;
    j["source"] = source;
    j["architecture"] = cfg.architecture;
    j["layers"] = cfg.num_hidden_layers;
    j["moe_layers"] = moe_layers;
    j["hidden_size"] = cfg.hidden_size;
    j["vocab_size"] = cfg.vocab_size;
    j["params_total"] = pc.total;
    j["params_active"] = pc.active;
    j["params_mtp"] = pc.mtp;
    j["params_embedding"] = pc.embedding;
    for (auto& [name, e] : dtypes) j["dtypes"][name] = {{"elements", e.first}, {"bytes", e.second}};
    j["weight_bytes"] = weight_bytes;
    j["kv_cache_bytes_per_token"] = kv_f32;
    j["kv_cache_bytes_per_token_bf16"] = kv_bf16;
    j["kv_cache_dtype"] = "F32";
    j["context_for_memory"] = a.context;
    j["memory_bytes"] = memory;
    j["weights_memory"] = anon ? "anonymous" : "file_mapping";
    j["resident_file_bytes"] = anon ? 0 : weight_bytes;
    j["resident_anon_bytes"] = anon ? weight_bytes + owned_bytes : owned_bytes;
    j["kv_cache_bytes_context"] = kv_f32 * a.context;
    j["full_context"] = full_context;
    j["kv_cache_bytes_full_context"] = kv_f32 * full_context;
    j["scratch_bytes_decode"] = scratch_decode;
    j["prefill_for_scratch"] = a.prefill;
    j["scratch_bytes_prefill"] = scratch_prefill;
    if (is_dir) j["file_bytes"] = file_bytes;
    if (a.measure) {
      j["measured"] = {{"vm_rss_bytes", loaded.vm_rss},     {"rss_anon_bytes", loaded.rss_anon},
                       {"rss_file_bytes", loaded.rss_file}, {"vm_hwm_bytes", loaded.vm_hwm},
                       {"vm_rss_before_bytes", before.vm_rss}, {"load_seconds", load_seconds},
                       {anon ? "weights_copied_bytes" : "weights_reread_bytes", reread}};
      if (pages.known) {
        j["measured"]["weights_mapped_bytes"] = pages.resident;
        j["measured"]["weights_huge_page_bytes"] = pages.huge;
      }
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("model          %s\n", source.c_str());
  std::printf("architecture   %s\n", cfg.architecture.c_str());
  std::printf("shape          %d layers (%lld MoE), hidden %lld, vocab %lld\n",
              cfg.num_hidden_layers, static_cast<long long>(moe_layers),
              static_cast<long long>(cfg.hidden_size), static_cast<long long>(cfg.vocab_size));
  if (cfg.is_deepseek()) {
    std::printf("attention      MLA, %d heads, q_lora_rank %d, kv_lora_rank %d, nope/rope/v %d/%d/%d\n",
                cfg.num_attention_heads, cfg.q_lora_rank, cfg.kv_lora_rank, cfg.qk_nope_head_dim,
                cfg.qk_rope_head_dim, cfg.v_head_dim);
    if (cfg.n_routed_experts > 0)
      std::printf("experts        %d routed (%d per token), %d shared, %d groups (top %d), %s, %s\n",
                  cfg.n_routed_experts, cfg.num_experts_per_tok, cfg.n_shared_experts, cfg.n_group,
                  cfg.topk_group, cfg.scoring_func == ScoringFunc::kSigmoid ? "sigmoid" : "softmax",
                  cfg.topk_method.c_str());
  } else {
    std::printf("attention      GQA, %d heads, %d KV heads, head_dim %d\n", cfg.num_attention_heads,
                cfg.num_key_value_heads, cfg.head_dim);
  }
  std::printf("parameters     %s total (%s), %s active per token (%s)\n",
              Human(static_cast<double>(pc.total), "").c_str(), Commas(pc.total).c_str(),
              Human(static_cast<double>(pc.active), "").c_str(), Commas(pc.active).c_str());
  if (pc.mtp) std::printf("MTP modules    %s parameters as stored\n", Commas(pc.mtp).c_str());
  if (!cfg.quant_format.empty())
    std::printf("quantization   %s: codes with one F16 scale per %d values (r1 quantize)\n",
                cfg.quant_format.c_str(), kQuantBlock);
  else if (cfg.fp8_declared)
    std::printf("quantization   FP8 E4M3 with one scale per %dx%d block\n", cfg.fp8_block[0],
                cfg.fp8_block[1]);
  for (auto& [name, e] : dtypes)
    std::printf("dtype %-8s %s elements, %s\n", name.c_str(), Commas(e.first).c_str(),
                Human(static_cast<double>(e.second), "B").c_str());
  const std::string files =
      is_dir ? " (files " + Human(static_cast<double>(file_bytes), "B") + ")" : "";
  std::printf("weights        %s as stored; %s, never expanded%s\n",
              Human(static_cast<double>(weight_bytes), "B").c_str(),
              anon ? "copied into anonymous memory in 2 MiB pages (R1_MMAP=0)"
                   : "mapped from the files",
              files.c_str());
  std::printf("resident       %s after loading: the weights (%s pages) + %s of "
              "float32 norms and biases\n",
              Human(static_cast<double>(weight_bytes + owned_bytes), "B").c_str(),
              anon ? "anonymous" : "file-backed", Human(static_cast<double>(owned_bytes), "B").c_str());
  std::printf("KV cache       %s bytes/token as stored (float32), %s in BF16\n",
              Commas(kv_f32).c_str(), Commas(kv_bf16).c_str());
  std::printf("KV cache       %s for %s tokens",
              Human(static_cast<double>(kv_f32 * a.context), "B").c_str(),
              Commas(a.context).c_str());
  if (full_context > 0)
    std::printf(", %s for the full context of %s tokens",
                Human(static_cast<double>(kv_f32 * full_context), "B").c_str(),
                Commas(full_context).c_str());
  std::printf("\n");
  std::printf("scratch        %s per decode step, %s per %lld-token prefill step "
              "(float32, %d threads)\n",
              Human(static_cast<double>(scratch_decode), "B").c_str(),
              Human(static_cast<double>(scratch_prefill), "B").c_str(),
              static_cast<long long>(a.prefill), threads);
  std::printf("memory         %s = weights + KV cache for %lld tokens\n",
              Human(static_cast<double>(memory), "B").c_str(), static_cast<long long>(a.context));
  if (a.measure) {
    auto h = [](int64_t v) {
      return v < 0 ? std::string("n/a") : Human(static_cast<double>(v), "B");
    };
    std::printf("VmRSS          %s measured after loading and reading every weight page (%s before "
                "loading, %.2f s to load)\n",
                h(loaded.vm_rss).c_str(), h(before.vm_rss).c_str(), load_seconds);
    std::printf("RssFile        %s file-backed: %sthe program\n", h(loaded.rss_file).c_str(),
                anon ? "" : "the mapped weights and ");
    std::printf("RssAnon        %s anonymous: %sfloat32 copies, heap, stacks\n",
                h(loaded.rss_anon).c_str(), anon ? "the weights (R1_MMAP=0), " : "");
    if (pages.known)
      std::printf("HugePages      %s of the %s of weights mapped are in 2 MiB pages%s\n",
                  h(static_cast<int64_t>(pages.huge)).c_str(),
                  h(static_cast<int64_t>(pages.resident)).c_str(),
                  !reread ? ""
                  : anon  ? " (copied out of the files at loading: R1_MMAP=0)"
                          : " (re-read at loading: they were cached in 4 KiB pages)");
  }
  return 0;
}
}  // namespace

void AddInfo(CLI::App& app, Action& action) {
  auto a = std::make_shared<InfoArgs>();
  auto* cmd = app.add_subcommand(
      "info",
      "Show a model's architecture, parameter counts (total and active per token), and its "
      "memory plan: weight bytes by stored dtype (mapped, never expanded), the resident size "
      "after loading, KV-cache bytes per token, for --context tokens and for the full context, "
      "and the scratch of a decode and a prefill step. Works on a model folder or, without "
      "reading weights, on a preset name; --measure loads the folder and prints the measured "
      "resident memory beside the estimate.\n"
      "Examples: r1 info -m ../shared/golden/deepseek-v3-tiny/model --measure\n"
      "          r1 info --preset deepseek-v3");
  auto* m = cmd->add_option("-m,--model", a->model, "Model folder (or a preset name)");
  auto* p = cmd->add_option("--preset", a->preset,
                            "Preset name: deepseek-v3, deepseek-r1, deepseek-v2-lite, "
                            "r1-distill-qwen-1.5b, r1-distill-llama-8b, v3-nano, v3-small");
  m->excludes(p);
  cmd->add_option("--context", a->context, "Tokens of KV cache to count in the memory figure")
      ->check(CLI::Range(int64_t{0}, int64_t{1} << 30));
  cmd->add_option("--prefill", a->prefill, "Prompt tokens of one step for the scratch estimate")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24));
  cmd->add_flag("--measure", a->measure,
                "Also load the folder, read every weight page and print the process's measured "
                "resident memory (VmRSS, RssFile, RssAnon)");
  AddThreadsOption(cmd, a->threads);
  cmd->add_flag("--json", a->json, "Print JSON");
  cmd->callback([a, &action] {
    if (a->model.empty() && a->preset.empty()) throw CLI::RequiredError("-m or --preset");
    action = [a] { return RunInfo(*a); };
  });
}

}  // namespace r1::cli
