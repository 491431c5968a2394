// Greedy self-speculative decoding with a model's own MTP module as the draft (model-spec §5):
// each main-model step checks one drafted token and, when it was right, yields two tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "r1/infer/generate.h"
#include "r1/model/model.h"

namespace r1 {

struct SpeculativeStats {
  // prefill_seconds covers the prompt (main model and MTP module); decode_seconds the rest.
  GenerationStats generation;
  int64_t draft_tokens = 0;     // drafts the main model checked
  int64_t accepted_tokens = 0;  // drafts it agreed with (each saves one main-model step)
  int64_t main_steps = 0;       // main-model decode steps, the prefill not counted
  double wall_seconds = 0;      // the whole call

  double acceptance_rate() const {
    return draft_tokens > 0 ? static_cast<double>(accepted_tokens) / draft_tokens : 0.0;
  }
};

// Empty when GenerateSpeculative can run `model` with `sampling`, else the reason it cannot
// (no MTP module, or not greedy), worded for a user.
std::string SpeculativeUnsupportedReason(const Model& model, const SamplingParams& sampling);

// Greedy generation of one sequence, producing exactly the tokens Generate() produces for the
// same prompt and options (stop ids, max_new_tokens, repetition penalty, cancel), up to float
// rounding: a two-token step sums in a different order than a one-token step, so a near-tie
// between the two best logits (a gap of about 1e-6 relative) could break the other way.
// Each step feeds [last token, draft] to the main model; the draft is accepted when the main
// model's choice after the last token equals it, otherwise the cache drops the draft's row.
// The MTP module's cache only ever holds accepted positions. `on_token` sees each token as it is
// accepted. Throws r1::Error when SpeculativeUnsupportedReason is not empty, for an empty prompt
// or a negative max_new_tokens.
GenerationResult GenerateSpeculative(const Model& model, const std::vector<int32_t>& prompt,
                                     const GenerateOptions& opts,
                                     const std::function<void(int32_t)>& on_token = {},
                                     SpeculativeStats* stats = nullptr);

}  // namespace r1
