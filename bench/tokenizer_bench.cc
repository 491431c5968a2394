// Tokenizer throughput on ~1 MB of English prose (the license texts every Debian system ships),
// single thread. bytes_per_second is input bytes encoded (or output bytes decoded) per second.
// The target is >= 20 MB/s encoding; the reference's JS port manages about 1 MB/s.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "r1/tokenizer/tokenizer.h"

namespace {

namespace fs = std::filesystem;


std::string GoldenDir() {
  // Run from the repository root or from build/bench.
  for (const char* base : {"../shared/golden", "../../shared/golden", "../../../shared/golden",
                           "/work/shared/golden"}) {
    if (fs::exists(fs::path(base) / "tokenizer")) return base;
  }
  return "/work/shared/golden";
}

const std::string& Prose() {
  static const std::string text = [] {
    std::string corpus;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator("/usr/share/common-licenses")) {
      if (e.is_regular_file() && !e.is_symlink()) files.push_back(e.path());
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      std::ifstream in(f, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      corpus += ss.str();
    }
    if (corpus.empty()) corpus = "The quick brown fox jumps over the lazy dog.\n";
    std::string out;
    while (out.size() < (1u << 20)) out += corpus;
    return out;
  }();
  return text;
}

const r1::Tokenizer& Get(const std::string& name) {
  static std::unique_ptr<r1::Tokenizer> deepseek, qwen;
  auto& slot = name == "qwen3" ? qwen : deepseek;
  if (!slot) slot = r1::Tokenizer::Load(GoldenDir() + "/tokenizer/" + name);
  return *slot;
}

void BM_Encode(benchmark::State& state, const std::string& name) {
  const r1::Tokenizer& tok = Get(name);
  const std::string& text = Prose();
  std::vector<int32_t> ids;
  for (auto _ : state) {
    ids.clear();
    tok.Encode(text, ids);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * text.size());
  state.counters["tokens"] = static_cast<double>(ids.size());
  state.counters["bytes/token"] = static_cast<double>(text.size()) / ids.size();
}

// Every iteration starts from a freshly loaded tokenizer, so no word is cached yet.
void BM_EncodeColdCache(benchmark::State& state, const std::string& name) {
  const std::string& text = Prose();
  std::vector<int32_t> ids;
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = r1::Tokenizer::Load(GoldenDir() + "/tokenizer/" + name);
    ids.clear();
    state.ResumeTiming();
    tok->Encode(text, ids);
    benchmark::DoNotOptimize(ids.data());
    state.PauseTiming();
    tok.reset();
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * text.size());
}

void BM_Decode(benchmark::State& state, const std::string& name) {
  const r1::Tokenizer& tok = Get(name);
  const std::vector<int32_t> ids = tok.Encode(Prose());
  size_t bytes = 0;
  for (auto _ : state) {
    const std::string text = tok.Decode(ids);
    bytes += text.size();
    benchmark::DoNotOptimize(text.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}

void BM_Load(benchmark::State& state, const std::string& name) {
  for (auto _ : state) {
    auto tok = r1::Tokenizer::Load(GoldenDir() + "/tokenizer/" + name);
    benchmark::DoNotOptimize(tok.get());
  }
}

BENCHMARK_CAPTURE(BM_Encode, deepseek_v3, std::string("deepseek_v3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Encode, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_EncodeColdCache, deepseek_v3, std::string("deepseek_v3"))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK_CAPTURE(BM_EncodeColdCache, qwen3, std::string("qwen3"))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK_CAPTURE(BM_Decode, deepseek_v3, std::string("deepseek_v3"))->Unit(benchmark::kMillisecond);
BENCHMARK_CAPTURE(BM_Load, deepseek_v3, std::string("deepseek_v3"))
    ->Unit(benchmark::kMillisecond)
    ->Iterations(3);
BENCHMARK_CAPTURE(BM_Load, qwen3, std::string("qwen3"))->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

BENCHMARK_MAIN();
