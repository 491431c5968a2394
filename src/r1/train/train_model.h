// The training pass: the forward of model/ (same routing, same RoPE tables, same ops), run over
// whole sequences with its activations kept, then the backward into the ParamSet's gradients.
// All four architectures; DeepSeek attention in the naive MLA form (model-spec §3.6.2), MoE with
// gradients through the routing weights (the selection itself and the correction bias get none),
// the optional sequence-wise balance loss, and multi-token prediction.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "r1/core/thread_pool.h"
#include "r1/model/config.h"
#include "r1/train/params.h"

namespace r1 {

// B sequences of T+1 tokens: inputs tokens[b][0..T-1], targets tokens[b][1..T].
// mask[b][i] (may be null: all set) says whether target tokens[b][i+1] is counted.
struct StepInput {
  int64_t B = 0, T = 0;
  const int32_t* tokens = nullptr;
  const uint8_t* mask = nullptr;
};

struct LossOptions {
  double balance_alpha = 0;  // sequence-wise balance loss weight (r1-recipe §2.4)
  double mtp_weight = 0;     // lambda; 0 skips the MTP modules
  double grad_scale = 1;     // multiplies every gradient (1 / gradient-accumulation steps)
  // Gradient checks only: keep the previous step's expert choices (and balance-loss counts)
  // instead of routing again, so a finite difference never crosses a routing switch.
  bool reuse_routing = false;
};

struct StepStats {
  double loss = 0;          // next-token cross-entropy, mean over counted targets
  double mtp_loss = 0;      // mean over MTP modules of their cross-entropy (unweighted)
  double balance_loss = 0;  // alpha-weighted, summed over MoE layers
  double total_loss = 0;    // loss + mtp_weight * mtp_loss + balance_loss: the one differentiated
  int64_t targets = 0;      // counted next-token targets
  // Per MoE layer (main layers in order, then MTP blocks): (token, slot) routings per expert.
  std::vector<std::vector<int64_t>> expert_load;
};

class TrainModel {
 public:
  // Binds the parameters by their Hugging Face names; throws r1::Error for a missing one.
  TrainModel(const Config& cfg, ParamSet& params, ThreadPool* pool = nullptr);
  ~TrainModel();

  // Runs the forward pass; with `backward`, adds d total_loss / d param (times grad_scale) to
  // every parameter's gradient. Throws r1::Error for token ids outside the vocabulary or a
  // sequence longer than the model's position range.
  StepStats Step(const StepInput& in, const LossOptions& opts, bool backward);

  // Logits of every input position [B*T, vocab] from the last Step, when enabled before it
  // (tests compare them with the inference engine).
  void set_keep_logits(bool keep) { keep_logits_ = keep; }
  const std::vector<float>& logits() const { return logits_; }

  // The routing-bias parameter of each MoE layer, in expert_load order (null where the layer
  // has no bias).
  std::vector<Param*> RouterBiases() const;

  const Config& config() const { return cfg_; }
  // Bytes of activations the last Step kept for its backward (all layers, logits, MTP).
  int64_t ActivationBytes() const;

  struct Layer;
  struct Acts;

 private:
  Config cfg_;
  ParamSet& params_;
  ThreadPool* pool_;
  std::vector<std::unique_ptr<Layer>> layers_;  // main layers, then one block per MTP module
  struct Mtp;
  std::vector<std::unique_ptr<Mtp>> mtp_;
  Param *embed_, *head_, *final_norm_;
  std::vector<float> rope_freq_;
  float attn_scale_;
  bool keep_logits_ = false;
  std::vector<float> logits_;
  std::unique_ptr<Acts> acts_;
};

// The auxiliary-loss-free balancing rule, run after each optimizer step for every MoE layer with
// a routing bias: bias_i += gamma * sign(mean_j load_j - load_i).
void UpdateRouterBiases(const std::vector<Param*>& biases,
                        const std::vector<std::vector<int64_t>>& loads, double gamma);

}  // namespace r1
