// DeepSeekMoE routing (model-spec §3.7): gate scores to the chosen experts and their weights.
// Shared by the inference step and the trainer so both route every token identically.
#pragma once

#include <cstdint>
#include <vector>

#include "r1/model/config.h"

namespace r1 {

// Turns gate logits into scores in place: sigmoid or softmax over the routed experts.
void RouterScores(const Config& cfg, float* logits_to_scores, int64_t n_experts);

// Chooses num_experts_per_tok experts for one token from its scores (plus the selection-only
// `bias`, may be null) and writes their ids to `experts` and their combine weights (scores
// without the bias, renormalized for sigmoid scoring, times routed_scaling_factor) to `weights`.
struct RoutingScratch {
  std::vector<float> sel, gscore;
  std::vector<int64_t> idx, gidx;
};
void RouteToken(const Config& cfg, const float* scores, const float* bias, int64_t* experts,
                float* weights, RoutingScratch& scratch);

}  // namespace r1
