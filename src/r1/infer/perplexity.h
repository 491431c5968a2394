// Perplexity of a model on a token stream, as llama.cpp's `llama-perplexity` reports it: the text
// is cut into consecutive windows of `context` tokens, each run from an empty cache, and every
// token after a window's first is scored by the model's probability for it given the tokens
// before it in that window. The inference engine computes the logits, so quantized folders are
// measured exactly as they run.
#pragma once

#include <cstdint>
#include <functional>
#include <span>

#include "r1/model/model.h"

namespace r1 {

struct PerplexityOptions {
  int64_t context = 512;     // tokens per window
  int64_t max_windows = 0;   // 0 = every whole window of the text
};

struct PerplexityResult {
  int64_t windows = 0;
  int64_t tokens_scored = 0;
  double mean_nll = 0;       // nats per scored token
  double nll_stderr = 0;     // standard error of mean_nll over the scored tokens
  double perplexity = 0;     // exp(mean_nll)
  double seconds = 0;
  double tokens_per_s = 0;   // tokens run through the model per second
};

// Throws r1::Error when the text holds fewer than two tokens or a window exceeds the model's
// max_position_embeddings. `progress` gets the fraction of windows done.
PerplexityResult EvaluatePerplexity(const Model& model, std::span<const int32_t> tokens,
                                    const PerplexityOptions& options,
                                    const std::function<void(double)>& progress = {});

}  // namespace r1
