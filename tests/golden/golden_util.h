// Helpers shared by the golden tests: finding the reference folders and reading tensors.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <gtest/gtest.h>

#include "r1/io/safetensors.h"
#include "r1/model/model.h"

namespace r1::testing {

inline std::string GoldenDir() { return R1_GOLDEN_DIR; }

// Every folder with a golden.safetensors, so held-back folders of other shapes are picked up.
inline std::vector<std::string> GoldenModelFolders() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(GoldenDir(), ec)) {
    if (std::filesystem::exists(e.path() / "golden.safetensors")) out.push_back(e.path().filename());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// One test case per golden folder and attention form: both MLA forms for DeepSeek folders.
struct ModelCase {
  std::string folder;
  MlaMode mode;
  std::string form;  // "absorbed", "naive" or "gqa"
};

inline std::vector<ModelCase> AllModelCases() {
  std::vector<ModelCase> out;
  for (const auto& f : GoldenModelFolders()) {
    const auto cfg = LoadConfig(GoldenDir() + "/" + f + "/model");
    if (cfg.is_deepseek()) {
      out.push_back({f, MlaMode::kAbsorbed, "absorbed"});
      out.push_back({f, MlaMode::kNaive, "naive"});
    } else {
      out.push_back({f, MlaMode::kAbsorbed, "gqa"});
    }
  }
  return out;
}

inline std::string ModelCaseName(const ::testing::TestParamInfo<ModelCase>& info) {
  std::string s = info.param.folder + "_" + info.param.form;
  for (char& c : s)
    if (!isalnum(static_cast<unsigned char>(c))) c = '_';
  return s;
}

inline nlohmann::json ReadJson(const std::string& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

inline std::vector<float> F32(const TensorView& t) {
  std::vector<float> v(t.numel());
  std::memcpy(v.data(), t.data, v.size() * 4);
  return v;
}

inline std::vector<int32_t> I64AsI32(const TensorView& t) {
  std::vector<int32_t> v(t.numel());
  for (size_t i = 0; i < v.size(); ++i) {
    int64_t x;
    std::memcpy(&x, t.data + 8 * i, 8);
    v[i] = static_cast<int32_t>(x);
  }
  return v;
}

inline float MaxAbsDiff(const float* a, const float* b, size_t n) {
  float m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

inline int32_t ArgMax(const float* x, int64_t n) {
  return static_cast<int32_t>(std::max_element(x, x + n) - x);
}

// Logits at every position of B sequences of T ids each, prefilled together in one step.
inline std::vector<float> AllLogits(Model& model, const std::vector<int32_t>& ids, int64_t B,
                                    int64_t T) {
  KVCache cache = model.NewCache();
  std::vector<SeqChunk> chunks;
  for (int64_t b = 0; b < B; ++b)
    chunks.push_back({cache.AddSequence(), std::span<const int32_t>(ids.data() + b * T, T)});
  StepOutput out;
  model.Step(cache, chunks, {.all_logits = true}, out);
  return out.logits;
}

}  // namespace r1::testing
