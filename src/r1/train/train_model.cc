#include "r1/train/train_model.h"

#include <algorithm>
#include <cmath>

#include "r1/core/error.h"
#include "r1/core/process_memory.h"
#include "r1/kernels/gemm.h"
#include "r1/model/rope.h"
#include "r1/train/grad_ops.h"
#include "r1/train/train_layer.h"

namespace r1 {

// One multi-token-prediction module (model-spec §5): h' = eh_proj [enorm(Emb(t_{i+k}));
// hnorm(h^{k-1}_i)], a decoder block, then the shared head behind its own norm.
struct TrainModel::Mtp {
  Param *enorm = nullptr, *hnorm = nullptr, *head_norm = nullptr;
  PLinear eh_proj;
  std::unique_ptr<Layer> block;
  // Saved activations.
  std::vector<int32_t> emb_tokens, targets;
  std::vector<uint8_t> mask;
  int64_t counted = 0;
  std::vector<float> e_raw, en, en_rstd, hn, hn_rstd, cat, x, xn, xn_rstd, logits;
};

struct TrainModel::Acts {
  std::vector<int32_t> inputs, targets;
  std::vector<uint8_t> mask;
  std::vector<float> x, hf, hf_rstd, logits;
};

TrainModel::TrainModel(const Config& cfg, ParamSet& params, ThreadPool* pool)
    : cfg_(cfg), params_(params), pool_(pool), acts_(std::make_unique<Acts>()) {
  KeepFreedBlocksInHeap();  // each step allocates and frees the same large gradient buffers
  embed_ = &params_.Get("model.embed_tokens.weight");
  head_ = cfg_.tie_word_embeddings ? embed_ : &params_.Get("lm_head.weight");
  final_norm_ = &params_.Get("model.norm.weight");
  for (int l = 0; l < cfg_.num_hidden_layers; ++l)
    layers_.push_back(std::make_unique<Layer>(cfg_, params_, l));
  for (int k = 0; k < params_.mtp_modules(); ++k) {
    const int index = cfg_.num_hidden_layers + k;
    const std::string p = "model.layers." + std::to_string(index) + ".";
    auto m = std::make_unique<Mtp>();
    m->enorm = &params_.Get(p + "enorm.weight");
    m->hnorm = &params_.Get(p + "hnorm.weight");
    m->head_norm = &params_.Get(p + "shared_head.norm.weight");
    Param& eh = params_.Get(p + "eh_proj.weight");
    m->eh_proj = {&eh, nullptr, eh.shape[0], eh.shape[1]};
    m->block = std::make_unique<Layer>(cfg_, params_, index);
    mtp_.push_back(std::move(m));
  }
  const int rot = cfg_.is_deepseek() ? cfg_.qk_rope_head_dim : cfg_.head_dim;
  rope_freq_ = RopeInvFreq(cfg_, rot);
  attn_scale_ = static_cast<float>(cfg_.AttentionScale());
}

TrainModel::~TrainModel() = default;

int64_t TrainModel::ActivationBytes() const {
  int64_t bytes = 0;
  for (const auto& l : layers_) bytes += l->SavedBytes();
  const Acts& a = *acts_;
  bytes += static_cast<int64_t>(a.x.size() + a.hf.size() + a.hf_rstd.size() + a.logits.size()) * 4;
  for (const auto& m : mtp_) {
    bytes += m->block->SavedBytes();
    for (const auto* v : {&m->e_raw, &m->en, &m->en_rstd, &m->hn, &m->hn_rstd, &m->cat, &m->x,
                          &m->xn, &m->xn_rstd, &m->logits})
      bytes += static_cast<int64_t>(v->size()) * 4;
  }
  return bytes;
}

std::vector<Param*> TrainModel::RouterBiases() const {
  std::vector<Param*> out;
  for (const auto& l : layers_)
    if (l->moe) out.push_back(l->router_bias);
  for (const auto& m : mtp_)
    if (m->block->moe) out.push_back(m->block->router_bias);
  return out;
}

StepStats TrainModel::Step(const StepInput& in, const LossOptions& opts, bool backward) {
  ThreadPool& pool = pool_ ? *pool_ : DefaultPool();
  const int64_t B = in.B, T = in.T, n = B * T, d = cfg_.hidden_size, V = cfg_.vocab_size;
  if (B <= 0 || T <= 0) throw Error("train step: empty batch");
  if (cfg_.max_position_embeddings > 0 && T > cfg_.max_position_embeddings)
    throw Error("train step: sequence length " + std::to_string(T) +
                " exceeds the model's max_position_embeddings " +
                std::to_string(cfg_.max_position_embeddings));
  for (int64_t i = 0; i < B * (T + 1); ++i)
    if (in.tokens[i] < 0 || in.tokens[i] >= V)
      throw Error("train step: token id " + std::to_string(in.tokens[i]) +
                  " is outside the vocabulary (0.." + std::to_string(V - 1) + ")");
  const SeqShape shape{B, T};
  Acts& a = *acts_;
  a.inputs.resize(n);
  a.targets.resize(n);
  a.mask.resize(n);
  int64_t counted = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t;
      a.inputs[i] = in.tokens[b * (T + 1) + t];
      a.targets[i] = in.tokens[b * (T + 1) + t + 1];
      a.mask[i] = in.mask ? in.mask[i] : 1;
      counted += a.mask[i] ? 1 : 0;
    }

  StepStats st;
  st.targets = counted;
  const auto biases = RouterBiases();
  st.expert_load.assign(biases.size(), {});

  a.x.resize(n * d);
  for (int64_t i = 0; i < n; ++i)
    std::copy(embed_->value.data() + a.inputs[i] * d, embed_->value.data() + (a.inputs[i] + 1) * d,
              a.x.data() + i * d);
  size_t moe_index = 0;
  for (auto& l : layers_) {
    std::vector<int64_t>* load = l->moe ? &st.expert_load[moe_index++] : nullptr;
    st.balance_loss += l->Forward(a.x.data(), shape, rope_freq_.data(), attn_scale_,
                                  opts.balance_alpha, opts.reuse_routing, load, pool);
  }
  a.hf.resize(n * d);
  a.hf_rstd.resize(n);
  RmsNormForward(a.x.data(), d, final_norm_->value.data(), n, d, cfg_.rms_norm_eps, a.hf.data(),
                 a.hf_rstd.data(), pool);
  a.logits.resize(n * V);
  GemmNT(n, V, d, a.hf.data(), head_->value.data(), a.logits.data(), 0.0f, pool);
  if (keep_logits_) logits_ = a.logits;
  const double denom = std::max<int64_t>(1, counted);
  st.loss = CrossEntropyForwardBackward(a.logits.data(), n, V, a.targets.data(), a.mask.data(),
                                        static_cast<float>(opts.grad_scale / denom), pool) /
            denom;

  // Multi-token prediction: module k predicts t_{i+k+1} from h^{k-1}_i and Emb(t_{i+k}).
  const bool run_mtp = opts.mtp_weight > 0 && !mtp_.empty();
  const double D = static_cast<double>(mtp_.size());
  if (run_mtp) {
    const float* hprev = a.hf.data();
    for (size_t k1 = 0; k1 < mtp_.size(); ++k1) {
      Mtp& m = *mtp_[k1];
      const int64_t k = static_cast<int64_t>(k1) + 1;
      m.emb_tokens.resize(n);
      m.targets.resize(n);
      m.mask.resize(n);
      m.counted = 0;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
          const int64_t i = b * T + t;
          const bool has_input = t + k <= T, has_target = t + k + 1 <= T;
          m.emb_tokens[i] = has_input ? in.tokens[b * (T + 1) + t + k] : 0;
          m.targets[i] = has_target ? in.tokens[b * (T + 1) + t + k + 1] : 0;
          m.mask[i] = has_target ? a.mask[i + k] : 0;
          m.counted += m.mask[i] ? 1 : 0;
        }
      m.e_raw.resize(n * d);
      for (int64_t i = 0; i < n; ++i)
        std::copy(embed_->value.data() + m.emb_tokens[i] * d,
                  embed_->value.data() + (m.emb_tokens[i] + 1) * d, m.e_raw.data() + i * d);
      m.en.resize(n * d);
      m.en_rstd.resize(n);
      m.hn.resize(n * d);
      m.hn_rstd.resize(n);
      RmsNormForward(m.e_raw.data(), d, m.enorm->value.data(), n, d, cfg_.rms_norm_eps,
                     m.en.data(), m.en_rstd.data(), pool);
      RmsNormForward(hprev, d, m.hnorm->value.data(), n, d, cfg_.rms_norm_eps, m.hn.data(),
                     m.hn_rstd.data(), pool);
      m.cat.resize(n * 2 * d);
      for (int64_t i = 0; i < n; ++i) {
        std::copy(m.en.data() + i * d, m.en.data() + (i + 1) * d, m.cat.data() + i * 2 * d);
        std::copy(m.hn.data() + i * d, m.hn.data() + (i + 1) * d, m.cat.data() + i * 2 * d + d);
      }
      m.x.resize(n * d);
      LinearForward(m.eh_proj, m.cat.data(), n, m.x.data(), pool);
      std::vector<int64_t>* load = m.block->moe ? &st.expert_load[moe_index++] : nullptr;
      st.balance_loss += m.block->Forward(m.x.data(), shape, rope_freq_.data(), attn_scale_,
                                          opts.balance_alpha, opts.reuse_routing, load, pool);
      m.xn.resize(n * d);
      m.xn_rstd.resize(n);
      RmsNormForward(m.x.data(), d, m.head_norm->value.data(), n, d, cfg_.rms_norm_eps,
                     m.xn.data(), m.xn_rstd.data(), pool);
      m.logits.resize(n * V);
      GemmNT(n, V, d, m.xn.data(), head_->value.data(), m.logits.data(), 0.0f, pool);
      const double mden = std::max<int64_t>(1, m.counted);
      const double ce =
          CrossEntropyForwardBackward(m.logits.data(), n, V, m.targets.data(), m.mask.data(),
                                      static_cast<float>(opts.grad_scale * opts.mtp_weight / D / mden),
                                      pool) /
          mden;
      st.mtp_loss += ce / D;
      hprev = m.x.data();
    }
  }
  st.total_loss = st.loss + (run_mtp ? opts.mtp_weight * st.mtp_loss : 0.0) + st.balance_loss;
  if (!backward) return st;

  const PLinear head{head_, nullptr, V, d};
  std::vector<float> dhf(n * d, 0.0f);
  LinearBackward(head, a.hf.data(), a.logits.data(), n, dhf.data(), pool);
  const double balance_coef = opts.balance_alpha * opts.grad_scale;
  auto embed_backward = [&](const int32_t* ids, const float* g) {
    for (int64_t i = 0; i < n; ++i) {
      float* row = embed_->grad.data() + ids[i] * d;
      for (int64_t c = 0; c < d; ++c) row[c] += g[i * d + c];
    }
  };
  if (run_mtp) {
    // d loss / d h^k_i arriving from module k+1's hnorm input; empty for the last module.
    std::vector<float> dnext(n * d, 0.0f);
    for (size_t k1 = mtp_.size(); k1-- > 0;) {
      Mtp& m = *mtp_[k1];
      std::vector<float> dx = dnext, dxn(n * d, 0.0f);
      LinearBackward(head, m.xn.data(), m.logits.data(), n, dxn.data(), pool);
      RmsNormBackward(m.x.data(), d, m.head_norm->value.data(), m.xn_rstd.data(), dxn.data(), n,
                      d, dx.data(), m.head_norm->grad.data(), pool);
      m.block->Backward(dx.data(), shape, rope_freq_.data(), attn_scale_, balance_coef, pool);
      std::vector<float> dcat(n * 2 * d, 0.0f), den(n * d), dhn(n * d);
      LinearBackward(m.eh_proj, m.cat.data(), dx.data(), n, dcat.data(), pool);
      for (int64_t i = 0; i < n; ++i) {
        std::copy(dcat.data() + i * 2 * d, dcat.data() + i * 2 * d + d, den.data() + i * d);
        std::copy(dcat.data() + i * 2 * d + d, dcat.data() + (i + 1) * 2 * d, dhn.data() + i * d);
      }
      std::vector<float> de(n * d, 0.0f);
      RmsNormBackward(m.e_raw.data(), d, m.enorm->value.data(), m.en_rstd.data(), den.data(), n,
                      d, de.data(), m.enorm->grad.data(), pool);
      embed_backward(m.emb_tokens.data(), de.data());
      const float* hprev = k1 == 0 ? a.hf.data() : mtp_[k1 - 1]->x.data();
      float* dprev = k1 == 0 ? dhf.data() : nullptr;
      std::vector<float> dprev_buf;
      if (!dprev) {
        dprev_buf.assign(n * d, 0.0f);
        dprev = dprev_buf.data();
      }
      RmsNormBackward(hprev, d, m.hnorm->value.data(), m.hn_rstd.data(), dhn.data(), n, d, dprev,
                      m.hnorm->grad.data(), pool);
      if (k1 > 0) dnext = std::move(dprev_buf);
    }
  }
  std::vector<float> dx(n * d, 0.0f);
  RmsNormBackward(a.x.data(), d, final_norm_->value.data(), a.hf_rstd.data(), dhf.data(), n, d,
                  dx.data(), final_norm_->grad.data(), pool);
  for (size_t l = layers_.size(); l-- > 0;)
    layers_[l]->Backward(dx.data(), shape, rope_freq_.data(), attn_scale_, balance_coef, pool);
  embed_backward(a.inputs.data(), dx.data());
  return st;
}

void UpdateRouterBiases(const std::vector<Param*>& biases,
                        const std::vector<std::vector<int64_t>>& loads, double gamma) {
  for (size_t l = 0; l < biases.size() && l < loads.size(); ++l) {
    if (!biases[l] || loads[l].empty()) continue;
    const auto& c = loads[l];
    double mean = 0;
    for (int64_t v : c) mean += static_cast<double>(v);
    mean /= static_cast<double>(c.size());
    float* b = biases[l]->value.data();
    for (size_t e = 0; e < c.size(); ++e) {
      const double diff = mean - static_cast<double>(c[e]);
      const float sign = diff > 0 ? 1.0f : (diff < 0 ? -1.0f : 0.0f);
      b[e] += static_cast<float>(gamma) * sign;
    }
  }
}

}  // namespace r1
