#include "r1/infer/generate.h"

#include <algorithm>
#include <chrono>

#include "r1/core/error.h"

namespace r1 {

std::vector<GenerationResult> Generate(const Model& model,
                                       const std::vector<std::vector<int32_t>>& prompts,
                                       const GenerateOptions& opts,
                                       const std::function<void(int, int32_t)>& on_token,
                                       GenerationStats* stats) {
  using Clock = std::chrono::steady_clock;
  if (opts.max_new_tokens < 0) throw Error("generate: the number of new tokens must be >= 0");
  const int64_t V = model.config().vocab_size;
  std::vector<int32_t> stop = opts.stop_ids;
  if (stop.empty() && !opts.ignore_eos)
    for (int64_t id : model.config().eos_token_ids) stop.push_back(static_cast<int32_t>(id));

  const size_t B = prompts.size();
  std::vector<GenerationResult> results(B);
  if (B == 0) return results;
  KVCache cache = model.NewCache();
  std::vector<int> slots(B);
  std::vector<Sampler> samplers;
  std::vector<std::vector<int32_t>> history(B);
  for (size_t i = 0; i < B; ++i) {
    if (prompts[i].empty()) throw Error("generate: prompt " + std::to_string(i) + " is empty");
    slots[i] = cache.AddSequence();
    SamplingParams p = opts.sampling;
    p.seed = opts.sampling.seed + i;
    samplers.emplace_back(p);
    history[i] = prompts[i];
  }

  GenerationStats st;
  std::vector<bool> done(B, opts.max_new_tokens == 0);
  for (size_t i = 0; i < B; ++i)
    if (done[i]) results[i].finish_reason = "length";
  std::vector<size_t> active;  // sequences fed in the current step, in chunk order
  std::vector<SeqChunk> chunks;
  std::vector<int32_t> last(B);
  StepOutput out;
  bool first = true;
  while (true) {
    if (opts.cancel && opts.cancel->load()) {
      for (size_t i = 0; i < B; ++i) {
        if (!done[i]) {
          done[i] = true;
          results[i].finish_reason = "cancelled";
        }
      }
    }
    chunks.clear();
    active.clear();
    for (size_t i = 0; i < B; ++i) {
      if (done[i]) continue;
      active.push_back(i);
      if (first) {
        chunks.push_back({slots[i], prompts[i]});
        st.prompt_tokens += static_cast<int64_t>(prompts[i].size());
      } else {
        chunks.push_back({slots[i], std::span<const int32_t>(&last[i], 1)});
      }
    }
    if (chunks.empty()) break;
    const auto t0 = Clock::now();
    model.Step(cache, chunks, {}, out);
    for (size_t r = 0; r < active.size(); ++r) {
      const size_t i = active[r];
      const int32_t tok = samplers[i].Sample(out.logits.data() + r * V, static_cast<int>(V),
                                             history[i]);
      history[i].push_back(tok);
      results[i].tokens.push_back(tok);
      last[i] = tok;
      ++st.generated_tokens;
      if (on_token) on_token(static_cast<int>(i), tok);
      if (std::find(stop.begin(), stop.end(), tok) != stop.end()) {
        done[i] = true;
        results[i].finish_reason = "stop";
      } else if (static_cast<int>(results[i].tokens.size()) >= opts.max_new_tokens) {
        done[i] = true;
        results[i].finish_reason = "length";
      }
    }
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    (first ? st.prefill_seconds : st.decode_seconds) += secs;
    first = false;
  }
  if (stats) *stats = st;
  return results;
}

}  // namespace r1
