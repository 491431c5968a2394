// Built-in model presets: the published DeepSeek/R1-Distill configurations and two small
// DeepSeek-V3-shaped models for training, plus parameter counting and `r1 init`, which writes a
// randomly initialised Hugging Face model folder for a preset.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "r1/core/dtype.h"
#include "r1/model/config.h"

namespace r1 {

// "deepseek-v3" (671B), "deepseek-r1" (same architecture and config), "deepseek-v2-lite",
// "r1-distill-qwen-1.5b", "r1-distill-llama-8b", "v3-nano", "v3-small".
std::vector<std::string> PresetNames();

// The complete config.json object of a preset. Throws r1::Error listing the valid names for an
// unknown one.
nlohmann::json PresetConfig(const std::string& name);

struct ParamCounts {
  int64_t total = 0;      // main model (embedding, head unless tied, norms, routers); no MTP
  int64_t active = 0;     // total with only num_experts_per_tok routed experts per MoE layer
  int64_t mtp = 0;        // MTP modules as stored, including their embedding/head copies
  int64_t embedding = 0;  // the input embedding table (included in total and active)
};
// Counted from ExpectedTensors, so it holds for any config, not only the presets.
ParamCounts CountParams(const Config& cfg);

struct InitOptions {
  uint64_t seed = 0;
  DType dtype = DType::kBF16;  // kBF16 or kF32
  // Optional tokenizer.json, or a folder holding it; its size then sets vocab_size.
  std::string tokenizer_path;
  // Allow replacing a model folder that already has a config.json or model.safetensors.
  bool overwrite = false;
  // When positive, replaces the preset's num_hidden_layers: a model with the preset's layer shape
  // but fewer (or more) layers, e.g. to benchmark a large MoE shape in less memory.
  int layers = 0;
};

// Writes a Hugging Face model folder for `preset` with random weights: config.json,
// generation_config.json, model.safetensors and, with a tokenizer, copies of tokenizer.json and
// tokenizer_config.json. The same seed gives byte-identical files whatever the thread count.
// Tensors are generated and written one at a time; `progress` receives the fraction of weight
// bytes written so far. Throws r1::Error for the 671B presets, an existing model folder (unless
// opts.overwrite), an unsupported dtype or a bad tokenizer.
void InitModel(const std::string& preset, const std::string& out_dir, const InitOptions& opts,
               std::function<void(double)> progress = {});

}  // namespace r1
