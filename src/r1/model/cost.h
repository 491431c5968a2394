// What one token costs a model: the weight bytes a decode step reads and the multiply-adds a
// prefill token performs. Used by benchmarks to turn speeds into ratios of the machine's limits.
#pragma once

#include <cstdint>

#include "r1/model/weights.h"

namespace r1 {

struct TokenCost {
  // Weight bytes read per decoded token: every matrix except the embedding (one row is
  // gathered), routed experts counted num_experts_per_tok / n_routed_experts of the time.
  double decode_weight_bytes = 0;
  // Float operations per prefill token in the matrix products (2 per multiply-add), without the
  // output head, which a prefill applies to the last token only. Attention over the context is
  // not included.
  double prefill_flops = 0;
};

TokenCost ComputeTokenCost(const Config& cfg, const Weights& w);

}  // namespace r1
