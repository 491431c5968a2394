// The training loop behind `r1 train`: model and data set-up with every check done before the
// first step, gradient accumulation, clipping, AdamW on a schedule, the auxiliary-loss-free bias
// update, evaluation, JSON-lines logging and checkpoints that resume bit for bit.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace r1 {

struct TrainOptions {
  std::string init_dir;    // model folder to start from (exclusive with resume_dir)
  std::string resume_dir;  // checkpoint to continue
  std::string out_dir;     // where checkpoints go (always the latest complete one)
  bool force = false;      // allow replacing an out_dir that holds another run's checkpoint
  std::string log_path;    // JSON lines; appended to when resuming
  std::string tokenizer;   // tokenizer.json or folder; default: the model folder's
  std::string chat_template;  // --sft: template name or file; default: the model's

  std::vector<std::string> data, eval_data;
  bool sft = false;
  bool shuffle = true;
  uint64_t seed = 0;
  double eval_fraction = -1;  // < 0: 0.05 when evaluating without eval_data, else 0

  int64_t steps = 0;  // total optimizer steps (including those before a resume)
  int64_t batch = 8;
  int64_t seq_len = 0;  // 0: from pre-tokenized data, else required
  int64_t grad_accum = 1;

  double lr = 1e-3, beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
  std::string schedule = "cosine";
  int64_t warmup = 0;
  double min_lr_ratio = 0.1;
  double decay_fraction = 0.1;
  double clip = 1.0;                 // global gradient norm; 0 = none
  double bias_update_speed = 0.001;  // gamma of the auxiliary-loss-free balancing
  double balance_loss = 0.0;         // alpha of the sequence-wise balance loss
  double mtp_weight = -1;            // lambda; < 0: 0.3 when the model has MTP modules, else 0

  int64_t eval_every = 0, eval_batches = 50;
  int64_t save_every = 0;
  // Stop (with a checkpoint) after this many steps of this invocation, e.g. to train in
  // sessions; 0 = run to `steps`. The schedule still spans all `steps`.
  int64_t stop_after = 0;

  // JSON names of the options the user set explicitly (flags given). On --resume these must
  // agree with the checkpoint's; the rest are taken from it.
  std::vector<std::string> explicit_options;

  // Options that must stay the same across a resume, as JSON (for trainer_state.json).
  nlohmann::json ToJson() const;
  void FromJson(const nlohmann::json& j);
};

// What each step reports (also written to the log).
struct TrainStepInfo {
  int64_t step = 0, total_steps = 0;
  double loss = 0, lr = 0, grad_norm = 0, tokens_per_s = 0, elapsed_s = 0;
  nlohmann::ordered_json line;  // the full log line
};

struct TrainCallbacks {
  std::function<void(const std::string&)> message;  // set-up summary, warnings, saves
  std::function<void(double)> load_progress;        // data preparation, fraction
  std::function<void(const TrainStepInfo&)> on_step;
  std::function<void(const nlohmann::ordered_json&)> on_eval;
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by Ctrl-C): save and return early
};

struct TrainResult {
  int64_t steps_done = 0;
  bool stopped_early = false;
  double last_loss = 0;
  double last_eval_loss = -1;
};

// Validates everything (flags, model, tokenizer, data, output folder) before the first step;
// throws r1::Error naming the problem, with nothing written. Then trains, writing the log and
// the checkpoints.
TrainResult RunTraining(TrainOptions opts, const TrainCallbacks& cb);

}  // namespace r1
