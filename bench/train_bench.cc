// Training speed: one full step (forward, backward, gradient clipping, AdamW, balancing-bias
// update) of the v3-nano and v3-small shapes with MTP, on the shapes and batch sizes PyTorch was
// measured with (../shared/docs/perf-anchors.md §3). Counters: training tokens/s, the share of
// the machine's FP32 peak measured in the same run, the ratio to PyTorch's figure, and the
// memory of weights, gradients, optimizer state and saved activations.
#include <benchmark/benchmark.h>

#include <cmath>
#include <random>
#include <vector>

#include "r1/core/machine_limits.h"
#include "r1/core/thread_pool.h"
#include "r1/model/presets.h"
#include "r1/model/weights.h"
#include "r1/train/optimizer.h"
#include "r1/train/params.h"
#include "r1/train/train_model.h"

namespace {

struct Shape {
  const char* preset;
  int64_t batch, seq;
  double pytorch_tokens_per_s;  // perf-anchors §3, 2 threads, OMP_WAIT_POLICY unset
};
constexpr Shape kShapes[] = {{"v3-nano", 64, 160, 6865.0}, {"v3-small", 16, 256, 444.0}};

struct Setup {
  r1::Config cfg;
  std::vector<std::vector<float>> buffers;
  r1::ParamSet params;
};

Setup Make(const Shape& s) {
  Setup m;
  m.cfg = r1::ParseConfig(r1::PresetConfig(s.preset), s.preset);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<r1::TensorView> views;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool matrix) {
    int64_t n = 1;
    for (int64_t x : shape) n *= x;
    // Norms start at 1, the routing bias at 0, matrices small and random.
    const bool bias = name.find("e_score_correction_bias") != std::string::npos;
    std::vector<float> v(n, matrix || bias ? 0.0f : 1.0f);
    if (matrix)
      for (float& x : v) x = nd(rng);
    m.buffers.push_back(std::move(v));
    r1::TensorView t;
    t.name = name;
    t.shape = std::move(shape);
    t.data = reinterpret_cast<const uint8_t*>(m.buffers.back().data());
    t.nbytes = n * 4;
    views.push_back(t);
  };
  for (const auto& spec : r1::ExpectedTensors(m.cfg, true)) add(spec.name, spec.shape, spec.is_matrix);
  m.params = r1::ParamSet::FromStore(m.cfg, r1::TensorStore::FromViews(s.preset, std::move(views)));
  return m;
}

void BM_TrainStep(benchmark::State& state) {
  const Shape& s = kShapes[state.range(0)];
  static const double peak = r1::MeasurePeakFp32Gflops(r1::DefaultPool().size());
  Setup m = Make(s);
  r1::TrainModel model(m.cfg, m.params);
  r1::AdamW opt(m.params, r1::AdamWOptions{});
  std::mt19937 rng(2);
  std::vector<int32_t> tokens(s.batch * (s.seq + 1));
  r1::LossOptions lo;
  lo.mtp_weight = m.params.mtp_modules() > 0 ? 0.3 : 0.0;
  auto step = [&] {
    for (auto& t : tokens) t = static_cast<int32_t>(rng() % m.cfg.vocab_size);
    m.params.ZeroGrad();
    const r1::StepStats st = model.Step({s.batch, s.seq, tokens.data(), nullptr}, lo, true);
    r1::ClipGradNorm(m.params, 1.0);
    opt.Step(m.params, 1e-3);
    r1::UpdateRouterBiases(model.RouterBiases(), st.expert_load, 1e-3);
    benchmark::DoNotOptimize(st.loss);
  };
  step();  // untimed: the first step also faults in the activation and gradient memory
  for (auto _ : state) step();
  const double tokens_per_step = static_cast<double>(s.batch * s.seq);
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(tokens_per_step));
  state.counters["tokens/s"] =
      benchmark::Counter(tokens_per_step, benchmark::Counter::kIsIterationInvariantRate);
  // Matrix FLOPs per token: 6 x the active weights a token touches (main model and MTP block),
  // which leaves out attention scores, so the share is a lower bound.
  const r1::ParamCounts pc = r1::CountParams(m.cfg);
  const double active = static_cast<double>(pc.active - pc.embedding) +
                        static_cast<double>(pc.mtp) / 2.0;
  state.counters["model_GFLOP/s"] = benchmark::Counter(
      6.0 * active * tokens_per_step / 1e9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["machine_peak_GFLOP/s"] = peak;
  state.counters["pytorch_tokens/s"] = s.pytorch_tokens_per_s;
  const double mb = 1.0 / (1 << 20);
  const double weights = static_cast<double>(m.params.NumElements()) * 4;
  state.counters["weights_MB"] = weights * mb;
  state.counters["grads_MB"] = weights * mb;
  state.counters["adamw_MB"] = 2 * weights * mb;
  state.counters["activations_MB"] = static_cast<double>(model.ActivationBytes()) * mb;
  state.SetLabel(s.preset);
}

BENCHMARK(BM_TrainStep)->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MinTime(5.0);

}  // namespace

BENCHMARK_MAIN();
