// The step costs that decide whether MTP speculative decoding pays: a one-token decode step of
// the main model (plain greedy), the two-token verify step (all logits), and the MTP module on
// one and two positions, all at a 64-token context. With acceptance rate a, one speculative
// iteration yields 1 + a tokens for verify + MTP (about 1 + a positions), against one token per
// plain step. Models: random BF16 v3-nano and v3-small, plus R1_SPEC_MODEL (a model folder with
// MTP weights, e.g. runs/brown/model) when set.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "r1/core/thread_pool.h"
#include "r1/model/model.h"
#include "r1/model/presets.h"

namespace {

constexpr int64_t kContext = 64;

const r1::Model& GetModel(const std::string& name) {
  static std::map<std::string, std::unique_ptr<r1::Model>> models;
  auto& m = models[name];
  if (!m) {
    std::string dir = name;
    if (!std::filesystem::exists(name + "/config.json")) {
      dir = (std::filesystem::temp_directory_path() / ("r1_spec_bench_" + name)).string();
      r1::InitOptions opts;
      opts.seed = 1;
      opts.overwrite = true;
      r1::InitModel(name, dir, opts);
    }
    m = r1::Model::Load(dir);
  }
  return *m;
}

enum class What { kStep1, kVerify2, kMtp1, kMtp2 };

void BM_Step(benchmark::State& state, std::string name, What what) {
  const r1::Model& model = GetModel(name);
  r1::ThreadPool pool(static_cast<int>(state.range(0)));
  const_cast<r1::Model&>(model).set_pool(&pool);
  r1::KVCache cache = model.NewCache();
  const int slot = cache.AddSequence();
  const int32_t vocab = static_cast<int32_t>(model.config().vocab_size);
  std::vector<int32_t> prompt(kContext);
  for (int64_t i = 0; i < kContext; ++i) prompt[i] = static_cast<int32_t>((i * 7 + 3) % vocab);
  r1::SeqChunk c{slot, prompt};
  r1::StepOutput out, mtp;
  model.Step(cache, {&c, 1}, {.all_final_hidden = true}, out);
  model.MtpStep(cache, slot, 0, 0, out.final_hidden, prompt, {}, mtp);
  const std::vector<float> h(out.final_hidden.end() - 2 * model.config().hidden_size,
                             out.final_hidden.end());
  const int32_t two[2] = {5 % vocab, 9 % vocab};
  for (auto _ : state) {
    switch (what) {
      case What::kStep1:
      case What::kVerify2: {
        const bool verify = what == What::kVerify2;
        r1::SeqChunk s{slot, std::span<const int32_t>(two, verify ? 2 : 1)};
        model.Step(cache, {&s, 1}, {.all_logits = verify}, out);
        cache.Truncate(slot, kContext);
        break;
      }
      case What::kMtp1:
      case What::kMtp2: {
        const size_t n = what == What::kMtp2 ? 2 : 1;
        model.MtpStep(cache, slot, 0, kContext, std::span<const float>(h.data(), n * h.size() / 2),
                      std::span<const int32_t>(two, n), {}, mtp);
        break;
      }
    }
  }
  const_cast<r1::Model&>(model).set_pool(nullptr);
}

void Register(const std::string& name) {
  const std::pair<const char*, What> kinds[] = {{"step1", What::kStep1},
                                                {"verify2", What::kVerify2},
                                                {"mtp1", What::kMtp1},
                                                {"mtp2", What::kMtp2}};
  std::string label = std::filesystem::path(name).filename().string();
  if (label == "model") label = std::filesystem::path(name).parent_path().filename().string();
  for (const auto& [kind, what] : kinds) {
    benchmark::RegisterBenchmark((label + "/" + kind).c_str(), BM_Step, name, what)
        ->Arg(1)
        ->Arg(2)
        ->ArgName("threads")
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  Register("v3-nano");
  Register("v3-small");
  if (const char* extra = std::getenv("R1_SPEC_MODEL")) Register(extra);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
