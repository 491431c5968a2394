#include "r1/train/train_layer.h"

#include <algorithm>

#include "r1/core/error.h"
#include "r1/kernels/gemm.h"
#include "r1/train/grad_ops.h"

namespace r1 {
namespace {

PLinear Bind(ParamSet& ps, const std::string& name, bool with_bias = false) {
  PLinear l;
  l.w = &ps.Get(name + ".weight");
  if (l.w->shape.size() != 2) throw Error("trainer: '" + name + ".weight' is not a matrix");
  l.out = l.w->shape[0];
  l.in = l.w->shape[1];
  if (with_bias) l.b = &ps.Get(name + ".bias");
  return l;
}

PMlp BindMlp(ParamSet& ps, const std::string& p) {
  return {Bind(ps, p + "gate_proj"), Bind(ps, p + "up_proj"), Bind(ps, p + "down_proj")};
}

}  // namespace

TrainModel::Layer::Layer(const Config& c, ParamSet& ps, int i) : cfg(c), index(i) {
  const std::string p = "model.layers." + std::to_string(i) + ".";
  const std::string a = p + "self_attn.";
  input_norm = &ps.Get(p + "input_layernorm.weight");
  post_norm = &ps.Get(p + "post_attention_layernorm.weight");
  if (c.is_deepseek()) {
    if (c.q_lora_rank > 0) {
      q_a = Bind(ps, a + "q_a_proj", c.attention_bias);
      q_a_norm = &ps.Get(a + "q_a_layernorm.weight");
      q_b = Bind(ps, a + "q_b_proj");
    } else {
      q_proj = Bind(ps, a + "q_proj");
    }
    kv_a = Bind(ps, a + "kv_a_proj_with_mqa", c.attention_bias);
    kv_a_norm = &ps.Get(a + "kv_a_layernorm.weight");
    kv_b = Bind(ps, a + "kv_b_proj");
    o_proj = Bind(ps, a + "o_proj", c.attention_bias);
  } else {
    const bool qkv_bias = c.arch == Arch::kQwen2 || c.attention_bias;
    q = Bind(ps, a + "q_proj", qkv_bias);
    k = Bind(ps, a + "k_proj", qkv_bias);
    v = Bind(ps, a + "v_proj", qkv_bias);
    o_proj = Bind(ps, a + "o_proj", c.arch == Arch::kLlama && c.attention_bias);
  }
  moe = c.is_moe_layer(i);
  if (!moe) {
    mlp = BindMlp(ps, p + "mlp.");
    return;
  }
  router = &ps.Get(p + "mlp.gate.weight");
  router_bias = ps.Find(p + "mlp.gate.e_score_correction_bias");
  for (int e = 0; e < c.n_routed_experts; ++e)
    experts.push_back(BindMlp(ps, p + "mlp.experts." + std::to_string(e) + "."));
  if (c.n_shared_experts > 0) shared = BindMlp(ps, p + "mlp.shared_experts.");
}

double TrainModel::Layer::Forward(float* x, const SeqShape& s, const float* rope_freq,
                                  float attn_scale, double balance_alpha, bool reuse_routing,
                                  std::vector<int64_t>* load, ThreadPool& pool) {
  const int64_t n = s.n(), d = cfg.hidden_size;
  x_in_.assign(x, x + n * d);
  h1_.resize(n * d);
  rstd1_.resize(n);
  RmsNormForward(x, d, input_norm->value.data(), n, d, cfg.rms_norm_eps, h1_.data(),
                 rstd1_.data(), pool);
  std::vector<float> out(n * d);
  AttentionForward(h1_.data(), s, rope_freq, attn_scale, out.data(), pool);
  for (int64_t i = 0; i < n * d; ++i) x[i] += out[i];
  x_mid_.assign(x, x + n * d);
  h2_.resize(n * d);
  rstd2_.resize(n);
  RmsNormForward(x, d, post_norm->value.data(), n, d, cfg.rms_norm_eps, h2_.data(),
                 rstd2_.data(), pool);
  double balance = 0;
  if (moe) {
    balance = MoeForward(h2_.data(), s, balance_alpha, reuse_routing, load, out.data(), pool);
  } else {
    MlpForward(mlp, h2_.data(), n, dense_, out.data(), pool);
  }
  for (int64_t i = 0; i < n * d; ++i) x[i] += out[i];
  return balance;
}

void TrainModel::Layer::Backward(float* dx, const SeqShape& s, const float* rope_freq,
                                 float attn_scale, double balance_coef, ThreadPool& pool) {
  const int64_t n = s.n(), d = cfg.hidden_size;
  std::vector<float> dh(n * d, 0.0f);
  if (moe) {
    MoeBackward(h2_.data(), dx, s, balance_coef, dh.data(), pool);
  } else {
    MlpBackward(mlp, h2_.data(), dense_, dx, n, dh.data(), pool);
  }
  RmsNormBackward(x_mid_.data(), d, post_norm->value.data(), rstd2_.data(), dh.data(), n, d, dx,
                  post_norm->grad.data(), pool);
  std::fill(dh.begin(), dh.end(), 0.0f);
  AttentionBackward(h1_.data(), dx, s, rope_freq, attn_scale, dh.data(), pool);
  RmsNormBackward(x_in_.data(), d, input_norm->value.data(), rstd1_.data(), dh.data(), n, d, dx,
                  input_norm->grad.data(), pool);
}

int64_t TrainModel::Layer::SavedBytes() const {
  int64_t floats = 0;
  for (const auto* v : {&x_in_, &h1_, &rstd1_, &x_mid_, &h2_, &rstd2_, &qa_, &qa_n_, &qa_rstd_,
                        &q_, &kva_, &ckv_, &ckv_rstd_, &kr_, &kv_, &probs_, &o_, &scores_,
                        &weights_, &balance_f_, &score_sum_})
    floats += static_cast<int64_t>(v->size());
  for (const MlpActs* a : {&dense_, &shared_acts_})
    floats += static_cast<int64_t>(a->g.size() + a->u.size() + a->a.size());
  for (const auto& a : expert_acts_)
    floats += static_cast<int64_t>(a.g.size() + a.u.size() + a.a.size());
  for (const auto& v : expert_x_) floats += static_cast<int64_t>(v.size());
  for (const auto& v : expert_y_) floats += static_cast<int64_t>(v.size());
  return floats * 4 + static_cast<int64_t>(chosen_.size()) * 8;
}

void TrainModel::Layer::AttentionForward(const float* h, const SeqShape& s,
                                         const float* rope_freq, float scale, float* out,
                                         ThreadPool& pool) {
  if (cfg.is_deepseek()) {
    MlaForward(h, s, rope_freq, scale, out, pool);
  } else {
    GqaForward(h, s, rope_freq, scale, out, pool);
  }
}

void TrainModel::Layer::AttentionBackward(const float* h, const float* dout, const SeqShape& s,
                                          const float* rope_freq, float scale, float* dh,
                                          ThreadPool& pool) {
  if (cfg.is_deepseek()) {
    MlaBackward(h, dout, s, rope_freq, scale, dh, pool);
  } else {
    GqaBackward(h, dout, s, rope_freq, scale, dh, pool);
  }
}

void LinearForward(const PLinear& l, const float* x, int64_t n, float* y, ThreadPool& pool) {
  GemmNT(n, l.out, l.in, x, l.w->value.data(), y, 0.0f, pool);
  if (l.b) {
    const float* b = l.b->value.data();
    for (int64_t r = 0; r < n; ++r)
      for (int64_t j = 0; j < l.out; ++j) y[r * l.out + j] += b[j];
  }
}

void LinearBackward(const PLinear& l, const float* x, const float* dy, int64_t n, float* dx,
                    ThreadPool& pool) {
  GemmTN(l.out, l.in, n, dy, x, l.w->grad.data(), 1.0f, pool);
  if (l.b) BiasBackward(dy, n, l.out, l.b->grad.data());
  if (dx) GemmNN(n, l.in, l.out, dy, l.w->value.data(), dx, 1.0f, pool);
}

void MlpForward(const PMlp& m, const float* x, int64_t n, MlpActs& a, float* y,
                ThreadPool& pool) {
  const int64_t f = m.gate.out;
  a.g.resize(n * f);
  a.u.resize(n * f);
  a.a.resize(n * f);
  LinearForward(m.gate, x, n, a.g.data(), pool);
  LinearForward(m.up, x, n, a.u.data(), pool);
  SiluMulForward(a.g.data(), a.u.data(), n * f, a.a.data(), pool);
  LinearForward(m.down, a.a.data(), n, y, pool);
}

void MlpBackward(const PMlp& m, const float* x, const MlpActs& a, const float* dy, int64_t n,
                 float* dx, ThreadPool& pool) {
  const int64_t f = m.gate.out;
  std::vector<float> da(n * f, 0.0f), dg(n * f), du(n * f);
  LinearBackward(m.down, a.a.data(), dy, n, da.data(), pool);
  SiluMulBackward(a.g.data(), a.u.data(), da.data(), n * f, dg.data(), du.data(), pool);
  LinearBackward(m.gate, x, dg.data(), n, dx, pool);
  LinearBackward(m.up, x, du.data(), n, dx, pool);
}

}  // namespace r1
