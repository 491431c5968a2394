// r1 forward: logits (and hidden states) of a batch of token sequences, as safetensors.
#include <cstring>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/io/safetensors.h"
#include "r1/model/model.h"

namespace r1::cli {

namespace {
struct ForwardArgs {
  std::string model, input, output, mla = "absorbed";
  bool hidden = false;
  int threads = 0;
};

int RunForward(const ForwardArgs& a) {
  ApplyThreads(a.threads);
  auto in = SafetensorsFile::Open(a.input);
  const TensorView* ids_t = in->Find("input_ids");
  if (!ids_t) throw Error(a.input + ": no tensor 'input_ids'");
  if (ids_t->dtype != DType::kI64 || ids_t->shape.size() != 2)
    throw Error(a.input + ": 'input_ids' must be I64 [B, T], got " +
                std::string(DTypeName(ids_t->dtype)) + " " + ids_t->ShapeString());
  const int64_t B = ids_t->shape[0], T = ids_t->shape[1];
  if (B == 0 || T == 0) throw Error(a.input + ": 'input_ids' is empty");

  auto model = LoadModel(a.model, false);
  model->set_mla_mode(a.mla == "naive" ? MlaMode::kNaive : MlaMode::kAbsorbed);
  const Config& cfg = model->config();
  std::vector<int32_t> ids(B * T);
  for (int64_t i = 0; i < B * T; ++i) {
    int64_t v;
    std::memcpy(&v, ids_t->data + 8 * i, 8);
    if (v < 0 || v >= cfg.vocab_size)
      throw Error(a.input + ": input_ids[" + std::to_string(i / T) + ", " + std::to_string(i % T) +
                  "] = " + std::to_string(v) + " is outside the vocabulary of " +
                  std::to_string(cfg.vocab_size));
    ids[i] = static_cast<int32_t>(v);
  }
  KVCache cache = model->NewCache();
  std::vector<SeqChunk> chunks;
  for (int64_t b = 0; b < B; ++b)
    chunks.push_back({cache.AddSequence(), std::span<const int32_t>(ids.data() + b * T, T)});
  StepOutput out;
  model->Step(cache, chunks, {.all_logits = true, .keep_hidden = a.hidden}, out);

  SafetensorsWriter w;
  w.Add("logits", DType::kF32, {B, T, cfg.vocab_size}, out.logits.data());
  if (a.hidden) {
    for (int l = 0; l < cfg.num_hidden_layers; ++l)
      w.Add("hidden.layer" + std::to_string(l), DType::kF32, {B, T, cfg.hidden_size},
            out.hidden[l].data());
  }
  w.Write(a.output);
  return 0;
}
}  // namespace

void AddForward(CLI::App& app, Action& action) {
  auto a = std::make_shared<ForwardArgs>();
  auto* cmd = app.add_subcommand(
      "forward",
      "Run a batch of token sequences through the model and write the logits (and, with "
      "--hidden, the residual stream after every layer) to a safetensors file.\n"
      "Example: r1 forward -m ../shared/golden/qwen2-tiny/model --input in.safetensors -o "
      "out.safetensors --hidden");
  cmd->add_option("-m,--model", a->model, "Model folder (config.json + *.safetensors)")
      ->required();
  cmd->add_option("--input", a->input, "Safetensors file with input_ids I64 [B, T]")->required();
  cmd->add_option("-o,--output", a->output,
                  "Output safetensors: logits F32 [B, T, vocab], hidden.layer{i} F32 [B, T, hidden]")
      ->required();
  cmd->add_flag("--hidden", a->hidden, "Also write hidden.layer{i}");
  cmd->add_option("--mla", a->mla, "MLA form for DeepSeek models: absorbed (default) or naive")
      ->check(CLI::IsMember({"absorbed", "naive"}));
  AddThreadsOption(cmd, a->threads);
  AddBf16ActivationsOption(cmd);
  cmd->callback([a, &action] { action = [a] { return RunForward(*a); }; });
}

}  // namespace r1::cli
