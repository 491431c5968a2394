#include "r1/train/optimizer.h"

#include <algorithm>
#include <cmath>
#include <functional>

#include "r1/core/error.h"
#include "r1/core/thread_pool.h"

namespace r1 {
namespace {

// Work is cut into blocks of a fixed size, never by thread count, so every reduction adds the
// same partial sums in the same order however many threads run it.
constexpr int64_t kBlock = 1 << 15;

struct Block {
  size_t param;
  int64_t begin, end;
};

std::vector<Block> TrainableBlocks(const ParamSet& params) {
  std::vector<Block> blocks;
  const std::vector<Param>& ps = params.params();
  for (size_t i = 0; i < ps.size(); ++i) {
    if (!ps[i].trainable) continue;
    for (int64_t b = 0; b < ps[i].numel(); b += kBlock)
      blocks.push_back({i, b, std::min(ps[i].numel(), b + kBlock)});
  }
  return blocks;
}

void ForEachBlock(const std::vector<Block>& blocks, const std::function<void(const Block&)>& fn) {
  DefaultPool().ParallelFor(static_cast<int64_t>(blocks.size()), 1,
                            [&](int64_t begin, int64_t end, int) {
                              for (int64_t i = begin; i < end; ++i) fn(blocks[i]);
                            });
}

// Plain float32 operations in PyTorch's order. The library targets baseline x86-64, which has no
// FMA to fuse them into, so every machine computes the same bits. (The loop is memory-bound:
// about 2x the time of streaming its four arrays once.)
template <bool kSmallWeight>
void UpdateBlock(float* value, const float* grad, float* m, float* v, int64_t begin, int64_t end,
                 float decay, float lerp_weight, float beta2, float one_minus_beta2,
                 float bc2_sqrt, float eps, float neg_step_size) {
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i];
    m[i] = kSmallWeight ? m[i] + lerp_weight * (g - m[i])
                        : g - (g - m[i]) * (1.0f - lerp_weight);
    v[i] = v[i] * beta2 + one_minus_beta2 * g * g;
    const float denom = std::sqrt(v[i]) / bc2_sqrt + eps;
    value[i] = value[i] * decay + neg_step_size * m[i] / denom;
  }
}

// Eight fixed lanes: independent adds the compiler can vectorize, in an order that does not
// depend on anything but the block.
double SumOfSquares(const float* g, int64_t begin, int64_t end) {
  constexpr int kLanes = 8;
  double lane[kLanes] = {};
  int64_t i = begin;
  for (; i + kLanes <= end; i += kLanes) {
    for (int l = 0; l < kLanes; ++l) lane[l] += static_cast<double>(g[i + l]) * g[i + l];
  }
  for (; i < end; ++i) lane[0] += static_cast<double>(g[i]) * g[i];
  double sum = 0.0;
  for (double x : lane) sum += x;
  return sum;
}

}  // namespace

AdamW::AdamW(AdamWOptions opts) : opts_(opts) {}

AdamW::AdamW(const ParamSet& params, AdamWOptions opts) : opts_(opts) {
  for (const Param& p : params.params()) {
    if (!p.trainable) continue;
    Moments& s = state_[p.name];
    s.m.assign(p.value.size(), 0.0f);
    s.v.assign(p.value.size(), 0.0f);
  }
}

const AdamW::Moments* AdamW::Find(const std::string& name) const {
  auto it = state_.find(name);
  return it == state_.end() ? nullptr : &it->second;
}

void AdamW::Step(ParamSet& params, double lr) {
  std::vector<Param>& ps = params.params();
  std::vector<Moments*> moments(ps.size(), nullptr);
  for (size_t i = 0; i < ps.size(); ++i) {
    const Param& p = ps[i];
    if (!p.trainable) continue;
    auto it = state_.find(p.name);
    if (it == state_.end()) {
      throw Error("AdamW: no optimizer state for parameter '" + p.name +
                  "'; construct the optimizer from this ParamSet");
    }
    Moments& s = it->second;
    if (s.m.size() != p.value.size() || s.v.size() != p.value.size() ||
        p.grad.size() != p.value.size()) {
      throw Error("AdamW: parameter '" + p.name + "' has " + std::to_string(p.value.size()) +
                  " values, " + std::to_string(p.grad.size()) + " grads and optimizer state of " +
                  std::to_string(s.m.size()) + "/" + std::to_string(s.v.size()) + " elements");
    }
    moments[i] = &s;
  }

  ++step_;
  const double t = static_cast<double>(step_);
  // Scalars are rounded to float32 where PyTorch hands a Python float to a float32 tensor op.
  const double bias_correction1 = 1.0 - std::pow(opts_.beta1, t);
  const double bias_correction2 = 1.0 - std::pow(opts_.beta2, t);
  const float decay_factor = static_cast<float>(1.0 - lr * opts_.weight_decay);
  const float lerp_weight = static_cast<float>(1.0 - opts_.beta1);
  const float beta2 = static_cast<float>(opts_.beta2);
  const float one_minus_beta2 = static_cast<float>(1.0 - opts_.beta2);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bias_correction2));
  const float eps = static_cast<float>(opts_.eps);
  const float neg_step_size = static_cast<float>(-(lr / bias_correction1));
  const bool apply_decay = opts_.weight_decay != 0.0;

  ForEachBlock(TrainableBlocks(params), [&](const Block& b) {
    Param& p = ps[b.param];
    Moments& s = *moments[b.param];
    // x * 1 is exact, so undecayed parameters share the loop.
    const float decay = apply_decay && p.decay ? decay_factor : 1.0f;
    // torch's lerp: a small weight steps from the start, a large one back from the end.
    if (std::abs(lerp_weight) < 0.5f) {
      UpdateBlock<true>(p.value.data(), p.grad.data(), s.m.data(), s.v.data(), b.begin, b.end,
                        decay, lerp_weight, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size);
    } else {
      UpdateBlock<false>(p.value.data(), p.grad.data(), s.m.data(), s.v.data(), b.begin, b.end,
                         decay, lerp_weight, beta2, one_minus_beta2, bc2_sqrt, eps, neg_step_size);
    }
  });
}

double GlobalGradNorm(const ParamSet& params) {
  const std::vector<Block> blocks = TrainableBlocks(params);
  std::vector<double> partial(blocks.size(), 0.0);
  const std::vector<Param>& ps = params.params();
  DefaultPool().ParallelFor(static_cast<int64_t>(blocks.size()), 1,
                            [&](int64_t begin, int64_t end, int) {
                              for (int64_t k = begin; k < end; ++k) {
                                const Block& b = blocks[k];
                                partial[k] = SumOfSquares(ps[b.param].grad.data(),
                                                          b.begin, b.end);
                              }
                            });
  double total = 0.0;
  for (double s : partial) total += s;
  return std::sqrt(total);
}

void ScaleGrads(ParamSet& params, float scale) {
  std::vector<Param>& ps = params.params();
  ForEachBlock(TrainableBlocks(params), [&](const Block& b) {
    float* g = ps[b.param].grad.data();
    for (int64_t i = b.begin; i < b.end; ++i) g[i] *= scale;
  });
}

double ClipGradNorm(ParamSet& params, double max_norm) {
  const double norm = GlobalGradNorm(params);
  if (max_norm <= 0.0 || !std::isfinite(norm)) return norm;
  // As clip_grad_norm_: the coefficient is a float32 tensor computed from the float32 norm.
  const float coef = static_cast<float>(max_norm) / (static_cast<float>(norm) + 1e-6f);
  if (coef < 1.0f) ScaleGrads(params, coef);
  return norm;
}

}  // namespace r1
