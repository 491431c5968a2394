// The r1 sub-commands. Each file registers one sub-command on the CLI11 app; the work itself is
// done by the library.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "r1/model/model.h"

namespace r1::cli {

// A sub-command's action, run after parsing succeeded.
using Action = std::function<int()>;

void AddInfo(CLI::App& app, Action& action);
void AddForward(CLI::App& app, Action& action);
void AddGenerate(CLI::App& app, Action& action);
void AddInit(CLI::App& app, Action& action);
void AddBench(CLI::App& app, Action& action);
void AddTokenize(CLI::App& app, Action& action);
void AddTokenizerTrain(CLI::App& app, Action& action);  // `r1 tokenizer train`
void AddTemplate(CLI::App& app, Action& action);
void AddChat(CLI::App& app, Action& action);
void AddPlot(CLI::App& app, Action& action);
void AddTrain(CLI::App& app, Action& action);
void AddQuantize(CLI::App& app, Action& action);
void AddPerplexity(CLI::App& app, Action& action);

// Parses "1,2,3" (spaces allowed) into token ids; throws r1::Error naming `flag` on junk.
std::vector<int32_t> ParseIdList(const std::string& s, const std::string& flag = "--prompt-ids");

// Models of this many weight bytes and more are prefaulted (and readied for 2 MiB pages, or
// copied into memory under R1_MMAP=0) by LoadModel, with a progress bar.
inline constexpr size_t kPrefaultMinBytes = size_t{256} << 20;
// Loads a model folder; for large models, reads the weights in with a progress bar so the first
// step is not an unexplained pause.
std::unique_ptr<Model> LoadModel(const std::string& dir, bool quiet = false);

// Calls fn(line_number, object) for each non-blank line of a JSONL file; a line that is not a
// JSON object is an error naming the file and line. Ordered, because key order can show in
// output (tojson in chat templates).
void ForEachJsonLine(const std::string& path,
                     const std::function<void(int64_t, const nlohmann::ordered_json&)>& fn);

// --threads: 0 = all hardware threads.
void AddThreadsOption(CLI::App* cmd, int& threads);
void ApplyThreads(int threads);

// --bf16-activations: the faster, rounded BF16 prefill products (SetBf16RoundedActivations).
void AddBf16ActivationsOption(CLI::App* cmd);

}  // namespace r1::cli
