#include "r1/infer/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "r1/core/error.h"

namespace r1 {

namespace {

// -log p(target) from one row of logits, with the log-sum-exp in double so a large vocabulary
// does not lose the small probabilities.
double Nll(const float* logits, int64_t vocab, int32_t target) {
  const float m = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t v = 0; v < vocab; ++v) sum += std::exp(static_cast<double>(logits[v]) - m);
  return std::log(sum) + m - logits[target];
}

}  // namespace

PerplexityResult EvaluatePerplexity(const Model& model, std::span<const int32_t> tokens,
                                    const PerplexityOptions& options,
                                    const std::function<void(double)>& progress) {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n < 2) throw Error("perplexity: the text has " + std::to_string(n) + " token(s), need 2 or more");
  if (options.context < 2) throw Error("perplexity: the context must be at least 2 tokens");
  // A text shorter than one window is scored as a single shorter window.
  const int64_t context = std::min(options.context, n);
  const int64_t max_pos = model.config().max_position_embeddings;
  if (max_pos > 0 && context > max_pos)
    throw Error("perplexity: a context of " + std::to_string(context) +
                " tokens exceeds the model's max_position_embeddings (" + std::to_string(max_pos) +
                ")");
  int64_t windows = n / context;
  if (options.max_windows > 0) windows = std::min(windows, options.max_windows);

  const int64_t vocab = model.config().vocab_size;
  // Several windows per step keep the weights' reuse high, as long as their logits stay small.
  const int64_t batch = std::clamp<int64_t>((256ll << 20) / (4 * context * vocab), 1, 8);

  PerplexityResult r;
  double sum = 0, sum_sq = 0;
  const auto start = std::chrono::steady_clock::now();
  StepOutput out;
  for (int64_t w0 = 0; w0 < windows; w0 += batch) {
    const int64_t w1 = std::min(windows, w0 + batch);
    KVCache cache = model.NewCache();
    std::vector<SeqChunk> chunks;
    for (int64_t w = w0; w < w1; ++w)
      chunks.push_back({cache.AddSequence(), tokens.subspan(w * context, context)});
    model.Step(cache, chunks, {.all_logits = true}, out);
    for (int64_t w = w0; w < w1; ++w) {
      const float* rows = out.logits.data() + (w - w0) * context * vocab;
      for (int64_t i = 0; i + 1 < context; ++i) {
        const double nll = Nll(rows + i * vocab, vocab, tokens[w * context + i + 1]);
        sum += nll;
        sum_sq += nll * nll;
      }
    }
    if (progress) progress(static_cast<double>(w1) / windows);
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  r.windows = windows;
  r.tokens_scored = windows * (context - 1);
  const double count = static_cast<double>(r.tokens_scored);
  r.mean_nll = sum / count;
  const double var = std::max(0.0, sum_sq / count - r.mean_nll * r.mean_nll);
  r.nll_stderr = count > 1 ? std::sqrt(var / (count - 1)) : 0.0;
  r.perplexity = std::exp(r.mean_nll);
  r.tokens_per_s = r.seconds > 0 ? windows * context / r.seconds : 0;
  return r;
}

}  // namespace r1
