// Batched generation on top of Model::Step: every unfinished sequence advances by one token per
// step, each with its own sampler and stop conditions.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "r1/infer/sampler.h"
#include "r1/model/model.h"

namespace r1 {

struct GenerateOptions {
  int max_new_tokens = 128;
  SamplingParams sampling;
  // Stop after any of these ids (the id is kept in the output). Empty: the config's eos ids,
  // unless ignore_eos.
  std::vector<int32_t> stop_ids;
  bool ignore_eos = false;
  // Checked before every step; when it turns true, unfinished sequences end with
  // finish_reason "cancelled" (Ctrl-C in `r1 chat`, a client disconnecting from the server).
  const std::atomic<bool>* cancel = nullptr;
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated ids, a stop id included
  std::string finish_reason;    // "stop", "length" or "cancelled"
};

struct GenerationStats {
  int64_t prompt_tokens = 0, generated_tokens = 0;
  double prefill_seconds = 0, decode_seconds = 0;
};

// Sequence i samples with seed `sampling.seed + i`, so a batch is reproducible and each member
// equals the same prompt generated alone with that seed. `on_token(i, id)` is called as each
// token is produced (for streaming); it may be empty.
std::vector<GenerationResult> Generate(const Model& model,
                                       const std::vector<std::vector<int32_t>>& prompts,
                                       const GenerateOptions& opts,
                                       const std::function<void(int, int32_t)>& on_token = {},
                                       GenerationStats* stats = nullptr);

}  // namespace r1
