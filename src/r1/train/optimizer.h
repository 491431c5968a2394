// AdamW with decoupled weight decay, and global-norm gradient clipping, following PyTorch's
// torch.optim.AdamW (single-tensor path, no amsgrad) and torch.nn.utils.clip_grad_norm_ so that
// runs can be compared step for step with a PyTorch reference.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "r1/train/params.h"

namespace r1 {

struct AdamWOptions {
  double lr = 1e-3;  // informational: Step() takes the learning rate of each step from a schedule
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // applied only to parameters with Param::decay
};

class AdamW {
 public:
  // First and second moments of one parameter, the same size as its value.
  struct Moments {
    std::vector<float> m, v;
  };

  // No state yet: for LoadCheckpoint to fill in, or to assign a constructed optimizer to.
  AdamW() = default;
  explicit AdamW(AdamWOptions opts);
  // Zero moments for every trainable parameter of `params`.
  AdamW(const ParamSet& params, AdamWOptions opts);

  // One update of every trainable parameter from its current grad. Per element, in float32:
  //   p *= 1 - lr*wd                      (decay parameters only)
  //   m  = lerp(m, g, 1 - beta1)          (= beta1*m + (1-beta1)*g, as torch's lerp_ rounds it)
  //   v  = beta2*v + (1-beta2)*g*g
  //   p += -(lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
  // with the bias corrections in double, as PyTorch computes them in Python floats. Throws
  // r1::Error when a trainable parameter has no state or a different size than its state.
  void Step(ParamSet& params, double lr);

  // Number of steps taken (PyTorch's state["step"]); the bias corrections use it.
  int64_t step() const { return step_; }
  void set_step(int64_t step) { step_ = step; }
  const AdamWOptions& options() const { return opts_; }
  void set_options(const AdamWOptions& opts) { opts_ = opts; }

  // State by parameter name, for checkpoints. Parameters that are not trainable have none.
  const std::map<std::string, Moments>& state() const { return state_; }
  std::map<std::string, Moments>& state() { return state_; }
  const Moments* Find(const std::string& name) const;

 private:
  AdamWOptions opts_;
  int64_t step_ = 0;
  std::map<std::string, Moments> state_;
};

// L2 norm of the gradients of all trainable parameters, summed in double over fixed blocks so
// the result is the same for any thread count.
double GlobalGradNorm(const ParamSet& params);

// Multiplies every trainable gradient by `scale`.
void ScaleGrads(ParamSet& params, float scale);

// torch.nn.utils.clip_grad_norm_: when max_norm > 0 and the coefficient
// max_norm / (norm + 1e-6) is below 1, scales the gradients by it. Returns the norm before
// clipping. A non-finite norm leaves the gradients as they are (PyTorch would turn them all into
// NaN): the caller should skip that step.
double ClipGradNorm(ParamSet& params, double max_norm);

}  // namespace r1
