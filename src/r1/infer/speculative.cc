#include "r1/infer/speculative.h"

#include <algorithm>
#include <chrono>
#include <sstream>

#include "r1/core/error.h"

namespace r1 {

std::string SpeculativeUnsupportedReason(const Model& model, const SamplingParams& sampling) {
  if (model.num_mtp_modules() == 0) {
    const std::string where = model.dir().empty() ? "the model" : model.dir();
    return where + " has no multi-token-prediction (MTP) module weights (model.layers." +
           std::to_string(model.config().num_hidden_layers) +
           ".eh_proj.weight and the rest), which draft the tokens";
  }
  if (sampling.temperature != 0.0f) {
    std::ostringstream s;
    s << "it is greedy only (temperature 0), got temperature " << sampling.temperature;
    return s.str();
  }
  return "";
}

namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The accepted tokens and the stop rules, exactly as Generate() applies them.
class Output {
 public:
  Output(const Model& model, const std::vector<int32_t>& prompt, const GenerateOptions& opts,
         const std::function<void(int32_t)>& on_token)
      : opts_(opts), on_token_(on_token), history_(prompt) {
    stop_ = opts.stop_ids;
    if (stop_.empty() && !opts.ignore_eos)
      for (int64_t id : model.config().eos_token_ids) stop_.push_back(static_cast<int32_t>(id));
  }

  // Appends one token; returns true when the generation is over.
  bool Emit(int32_t tok) {
    history_.push_back(tok);
    result_.tokens.push_back(tok);
    if (on_token_) on_token_(tok);
    if (std::find(stop_.begin(), stop_.end(), tok) != stop_.end()) {
      result_.finish_reason = "stop";
    } else if (static_cast<int>(result_.tokens.size()) >= opts_.max_new_tokens) {
      result_.finish_reason = "length";
    }
    return !result_.finish_reason.empty();
  }
  bool Cancelled() {
    if (!opts_.cancel || !opts_.cancel->load()) return false;
    result_.finish_reason = "cancelled";
    return true;
  }
  // Tokens still allowed before the length limit.
  int64_t Remaining() const {
    return opts_.max_new_tokens - static_cast<int64_t>(result_.tokens.size());
  }
  const std::vector<int32_t>& history() const { return history_; }
  GenerationResult& result() { return result_; }

 private:
  const GenerateOptions& opts_;
  const std::function<void(int32_t)>& on_token_;
  std::vector<int32_t> stop_;
  std::vector<int32_t> history_;  // prompt and accepted tokens, for the repetition penalty
  GenerationResult result_;
};

}  // namespace

GenerationResult GenerateSpeculative(const Model& model, const std::vector<int32_t>& prompt,
                                     const GenerateOptions& opts,
                                     const std::function<void(int32_t)>& on_token,
                                     SpeculativeStats* stats) {
  const auto start = Clock::now();
  const std::string why = SpeculativeUnsupportedReason(model, opts.sampling);
  if (!why.empty()) throw Error("speculative decoding: " + why);
  if (opts.max_new_tokens < 0) throw Error("generate: the number of new tokens must be >= 0");
  if (prompt.empty()) throw Error("generate: prompt 0 is empty");

  const int V = static_cast<int>(model.config().vocab_size);
  const int64_t d = model.config().hidden_size;
  // Greedy: no random stream, so one sampler serves the main model and the draft.
  Sampler sampler(opts.sampling);
  Output o(model, prompt, opts, on_token);
  SpeculativeStats st;
  if (opts.max_new_tokens == 0) {
    o.result().finish_reason = "length";
    st.wall_seconds = Since(start);
    if (stats) *stats = st;
    return o.result();
  }

  KVCache cache = model.NewCache();
  const int slot = cache.AddSequence();
  StepOutput out, draft_out;
  bool done = o.Cancelled();
  int32_t last = -1, draft = -1;
  // Drafts t_{p+2} from the module's entries at positions pos0.. (h_p and t_{p+1} each), unless
  // at most one token may still come: then there is nothing a draft could save.
  auto make_draft = [&](int64_t pos0, std::span<const float> hidden,
                        std::span<const int32_t> next) {
    draft = -1;
    if (o.Remaining() < 2) return;
    model.MtpStep(cache, slot, 0, pos0, hidden, next, {}, draft_out);
    draft = sampler.Sample(draft_out.logits.data(), V, o.history());
  };

  if (!done) {
    const auto t0 = Clock::now();
    SeqChunk c{slot, prompt};
    model.Step(cache, {&c, 1}, {.all_final_hidden = true}, out);
    st.generation.prompt_tokens = static_cast<int64_t>(prompt.size());
    last = sampler.Sample(out.logits.data(), V, o.history());
    done = o.Emit(last);
    if (!done) {
      // The module's entry at position i pairs h_i with t_{i+1}: the prompt shifted by one, then
      // the token just chosen.
      std::vector<int32_t> next(prompt.begin() + 1, prompt.end());
      next.push_back(last);
      make_draft(0, out.final_hidden, next);
    }
    st.generation.prefill_seconds = Since(t0);
  }

  const auto t_decode = Clock::now();
  std::vector<int32_t> fed;
  while (!done && !(done = o.Cancelled())) {
    const int64_t pos = cache.Length(slot);  // where `last` goes
    fed.assign({last});
    if (draft >= 0) fed.push_back(draft);
    SeqChunk c{slot, fed};
    model.Step(cache, {&c, 1}, {.all_logits = true}, out);
    ++st.main_steps;
    const int32_t chosen = sampler.Sample(out.logits.data(), V, o.history());
    if (draft < 0) {
      done = o.Emit(chosen);
      last = chosen;
      continue;
    }
    ++st.draft_tokens;
    if (chosen != draft) {
      cache.Truncate(slot, pos + 1);
      if ((done = o.Emit(chosen))) break;
      last = chosen;
      make_draft(pos, std::span<const float>(out.final_hidden.data(), d), {&last, 1});
      continue;
    }
    ++st.accepted_tokens;
    if ((done = o.Emit(chosen))) break;
    // The step also computed the main model's choice after the accepted draft.
    const int32_t bonus = sampler.Sample(out.logits.data() + V, V, o.history());
    if ((done = o.Emit(bonus))) break;
    last = bonus;
    const int32_t next[2] = {chosen, bonus};
    make_draft(pos, out.final_hidden, next);
  }
  st.generation.decode_seconds = Since(t_decode);
  st.generation.generated_tokens = static_cast<int64_t>(o.result().tokens.size());
  st.wall_seconds = Since(start);
  if (stats) *stats = st;
  return o.result();
}

}  // namespace r1
