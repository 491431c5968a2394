#include "r1/model/routing.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "r1/kernels/ops.h"

namespace r1 {

void RouterScores(const Config& cfg, float* x, int64_t E) {
  if (cfg.scoring_func == ScoringFunc::kSigmoid) {
    for (int64_t e = 0; e < E; ++e) x[e] = 1.0f / (1.0f + std::exp(-x[e]));
  } else {
    Softmax(x, E);
  }
}

void RouteToken(const Config& cfg, const float* sc, const float* bias, int64_t* experts,
                float* weights, RoutingScratch& s) {
  const int64_t E = cfg.n_routed_experts, k = cfg.num_experts_per_tok;
  const bool grouped = cfg.n_group > 1 && cfg.topk_method != "greedy";
  const int64_t G = cfg.n_group, per_group = E / std::max<int64_t>(1, G);
  const float neg_inf = -std::numeric_limits<float>::infinity();
  s.sel.resize(E);
  s.idx.resize(E);
  for (int64_t e = 0; e < E; ++e) s.sel[e] = bias ? sc[e] + bias[e] : sc[e];
  if (grouped) {
    s.gscore.resize(G);
    s.gidx.resize(G);
    for (int64_t g = 0; g < G; ++g) {
      const float* c = s.sel.data() + g * per_group;
      if (bias) {
        float a = neg_inf, b = neg_inf;  // the two largest
        for (int64_t j = 0; j < per_group; ++j) {
          if (c[j] > a) {
            b = a;
            a = c[j];
          } else if (c[j] > b) {
            b = c[j];
          }
        }
        s.gscore[g] = per_group > 1 ? a + b : a;
      } else {
        s.gscore[g] = *std::max_element(c, c + per_group);
      }
    }
    std::iota(s.gidx.begin(), s.gidx.end(), 0);
    std::stable_sort(s.gidx.begin(), s.gidx.end(),
                     [&](int64_t a, int64_t b) { return s.gscore[a] > s.gscore[b]; });
    for (int64_t r = cfg.topk_group; r < G; ++r)
      std::fill(s.sel.begin() + s.gidx[r] * per_group, s.sel.begin() + (s.gidx[r] + 1) * per_group,
                neg_inf);
  }
  std::iota(s.idx.begin(), s.idx.end(), 0);
  std::partial_sort(s.idx.begin(), s.idx.begin() + k, s.idx.end(), [&](int64_t a, int64_t b) {
    return s.sel[a] > s.sel[b] || (s.sel[a] == s.sel[b] && a < b);
  });
  const bool sigmoid = cfg.scoring_func == ScoringFunc::kSigmoid;
  float total = 0;
  for (int64_t j = 0; j < k; ++j) total += sc[s.idx[j]];
  for (int64_t j = 0; j < k; ++j) {
    float w = sc[s.idx[j]];
    if (sigmoid) w /= total;
    experts[j] = s.idx[j];
    weights[j] = w * static_cast<float>(cfg.routed_scaling_factor);
  }
}

}  // namespace r1
