#include "r1/model/cost.h"

#include <algorithm>

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

// Calls fn on every matrix of the main model, the embedding first and a tied head not again.
template <typename Fn>
void ForEachMatrix(const Weights& w, Fn fn) {
  auto mlp = [&](const MlpWeights& m) {
    fn(m.gate);
    fn(m.up);
    fn(m.down);
  };
  fn(w.embed);
  if (w.lm_head.data != w.embed.data) fn(w.lm_head);
  for (const LayerWeights& L : w.layers) {
    for (const Matrix* m :
         {&L.q_a, &L.q_b, &L.q_proj, &L.kv_a, &L.kv_b, &L.o_proj, &L.q, &L.k, &L.v, &L.router})
      fn(*m);
    mlp(L.mlp);
    mlp(L.shared);
    for (const auto& e : L.experts) mlp(e);
  }
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

std::string MatrixFormatName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kF16: return "f16";
    case DType::kBF16: return "bf16";
    case DType::kF8E4M3: return "fp8";
    case DType::kI8: return "q8";
    case DType::kU8: return "q4";
    default: return std::string(DTypeName(dtype));
  }
}

std::map<std::string, double> MatrixBytesByFormat(const Weights& w) {
  std::map<std::string, double> bytes;
  ForEachMatrix(w, [&](const Matrix& m) {
    if (!m.empty()) bytes[MatrixFormatName(m.dtype)] += static_cast<double>(m.bytes());
  });
  return bytes;
}

std::string WeightFormat(const std::map<std::string, double>& bytes_by_format) {
  if (bytes_by_format.size() == 1) return bytes_by_format.begin()->first;
  return bytes_by_format.empty() ? "none" : "mixed";
}

int64_t StepScratchBytes(const Config& cfg, int64_t tokens, int64_t logit_rows, int64_t context,
                         int threads) {
  const int64_t n = tokens, d = cfg.hidden_size, H = cfg.num_attention_heads;
  int64_t floats = 4 * n * d;  // residual stream, normed input, attention and FFN outputs
  int64_t per_thread = context;  // attention scores of one query
  if (cfg.is_deepseek()) {
    const int64_t qk = cfg.qk_head_dim(), dc = cfg.kv_lora_rank, dr = cfg.qk_rope_head_dim;
    floats += n * H * qk + n * cfg.q_lora_rank + n * (dc + dr) + n * H * cfg.v_head_dim;
    per_thread += 2 * dc;  // the absorbed query and output of one head
  } else {
    const int64_t Dh = cfg.head_dim;
    floats += n * H * Dh + n * 2 * cfg.num_key_value_heads * Dh + n * H * Dh;
  }
  // Only one layer's FFN buffers live at a time, so the largest of dense and MoE layers counts.
  int64_t ffn = 0;
  for (int l = 0; l < cfg.num_hidden_layers; ++l) {
    if (!cfg.is_moe_layer(l)) {
      ffn = std::max(ffn, 2 * n * cfg.intermediate_size);  // gate and up
      continue;
    }
    const int64_t f = cfg.moe_intermediate_size;
    const int64_t shared_f = f * std::max(1, cfg.n_shared_experts);
    // Router scores, the gathered inputs and outputs of an expert (at most all n tokens), the
    // shared experts' output, and gate/up of the widest MLP among them.
    ffn = std::max(ffn, n * cfg.n_routed_experts + 3 * n * d + 2 * n * std::max(f, shared_f));
  }
  floats += ffn;
  floats += 2 * logit_rows * d + logit_rows * cfg.vocab_size;  // final hidden, gathered, logits
  floats += static_cast<int64_t>(std::max(1, threads)) * per_thread;
  return 4 * floats;
}

}  // namespace r1
