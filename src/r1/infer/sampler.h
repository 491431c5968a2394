// Turns one row of logits into the next token: repetition penalty, then greedy or
// temperature / top-k / top-p / min-p sampling, in the order llama.cpp and HF transformers use.
// The random stream is our own (xoshiro256**), so a seed gives the same tokens on every platform
// and standard library.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace r1 {

struct SamplingParams {
  float temperature = 0.0f;  // 0 = greedy (argmax, lowest index on ties)
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off; keep the smallest set with cumulative probability >= top_p
  float min_p = 0.0f;        // 0 = off; keep tokens with p >= min_p * p_max
  // 1 = off. CTRL-style as in HF/llama.cpp: each distinct token already in the history has its
  // logit divided by the penalty when positive and multiplied by it when negative.
  float repetition_penalty = 1.0f;
  int repetition_window = 0;  // 0 = whole history, else only the last N tokens
  uint64_t seed = 0;

  // Throws r1::Error naming the bad field.
  void Validate() const;
};

class Sampler {
 public:
  // Validates the parameters (throws r1::Error).
  explicit Sampler(SamplingParams p);

  // logits: one row of `vocab` floats, not modified. history: this sequence's tokens so far
  // (prompt and generated), each in [0, vocab). NaN logits count as -inf and +inf as the largest
  // float; if no logit is above -inf the result is token 0. Scratch space is reused, so calls
  // after the first with the same vocab do not allocate. Throws r1::Error on vocab <= 0, or on a
  // history token out of range when the repetition penalty is on.
  int32_t Sample(const float* logits, int vocab, std::span<const int32_t> history);

  const SamplingParams& params() const { return params_; }

 private:
  struct Candidate {
    float value;  // logit, later unnormalized probability
    int32_t token;
  };

  // Larger value first, lower token first on ties: a total order, so which tokens are kept and
  // in what order never depends on the standard library's sort.
  static bool Greater(const Candidate& a, const Candidate& b);

  void ApplyRepetitionPenalty(std::span<const int32_t> history, int vocab);
  // The paths after the greedy check; `max` is the largest penalized logit, u the uniform draw.
  int32_t SampleTopK(int vocab, float max, double u);
  int32_t SampleTopP(int vocab, double u);  // No top-k; probs_ holds the softmax numerators.
  // Applies min-p to cands_ (sorted by Greater, values are probabilities) and draws with u.
  int32_t DrawFromSorted(double u);
  // A uniform double in [0, 1) from the top 53 bits of the next xoshiro256** output.
  double NextUniform();

  SamplingParams params_;
  uint64_t rng_[4];
  // Scratch, sized on first use and reused.
  std::vector<float> work_;          // the logits, sanitized and penalized
  std::vector<uint8_t> seen_;        // tokens already penalized in this call
  std::vector<float> probs_;         // softmax numerators (of all tokens, or of the top k)
  std::vector<double> block_sums_;   // sums of probs_ per block, for the draw
  std::vector<Candidate> cands_;
};

}  // namespace r1
