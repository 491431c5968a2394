#include "r1/model/cost.h"

namespace r1 {

namespace {
void AddMatrix(const Matrix& m, double fraction, TokenCost& c) {
  if (m.empty()) return;
  c.decode_weight_bytes += fraction * static_cast<double>(m.bytes());
  c.prefill_flops += fraction * 2.0 * static_cast<double>(m.rows) * static_cast<double>(m.cols);
}
void AddMlp(const MlpWeights& m, double fraction, TokenCost& c) {
  AddMatrix(m.gate, fraction, c);
  AddMatrix(m.up, fraction, c);
  AddMatrix(m.down, fraction, c);
}
}  // namespace

TokenCost ComputeTokenCost(const Config& cfg, const Weights& w) {
  TokenCost c;
  for (const LayerWeights& L : w.layers) {
    for (const Matrix* m : {&L.q_a, &L.q_b, &L.q_proj, &L.kv_a, &L.kv_b, &L.o_proj, &L.q, &L.k, &L.v})
      AddMatrix(*m, 1.0, c);
    AddMlp(L.mlp, 1.0, c);
    AddMatrix(L.router, 1.0, c);
    AddMlp(L.shared, 1.0, c);
    if (!L.experts.empty()) {
      const double frac = static_cast<double>(cfg.num_experts_per_tok) / L.experts.size();
      for (const auto& e : L.experts) AddMlp(e, frac, c);
    }
  }
  // The head is read by every decode step but not counted in prefill FLOPs.
  c.decode_weight_bytes += static_cast<double>(w.lm_head.bytes());
  return c;
}

}  // namespace r1
