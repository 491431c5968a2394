#include <cctype>
#include <cstdio>
#include <fstream>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/core/progress.h"
#include "r1/core/thread_pool.h"
#include "r1/io/huge_pages.h"
#include "r1/kernels/gemm_bf16.h"

namespace r1::cli {

std::vector<int32_t> ParseIdList(const std::string& s, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (std::isspace(static_cast<unsigned char>(s[i])) || s[i] == ',')) ++i;
    if (i >= s.size()) break;
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    if (j == i || j - i > 9)
      throw Error(flag + ": expected comma-separated token ids, got '" + s + "'");
    ids.push_back(static_cast<int32_t>(std::stol(s.substr(i, j - i))));
    i = j;
  }
  if (ids.empty()) throw Error(flag + ": no token ids given");
  return ids;
}

std::unique_ptr<Model> LoadModel(const std::string& dir, bool quiet) {
  auto model = Model::Load(dir);
  if (model->store().TotalBytes() >= kPrefaultMinBytes) {
    Progress progress("loading " + dir, 1.0, quiet);
    const size_t reread = model->Prefault([&](double f) { progress.Update(f); });
    progress.Finish();
    if (reread > 0 && !quiet && WeightsInAnonymousMemory()) {
      std::fprintf(stderr,
                   "loading: %.2f GB of weights copied into memory in 2 MiB pages (R1_MMAP=0)\n",
                   static_cast<double>(reread) / 1e9);
    } else if (reread > 0 && !quiet) {
      std::fprintf(stderr,
                   "loading: %.2f GB of weights were cached in 4 KiB pages; read again into "
                   "2 MiB pages for faster decoding (R1_HUGE_PAGES=0 skips this)\n",
                   static_cast<double>(reread) / 1e9);
    }
  }
  return model;
}

void ForEachJsonLine(const std::string& path,
                     const std::function<void(int64_t, const nlohmann::ordered_json&)>& fn) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot open");
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto j = nlohmann::ordered_json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object())
      throw Error(path + ":" + std::to_string(n) + ": not a JSON object");
    fn(n, j);
  }
}

void AddThreadsOption(CLI::App* cmd, int& threads) {
  cmd->add_option("-t,--threads", threads, "Worker threads (0 = all cores)")
      ->check(CLI::Range(0, 1024));
}

void ApplyThreads(int threads) { SetDefaultPoolThreads(threads); }

void AddBf16ActivationsOption(CLI::App* cmd) {
  cmd->add_flag_callback(
      "--bf16-activations", [] { SetBf16RoundedActivations(true); },
      "BF16 weights: round activations to BF16 in prompt (prefill) products, as llama.cpp does: "
      "about 1.8x faster prefill; logits move by ~0.5% of their range instead of ~0.001% "
      "(docs/quantization.md); also R1_BF16_ACTIVATIONS=1");
}

}  // namespace r1::cli
