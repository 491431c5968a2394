// Finite-difference checks of the training backward: each op on its own, then every parameter
// tensor of tiny, deliberately odd-shaped models of all four architectures (MLA with and without
// q compression, GQA with biases, tied and untied heads, MoE with groups and shared experts, the
// balance loss and an MTP module), comparing the analytic directional derivative along a random
// direction with a central difference.
#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "r1/core/thread_pool.h"
#include "r1/model/weights.h"
#include "r1/train/grad_ops.h"
#include "r1/train/params.h"
#include "r1/train/train_model.h"

namespace r1 {
namespace {

std::vector<float> Random(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = scale * u(rng);
  return v;
}

double DotD(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// ---- Single ops -------------------------------------------------------------------------------

TEST(TrainGradOps, RmsNormMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const int64_t rows = 3, n = 7;
  std::vector<float> x = Random(rows * n, 1), w = Random(n, 2), dy = Random(rows * n, 3);
  auto loss = [&](const std::vector<float>& xv, const std::vector<float>& wv) {
    std::vector<float> y(rows * n), r(rows);
    RmsNormForward(xv.data(), n, wv.data(), rows, n, 1e-6f, y.data(), r.data(), pool);
    return DotD(y, dy);
  };
  std::vector<float> y(rows * n), rstd(rows), dx(rows * n, 0.0f), dw(n, 0.0f);
  RmsNormForward(x.data(), n, w.data(), rows, n, 1e-6f, y.data(), rstd.data(), pool);
  RmsNormBackward(x.data(), n, w.data(), rstd.data(), dy.data(), rows, n, dx.data(), dw.data(),
                  pool);
  const double h = 1e-3;
  for (size_t i = 0; i < x.size(); ++i) {
    auto xp = x, xm = x;
    xp[i] += h;
    xm[i] -= h;
    EXPECT_NEAR(dx[i], (loss(xp, w) - loss(xm, w)) / (2 * h), 2e-3) << "x[" << i << "]";
  }
  for (int64_t i = 0; i < n; ++i) {
    auto wp = w, wm = w;
    wp[i] += h;
    wm[i] -= h;
    EXPECT_NEAR(dw[i], (loss(x, wp) - loss(x, wm)) / (2 * h), 2e-3) << "w[" << i << "]";
  }
}

TEST(TrainGradOps, SiluMulMatchesFiniteDifferences) {
  ThreadPool pool(2);
  const int64_t n = 13;
  std::vector<float> g = Random(n, 4, 3.0f), u = Random(n, 5), da = Random(n, 6);
  std::vector<float> dg(n), du(n);
  SiluMulBackward(g.data(), u.data(), da.data(), n, dg.data(), du.data(), pool);
  auto loss = [&](const std::vector<float>& gv, const std::vector<float>& uv) {
    std::vector<float> a(n);
    SiluMulForward(gv.data(), uv.data(), n, a.data(), pool);
    return DotD(a, da);
  };
  const double h = 1e-3;
  for (int64_t i = 0; i < n; ++i) {
    auto gp = g, gm = g, up = u, um = u;
    gp[i] += h;
    gm[i] -= h;
    up[i] += h;
    um[i] -= h;
    EXPECT_NEAR(dg[i], (loss(gp, u) - loss(gm, u)) / (2 * h), 1e-3);
    EXPECT_NEAR(du[i], (loss(g, up) - loss(g, um)) / (2 * h), 1e-3);
  }
}

TEST(TrainGradOps, CrossEntropyMatchesFiniteDifferencesAndSkipsMaskedRows) {
  ThreadPool pool(2);
  const int64_t rows = 3, V = 11;
  std::vector<float> z = Random(rows * V, 7, 4.0f);
  const std::vector<int32_t> targets = {3, 10, 0};
  const std::vector<uint8_t> mask = {1, 0, 1};
  auto loss = [&](std::vector<float> zv) {
    return CrossEntropyForwardBackward(zv.data(), rows, V, targets.data(), mask.data(), 1.0f,
                                       pool);
  };
  std::vector<float> grad = z;
  const double l = CrossEntropyForwardBackward(grad.data(), rows, V, targets.data(), mask.data(),
                                               1.0f, pool);
  EXPECT_NEAR(l, loss(z), 1e-9);
  const double h = 1e-3;
  for (size_t i = 0; i < z.size(); ++i) {
    auto zp = z, zm = z;
    zp[i] += h;
    zm[i] -= h;
    EXPECT_NEAR(grad[i], (loss(zp) - loss(zm)) / (2 * h), 1e-3) << i;
  }
  for (int64_t v = 0; v < V; ++v) EXPECT_EQ(grad[V + v], 0.0f);  // the masked row
}

// ---- Whole models -----------------------------------------------------------------------------

nlohmann::json TinyConfig(const std::string& arch) {
  nlohmann::json c = {{"vocab_size", 37},        {"hidden_size", 24},
                      {"intermediate_size", 11}, {"num_hidden_layers", 2},
                      {"num_attention_heads", 3}, {"num_key_value_heads", 3},
                      {"rms_norm_eps", 1e-6},    {"rope_theta", 10000.0},
                      {"max_position_embeddings", 64}, {"tie_word_embeddings", false},
                      {"bos_token_id", 0},       {"eos_token_id", 1},
                      {"hidden_act", "silu"},    {"torch_dtype", "float32"}};
  if (arch == "v3" || arch == "v2") {
    c["architectures"] = {arch == "v3" ? "DeepseekV3ForCausalLM" : "DeepseekV2ForCausalLM"};
    c["model_type"] = arch == "v3" ? "deepseek_v3" : "deepseek_v2";
    c["kv_lora_rank"] = 7;
    c["qk_nope_head_dim"] = 6;
    c["qk_rope_head_dim"] = 4;
    c["v_head_dim"] = 5;
    c["moe_intermediate_size"] = 7;
    c["first_k_dense_replace"] = 1;
    c["moe_layer_freq"] = 1;
    c["attention_bias"] = false;
    c["rope_scaling"] = {{"type", "yarn"},
                         {"factor", 4.0},
                         {"original_max_position_embeddings", 16},
                         {"beta_fast", 32},
                         {"beta_slow", 1},
                         {"mscale", 0.707},
                         {"mscale_all_dim", 0.707}};
    if (arch == "v3") {
      c["q_lora_rank"] = 10;
      c["n_routed_experts"] = 6;
      c["n_shared_experts"] = 1;
      c["num_experts_per_tok"] = 2;
      c["n_group"] = 2;
      c["topk_group"] = 1;
      c["topk_method"] = "noaux_tc";
      c["scoring_func"] = "sigmoid";
      c["norm_topk_prob"] = true;
      c["routed_scaling_factor"] = 2.5;
      c["num_nextn_predict_layers"] = 1;
    } else {
      c["q_lora_rank"] = nullptr;
      c["n_routed_experts"] = 5;
      c["n_shared_experts"] = 2;
      c["num_experts_per_tok"] = 3;
      c["n_group"] = 1;
      c["topk_group"] = 1;
      c["topk_method"] = "greedy";
      c["scoring_func"] = "softmax";
      c["norm_topk_prob"] = false;
      c["routed_scaling_factor"] = 1.5;
      c["num_nextn_predict_layers"] = 0;
    }
  } else if (arch == "qwen2") {
    c["architectures"] = {"Qwen2ForCausalLM"};
    c["model_type"] = "qwen2";
    c["num_attention_heads"] = 4;
    c["num_key_value_heads"] = 2;
    c["hidden_size"] = 24;  // head_dim 6, not a multiple of any vector width
    c["tie_word_embeddings"] = true;
    c["attention_bias"] = true;
    c["rope_scaling"] = nullptr;
  } else {
    c["architectures"] = {"LlamaForCausalLM"};
    c["model_type"] = "llama";
    c["num_attention_heads"] = 6;
    c["num_key_value_heads"] = 2;  // head_dim 4
    c["rms_norm_eps"] = 1e-5;
    c["rope_theta"] = 500000.0;
    c["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", 8.0},
                         {"low_freq_factor", 1.0},
                         {"high_freq_factor", 4.0},
                         {"original_max_position_embeddings", 8}};
  }
  return c;
}

struct TinyModel {
  Config cfg;
  std::vector<std::vector<float>> buffers;
  ParamSet params;
};

TinyModel MakeTiny(const std::string& arch, uint32_t seed) {
  TinyModel m;
  m.cfg = ParseConfig(TinyConfig(arch), arch + " test config");
  std::vector<TensorView> views;
  uint32_t s = seed;
  for (const TensorSpec& spec : ExpectedTensors(m.cfg, /*include_mtp=*/true)) {
    int64_t n = 1;
    for (int64_t x : spec.shape) n *= x;
    std::vector<float> v = Random(n, ++s, spec.is_matrix ? 0.4f : 0.2f);
    if (!spec.is_matrix && spec.name.find("norm") != std::string::npos)
      for (float& x : v) x += 1.0f;
    m.buffers.push_back(std::move(v));
    TensorView t;
    t.name = spec.name;
    t.shape = spec.shape;
    t.data = reinterpret_cast<const uint8_t*>(m.buffers.back().data());
    t.nbytes = n * 4;
    views.push_back(t);
  }
  if (m.cfg.topk_method == "noaux_tc") {
    // The routing bias is optional in the spec list; give every MoE layer one.
    for (int l = 0; l < m.cfg.num_hidden_layers + m.cfg.num_nextn_predict_layers; ++l) {
      if (!m.cfg.is_moe_layer(l)) continue;
      const std::string name =
          "model.layers." + std::to_string(l) + ".mlp.gate.e_score_correction_bias";
      bool have = false;
      for (const auto& v : views) have |= v.name == name;
      if (have) continue;
      m.buffers.push_back(Random(m.cfg.n_routed_experts, ++s, 0.05f));
      TensorView t;
      t.name = name;
      t.shape = {m.cfg.n_routed_experts};
      t.data = reinterpret_cast<const uint8_t*>(m.buffers.back().data());
      t.nbytes = m.cfg.n_routed_experts * 4;
      views.push_back(t);
    }
  }
  m.params = ParamSet::FromStore(m.cfg, TensorStore::FromViews("tiny", std::move(views)));
  return m;
}

class TrainGradModel : public ::testing::TestWithParam<std::string> {};

TEST_P(TrainGradModel, EveryParameterMatchesFiniteDifferences) {
  TinyModel m = MakeTiny(GetParam(), 100);
  if (GetParam() == "v3") {
    ASSERT_EQ(m.params.mtp_modules(), 1);
  }
  ThreadPool pool(2);
  TrainModel model(m.cfg, m.params, &pool);
  const int64_t B = 2, T = 6;
  std::mt19937 rng(9);
  std::vector<int32_t> tokens(B * (T + 1));
  for (auto& t : tokens) t = static_cast<int32_t>(rng() % m.cfg.vocab_size);
  std::vector<uint8_t> mask(B * T, 1);
  mask[2] = 0;
  mask[T + 4] = 0;
  LossOptions opts;
  opts.balance_alpha = m.cfg.n_routed_experts > 0 ? 0.05 : 0.0;
  opts.mtp_weight = 0.3;
  opts.grad_scale = 1.0;
  const StepInput in{B, T, tokens.data(), mask.data()};
  m.params.ZeroGrad();
  const StepStats st = model.Step(in, opts, true);
  EXPECT_TRUE(std::isfinite(st.total_loss));
  if (GetParam() == "v3") {
    EXPECT_GT(st.mtp_loss, 0.0);
  }
  if (opts.balance_alpha > 0) {
    EXPECT_GT(st.balance_loss, 0.0);
  }

  const double h = 1e-3;
  LossOptions fd_opts = opts;
  fd_opts.reuse_routing = true;
  int checked = 0;
  for (Param& p : m.params.params()) {
    if (!p.trainable) continue;
    const std::vector<float> dir = Random(p.value.size(), 1000 + checked);
    const double analytic = DotD(p.grad, dir);
    const std::vector<float> saved = p.value;
    for (size_t i = 0; i < saved.size(); ++i) p.value[i] = saved[i] + static_cast<float>(h) * dir[i];
    const double lp = model.Step(in, fd_opts, false).total_loss;
    for (size_t i = 0; i < saved.size(); ++i) p.value[i] = saved[i] - static_cast<float>(h) * dir[i];
    const double lm = model.Step(in, fd_opts, false).total_loss;
    p.value = saved;
    const double numeric = (lp - lm) / (2 * h);
    EXPECT_NEAR(analytic, numeric, 2e-2 * std::fabs(numeric) + 2e-3)
        << p.name << ": analytic " << analytic << ", finite difference " << numeric;
    ++checked;
  }
  EXPECT_GT(checked, 10);
}

INSTANTIATE_TEST_SUITE_P(Archs, TrainGradModel,
                         ::testing::Values("v3", "v2", "qwen2", "llama"));

TEST(TrainGradModel, GradScaleAndAccumulationAreLinear) {
  TinyModel m = MakeTiny("v3", 7);
  ThreadPool pool(2);
  TrainModel model(m.cfg, m.params, &pool);
  const int64_t B = 1, T = 5;
  std::vector<int32_t> tokens = {3, 5, 7, 11, 13, 17};
  LossOptions opts;
  opts.mtp_weight = 0.3;
  model.Step({B, T, tokens.data(), nullptr}, opts, true);
  std::vector<std::vector<float>> once;
  for (auto& p : m.params.params()) once.push_back(p.grad);
  m.params.ZeroGrad();
  opts.grad_scale = 0.5;
  model.Step({B, T, tokens.data(), nullptr}, opts, true);
  model.Step({B, T, tokens.data(), nullptr}, opts, true);
  size_t i = 0;
  for (auto& p : m.params.params()) {
    for (size_t j = 0; j < p.grad.size(); ++j)
      ASSERT_NEAR(p.grad[j], once[i][j], 1e-6f + 1e-5f * std::fabs(once[i][j])) << p.name;
    ++i;
  }
}

TEST(TrainRouterBias, SignRuleMovesTowardsTheMeanLoad) {
  Param b;
  b.value = {0.0f, 0.0f, 0.0f, 0.0f};
  std::vector<Param*> biases = {&b, nullptr};
  UpdateRouterBiases(biases, {{5, 1, 3, 3}, {1, 2}}, 0.01);
  // mean 3: overloaded expert 0 goes down, underloaded 1 up, balanced ones stay.
  EXPECT_FLOAT_EQ(b.value[0], -0.01f);
  EXPECT_FLOAT_EQ(b.value[1], 0.01f);
  EXPECT_FLOAT_EQ(b.value[2], 0.0f);
  EXPECT_FLOAT_EQ(b.value[3], 0.0f);
}

}  // namespace
}  // namespace r1
