// One decoder layer of the training pass (attention + dense MLP or MoE), its saved activations
// and its backward. Internal to the trainer; used for the main layers and the MTP blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "r1/core/thread_pool.h"
#include "r1/model/config.h"
#include "r1/train/params.h"
#include "r1/train/train_model.h"

namespace r1 {

struct PLinear {
  Param* w = nullptr;
  Param* b = nullptr;  // optional bias
  int64_t out = 0, in = 0;
  bool empty() const { return w == nullptr; }
};
struct PMlp {
  PLinear gate, up, down;
};

// Shapes of one training pass: B sequences of T positions (positions 0..T-1).
struct SeqShape {
  int64_t B = 0, T = 0;
  int64_t n() const { return B * T; }
};

struct MlpActs {
  std::vector<float> g, u, a;  // gate and up pre-activations, silu(g) * u
};

struct TrainModel::Layer {
  // Binds model.layers.<index>.* in `ps`.
  Layer(const Config& cfg, ParamSet& ps, int index);

  // x [n, d] is the residual stream entering the layer; on return it is the stream leaving it.
  // `routing_stats` (MoE only) gets the expert loads; balance_alpha > 0 adds the sequence-wise
  // balance loss, returned.
  double Forward(float* x, const SeqShape& s, const float* rope_freq, float attn_scale,
                 double balance_alpha, bool reuse_routing, std::vector<int64_t>* load,
                 ThreadPool& pool);
  // dx [n, d]: gradient of the loss w.r.t. the layer's output; on return w.r.t. its input.
  // balance_coef: the balance loss weight times the gradient scale.
  void Backward(float* dx, const SeqShape& s, const float* rope_freq, float attn_scale,
                double balance_coef, ThreadPool& pool);

  // Bytes of activations kept for the backward by the last Forward.
  int64_t SavedBytes() const;

  const Config& cfg;
  int index;
  bool moe = false;
  Param *input_norm = nullptr, *post_norm = nullptr;
  // MLA
  PLinear q_a, q_b, q_proj, kv_a, kv_b;
  Param *q_a_norm = nullptr, *kv_a_norm = nullptr;
  // GQA
  PLinear q, k, v;
  PLinear o_proj;
  // FFN
  PMlp mlp;
  Param* router = nullptr;
  Param* router_bias = nullptr;
  std::vector<PMlp> experts;
  PMlp shared;

 private:
  void AttentionForward(const float* h, const SeqShape& s, const float* rope_freq, float scale,
                        float* out, ThreadPool& pool);
  void AttentionBackward(const float* h, const float* dout, const SeqShape& s,
                         const float* rope_freq, float scale, float* dh, ThreadPool& pool);
  void MlaForward(const float* h, const SeqShape& s, const float* rope_freq, float scale,
                  float* out, ThreadPool& pool);
  void MlaBackward(const float* h, const float* dout, const SeqShape& s, const float* rope_freq,
                   float scale, float* dh, ThreadPool& pool);
  void GqaForward(const float* h, const SeqShape& s, const float* rope_freq, float scale,
                  float* out, ThreadPool& pool);
  void GqaBackward(const float* h, const float* dout, const SeqShape& s, const float* rope_freq,
                   float scale, float* dh, ThreadPool& pool);
  double MoeForward(const float* h, const SeqShape& s, double balance_alpha, bool reuse_routing,
                    std::vector<int64_t>* load, float* out, ThreadPool& pool);
  void MoeBackward(const float* h, const float* dout, const SeqShape& s, double balance_coef,
                   float* dh, ThreadPool& pool);
  void ForEachExpert(ThreadPool& pool, const std::function<void(int64_t)>& fn) const;

  // Saved activations (sized on first use, reused across steps).
  std::vector<float> x_in_, h1_, rstd1_, x_mid_, h2_, rstd2_;
  // Attention.
  std::vector<float> qa_, qa_n_, qa_rstd_, q_, kva_, ckv_, ckv_rstd_, kr_, kv_, probs_, o_;
  // FFN.
  MlpActs dense_, shared_acts_;
  std::vector<float> scores_;          // [n, E] router scores (after sigmoid/softmax)
  std::vector<int64_t> chosen_;        // [n, k]
  std::vector<float> weights_;         // [n, k]
  std::vector<std::vector<int64_t>> expert_rows_;  // per expert: token * k + slot
  std::vector<MlpActs> expert_acts_;
  std::vector<std::vector<float>> expert_x_, expert_y_;
  std::vector<float> balance_f_;  // balance loss: f_i per sequence [B, E]
  std::vector<float> score_sum_;  // balance loss: sum_j s_j per token [n]
};

// Linear layers over saved inputs: y = x W^T (+ b); backward adds dW, db and (if dx) dx += dy W.
void LinearForward(const PLinear& l, const float* x, int64_t n, float* y, ThreadPool& pool);
void LinearBackward(const PLinear& l, const float* x, const float* dy, int64_t n, float* dx,
                    ThreadPool& pool);
void MlpForward(const PMlp& m, const float* x, int64_t n, MlpActs& a, float* y, ThreadPool& pool);
void MlpBackward(const PMlp& m, const float* x, const MlpActs& a, const float* dy, int64_t n,
                 float* dx, ThreadPool& pool);

}  // namespace r1
