// DeepSeekMoE in the training pass: the same routing as inference (model/routing.h), experts run
// in parallel on the tokens each one serves, and the backward reaches the gate weights through
// the combine weights of the chosen experts (the choice itself and the correction bias get no
// gradient), plus the optional sequence-wise balance loss (r1-recipe §2.4).
#include <algorithm>
#include <functional>
#include <numeric>

#include "r1/kernels/gemm.h"
#include "r1/model/routing.h"
#include "r1/train/train_layer.h"

namespace r1 {

void TrainModel::Layer::ForEachExpert(ThreadPool& pool,
                                      const std::function<void(int64_t)>& fn) const {
  // Experts with more than half a thread's share of the rows run one after another with every
  // thread inside their products; the rest run side by side, one expert per thread. Routing is
  // rarely even (an untrained router can send most tokens to one expert), and one expert per
  // thread alone would leave the other threads waiting for the busiest.
  const int64_t E = static_cast<int64_t>(expert_rows_.size());
  int64_t total = 0;
  for (const auto& r : expert_rows_) total += static_cast<int64_t>(r.size());
  const int64_t big = pool.size() > 1 ? total / (2 * pool.size()) : total + 1;
  std::vector<int64_t> rest;
  for (int64_t e = 0; e < E; ++e) {
    if (static_cast<int64_t>(expert_rows_[e].size()) > big) {
      fn(e);
    } else {
      rest.push_back(e);
    }
  }
  pool.ParallelFor(static_cast<int64_t>(rest.size()), 1, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) fn(rest[i]);
  });
}

double TrainModel::Layer::MoeForward(const float* h, const SeqShape& s, double balance_alpha,
                                     bool reuse_routing, std::vector<int64_t>* load, float* out,
                                     ThreadPool& pool) {
  const int64_t n = s.n(), d = cfg.hidden_size, E = cfg.n_routed_experts,
                k = cfg.num_experts_per_tok;
  scores_.resize(n * E);
  GemmNT(n, E, d, h, router->value.data(), scores_.data(), 0.0f, pool);
  reuse_routing = reuse_routing && static_cast<int64_t>(chosen_.size()) == n * k;
  chosen_.resize(n * k);
  weights_.resize(n * k);
  const float* bias = router_bias ? router_bias->value.data() : nullptr;
  const bool sigmoid = cfg.scoring_func == ScoringFunc::kSigmoid;
  pool.ParallelFor(n, 32, [&](int64_t b, int64_t e, int) {
    RoutingScratch scratch;
    for (int64_t i = b; i < e; ++i) {
      float* sc = scores_.data() + i * E;
      RouterScores(cfg, sc, E);
      if (!reuse_routing) {
        RouteToken(cfg, sc, bias, chosen_.data() + i * k, weights_.data() + i * k, scratch);
        continue;
      }
      // The same weights RouteToken computes, for the kept choice.
      float total = 0;
      for (int64_t j = 0; j < k; ++j) total += sc[chosen_[i * k + j]];
      for (int64_t j = 0; j < k; ++j) {
        float w = sc[chosen_[i * k + j]];
        if (sigmoid) w /= total;
        weights_[i * k + j] = w * static_cast<float>(cfg.routed_scaling_factor);
      }
    }
  });
  expert_rows_.assign(E, {});
  for (int64_t slot = 0; slot < n * k; ++slot) expert_rows_[chosen_[slot]].push_back(slot);
  if (load) {
    load->resize(E);
    for (int64_t e = 0; e < E; ++e) (*load)[e] = static_cast<int64_t>(expert_rows_[e].size());
  }
  expert_acts_.resize(E);
  expert_x_.resize(E);
  expert_y_.resize(E);
  ForEachExpert(pool, [&](int64_t e) {
    const auto& rows = expert_rows_[e];
    const int64_t m = static_cast<int64_t>(rows.size());
    expert_x_[e].resize(m * d);
    expert_y_[e].resize(m * d);
    for (int64_t r = 0; r < m; ++r) {
      const float* src = h + (rows[r] / k) * d;
      std::copy(src, src + d, expert_x_[e].data() + r * d);
    }
    if (m > 0) MlpForward(experts[e], expert_x_[e].data(), m, expert_acts_[e],
                          expert_y_[e].data(), pool);
  });
  // Where each (token, slot) landed in its expert's rows.
  std::vector<int64_t> row_of(n * k);
  for (int64_t e = 0; e < E; ++e)
    for (size_t r = 0; r < expert_rows_[e].size(); ++r)
      row_of[expert_rows_[e][r]] = static_cast<int64_t>(r);
  pool.ParallelFor(n, 32, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      float* o = out + i * d;
      std::fill(o, o + d, 0.0f);
      for (int64_t j = 0; j < k; ++j) {
        const float w = weights_[i * k + j];
        const float* y = expert_y_[chosen_[i * k + j]].data() + row_of[i * k + j] * d;
        for (int64_t c = 0; c < d; ++c) o[c] += w * y[c];
      }
    }
  });
  if (!shared.gate.empty()) {
    std::vector<float> sh(n * d);
    MlpForward(shared, h, n, shared_acts_, sh.data(), pool);
    for (int64_t i = 0; i < n * d; ++i) out[i] += sh[i];
  }

  if (balance_alpha <= 0) return 0.0;
  // f_i counts each sequence's top-k choices on the raw scores (no bias, no groups), as the V3
  // paper writes it; P_i averages the scores normalized over all experts.
  const int64_t B = s.B, T = s.T;
  const bool keep_counts = reuse_routing && static_cast<int64_t>(balance_f_.size()) == B * E;
  std::vector<float> kept_f;
  if (keep_counts) kept_f = balance_f_;
  balance_f_.assign(B * E, 0.0f);
  score_sum_.resize(n);
  double total = 0;
  std::vector<int64_t> idx(E);
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> P(E, 0.0);
    float* f = balance_f_.data() + b * E;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t i = b * T + t;
      const float* sc = scores_.data() + i * E;
      float sum = 0;
      for (int64_t e = 0; e < E; ++e) sum += sc[e];
      score_sum_[i] = sum;
      for (int64_t e = 0; e < E; ++e) P[e] += sc[e] / sum / static_cast<double>(T);
      std::iota(idx.begin(), idx.end(), 0);
      std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int64_t a, int64_t c) {
        return sc[a] > sc[c] || (sc[a] == sc[c] && a < c);
      });
      for (int64_t j = 0; j < k; ++j) f[idx[j]] += 1.0f;
    }
    const float norm = static_cast<float>(E) / static_cast<float>(k * T);
    for (int64_t e = 0; e < E; ++e) {
      f[e] = keep_counts ? kept_f[b * E + e] : f[e] * norm;
      total += f[e] * P[e];
    }
  }
  return balance_alpha * total / static_cast<double>(B);
}

void TrainModel::Layer::MoeBackward(const float* h, const float* dout, const SeqShape& s,
                                    double balance_coef, float* dh, ThreadPool& pool) {
  const int64_t n = s.n(), d = cfg.hidden_size, E = cfg.n_routed_experts,
                k = cfg.num_experts_per_tok;
  std::vector<float> dw(n * k, 0.0f), dslot(n * k * d, 0.0f);
  ForEachExpert(pool, [&](int64_t e) {
    std::vector<float> dy, dx;
    {
      const auto& rows = expert_rows_[e];
      const int64_t m = static_cast<int64_t>(rows.size());
      if (m == 0) return;
      dy.resize(m * d);
      dx.assign(m * d, 0.0f);
      for (int64_t r = 0; r < m; ++r) {
        const int64_t slot = rows[r];
        const float* g = dout + (slot / k) * d;
        const float* y = expert_y_[e].data() + r * d;
        const float w = weights_[slot];
        float dot = 0;
        for (int64_t c = 0; c < d; ++c) {
          dy[r * d + c] = w * g[c];
          dot += g[c] * y[c];
        }
        dw[slot] = dot;
      }
      MlpBackward(experts[e], expert_x_[e].data(), expert_acts_[e], dy.data(), m, dx.data(),
                  pool);
      for (int64_t r = 0; r < m; ++r)
        std::copy(dx.data() + r * d, dx.data() + (r + 1) * d, dslot.data() + rows[r] * d);
    }
  });
  pool.ParallelFor(n, 32, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t j = 0; j < k; ++j) {
        const float* src = dslot.data() + (i * k + j) * d;
        for (int64_t c = 0; c < d; ++c) dh[i * d + c] += src[c];
      }
  });
  if (!shared.gate.empty()) MlpBackward(shared, h, shared_acts_, dout, n, dh, pool);

  // Gate logits: through the combine weights, then the balance loss, then sigmoid/softmax.
  const bool sigmoid = cfg.scoring_func == ScoringFunc::kSigmoid;
  const float rho = static_cast<float>(cfg.routed_scaling_factor);
  std::vector<float> dz(n * E);
  pool.ParallelFor(n, 32, [&](int64_t b, int64_t e, int) {
    std::vector<float> ds(E);
    for (int64_t i = b; i < e; ++i) {
      const float* sc = scores_.data() + i * E;
      std::fill(ds.begin(), ds.end(), 0.0f);
      if (sigmoid) {
        float total = 0, c = 0;
        for (int64_t j = 0; j < k; ++j) {
          total += sc[chosen_[i * k + j]];
          c += dw[i * k + j] * sc[chosen_[i * k + j]];
        }
        for (int64_t j = 0; j < k; ++j)
          ds[chosen_[i * k + j]] += rho * (dw[i * k + j] / total - c / (total * total));
      } else {
        for (int64_t j = 0; j < k; ++j) ds[chosen_[i * k + j]] += rho * dw[i * k + j];
      }
      if (balance_coef > 0) {
        const int64_t seq = i / s.T;
        const float S = score_sum_[i];
        const float scale =
            static_cast<float>(balance_coef / static_cast<double>(s.T * s.B));
        float dot = 0;
        for (int64_t x = 0; x < E; ++x) dot += balance_f_[seq * E + x] * sc[x] / S;
        for (int64_t x = 0; x < E; ++x)
          ds[x] += scale * (balance_f_[seq * E + x] - dot) / S;
      }
      float* z = dz.data() + i * E;
      if (sigmoid) {
        for (int64_t x = 0; x < E; ++x) z[x] = ds[x] * sc[x] * (1.0f - sc[x]);
      } else {
        float dot = 0;
        for (int64_t x = 0; x < E; ++x) dot += ds[x] * sc[x];
        for (int64_t x = 0; x < E; ++x) z[x] = sc[x] * (ds[x] - dot);
      }
    }
  });
  GemmTN(E, d, n, dz.data(), h, router->grad.data(), 1.0f, pool);
  GemmNN(n, d, E, dz.data(), router->value.data(), dh, 1.0f, pool);
}

}  // namespace r1
