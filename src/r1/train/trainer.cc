#include "r1/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>

#include "r1/core/error.h"
#include "r1/tokenizer/chat_template.h"
#include "r1/tokenizer/tokenizer.h"
#include "r1/train/checkpoint.h"
#include "r1/train/data.h"
#include "r1/train/optimizer.h"
#include "r1/train/params.h"
#include "r1/train/schedule.h"
#include "r1/train/train_model.h"

namespace fs = std::filesystem;

namespace r1 {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

namespace {

// Options a resumed run may change: where things go and how often, and how far to train.
const char* const kResumeFree[] = {"steps", "out", "log", "eval_every", "eval_batches",
                                   "save_every", "force", "stop_after", "threads", "quiet"};

bool ResumeFree(const std::string& key) {
  for (const char* k : kResumeFree)
    if (key == k) return true;
  return false;
}

bool NeedsTokenizer(const TrainOptions& o) {
  auto text = [](const std::string& f) { return fs::path(f).extension() != ".safetensors"; };
  return std::any_of(o.data.begin(), o.data.end(), text) ||
         std::any_of(o.eval_data.begin(), o.eval_data.end(), text);
}

void CheckOptions(const TrainOptions& o) {
  auto bad = [](const std::string& m) { throw Error(m); };
  if (o.init_dir.empty() == o.resume_dir.empty())
    bad(o.init_dir.empty() ? "give --init DIR (a model folder) or --resume DIR (a checkpoint)"
                           : "--init and --resume contradict each other: a resumed run takes "
                             "its weights from the checkpoint");
  if (o.out_dir.empty()) bad("--out DIR is required (checkpoints are written there)");
  if (o.data.empty()) bad("--data FILE is required");
  if (o.steps <= 0) bad("--steps must be positive");
  if (o.batch <= 0) bad("--batch must be positive");
  if (o.seq_len < 0) bad("--seq-len must be positive");
  if (o.grad_accum <= 0) bad("--grad-accum must be at least 1");
  if (!(o.lr > 0)) bad("--lr must be positive");
  if (!(o.beta1 >= 0 && o.beta1 < 1) || !(o.beta2 >= 0 && o.beta2 < 1))
    bad("--beta1 and --beta2 must be in [0, 1)");
  if (!(o.eps > 0)) bad("--eps must be positive");
  if (!(o.weight_decay >= 0)) bad("--weight-decay must not be negative");
  if (!(o.clip >= 0)) bad("--clip must not be negative (0 turns clipping off)");
  if (!(o.bias_update_speed >= 0)) bad("--bias-update-speed must not be negative");
  if (!(o.balance_loss >= 0)) bad("--balance-loss must not be negative");
  if (o.warmup < 0) bad("--warmup must not be negative");
  if (o.warmup > o.steps)
    bad("--warmup " + std::to_string(o.warmup) + " is longer than --steps " +
        std::to_string(o.steps));
  if (o.eval_every < 0 || o.save_every < 0) bad("--eval-every and --save-every must not be negative");
  if (o.eval_fraction >= 1) bad("--eval-split must be below 1");
  if (o.eval_every == 0 && !o.eval_data.empty())
    bad("--eval-data is given but --eval-every is 0: say how often to evaluate");
  if (o.sft && !o.chat_template.empty() && o.data.empty()) bad("--sft needs --data");
  if (!o.sft && !o.chat_template.empty()) bad("--chat-template only applies with --sft");
}

// A folder that already holds something may only be reused for the run it belongs to.
void CheckOutDir(const TrainOptions& o) {
  std::error_code ec;
  if (!o.log_path.empty()) {
    const fs::path log = fs::weakly_canonical(o.log_path, ec);
    const fs::path out = fs::weakly_canonical(o.out_dir, ec);
    if (log.parent_path() == out)
      throw Error("--log " + o.log_path + " is inside --out " + o.out_dir +
                  ", which each checkpoint replaces whole; write the log beside it");
  }
  if (!fs::exists(o.out_dir, ec)) return;
  if (!fs::is_directory(o.out_dir, ec)) throw Error(o.out_dir + ": exists and is not a folder");
  if (fs::is_empty(o.out_dir, ec)) return;
  if (!o.resume_dir.empty() && fs::equivalent(o.out_dir, o.resume_dir, ec)) return;
  if (o.force && IsCheckpoint(o.out_dir)) return;
  if (IsCheckpoint(o.out_dir))
    throw Error(o.out_dir + ": already holds a checkpoint; continue it with --resume " +
                o.out_dir + ", or pass --force to replace it");
  throw Error(o.out_dir + ": exists and holds other files; choose a new or empty folder");
}

std::string TokenizerSource(const TrainOptions& o, const std::string& model_dir) {
  if (!o.tokenizer.empty()) return o.tokenizer;
  if (fs::exists(fs::path(model_dir) / "tokenizer.json")) return model_dir;
  return "";
}

// The baseline a model must beat to have learned anything from context: the cross-entropy of
// the training targets' unigram distribution (add-one smoothed), on the training targets
// themselves (the entropy) and on the held-out targets.
struct UnigramBaseline {
  double train = 0, eval = -1;
};

UnigramBaseline Unigram(const DataSet& data, int64_t vocab) {
  std::vector<double> count(vocab, 1.0);
  double total = static_cast<double>(vocab);
  auto each_target = [](const DataSet::Rows& rows, auto&& fn) {
    const int64_t w = rows.width;
    for (int64_t r = 0; r < rows.count(); ++r)
      for (int64_t i = 0; i + 1 < w; ++i)
        if (rows.mask[r * (w - 1) + i]) fn(rows.tokens[r * w + i + 1]);
  };
  each_target(data.train_data(), [&](int32_t t) {
    count[t] += 1;
    total += 1;
  });
  UnigramBaseline u;
  double n = 0;
  each_target(data.train_data(), [&](int32_t t) {
    u.train -= std::log(count[t] / total);
    n += 1;
  });
  u.train /= std::max(1.0, n);
  if (data.eval_rows() > 0) {
    double m = 0, sum = 0;
    each_target(data.eval_data(), [&](int32_t t) {
      sum -= std::log(count[t] / total);
      m += 1;
    });
    u.eval = sum / std::max(1.0, m);
  }
  return u;
}

}  // namespace

json TrainOptions::ToJson() const {
  return json{{"data", data},
              {"eval_data", eval_data},
              {"sft", sft},
              {"shuffle", shuffle},
              {"seed", seed},
              {"eval_fraction", eval_fraction},
              {"steps", steps},
              {"batch", batch},
              {"seq_len", seq_len},
              {"grad_accum", grad_accum},
              {"lr", lr},
              {"beta1", beta1},
              {"beta2", beta2},
              {"eps", eps},
              {"weight_decay", weight_decay},
              {"schedule", schedule},
              {"warmup", warmup},
              {"min_lr_ratio", min_lr_ratio},
              {"decay_fraction", decay_fraction},
              {"clip", clip},
              {"bias_update_speed", bias_update_speed},
              {"balance_loss", balance_loss},
              {"mtp_weight", mtp_weight},
              {"tokenizer", tokenizer},
              {"chat_template", chat_template}};
}

void TrainOptions::FromJson(const json& j) {
  auto get = [&](const char* k, auto& v) {
    if (j.contains(k) && !j[k].is_null()) v = j[k].get<std::decay_t<decltype(v)>>();
  };
  get("data", data);
  get("eval_data", eval_data);
  get("sft", sft);
  get("shuffle", shuffle);
  get("seed", seed);
  get("eval_fraction", eval_fraction);
  get("batch", batch);
  get("seq_len", seq_len);
  get("grad_accum", grad_accum);
  get("lr", lr);
  get("beta1", beta1);
  get("beta2", beta2);
  get("eps", eps);
  get("weight_decay", weight_decay);
  get("schedule", schedule);
  get("warmup", warmup);
  get("min_lr_ratio", min_lr_ratio);
  get("decay_fraction", decay_fraction);
  get("clip", clip);
  get("bias_update_speed", bias_update_speed);
  get("balance_loss", balance_loss);
  get("mtp_weight", mtp_weight);
  get("tokenizer", tokenizer);
  get("chat_template", chat_template);
}

TrainResult RunTraining(TrainOptions o, const TrainCallbacks& cb) {
  auto say = [&](const std::string& m) {
    if (cb.message) cb.message(m);
  };
  // ---- Everything is checked before the first step; nothing is written until then. ----
  TrainerState resumed;
  if (!o.resume_dir.empty() && o.init_dir.empty()) {
    resumed = ReadTrainerState(o.resume_dir);
    TrainOptions stored;
    stored.FromJson(resumed.options);
    const json given = o.ToJson(), kept = stored.ToJson();
    for (const std::string& key : o.explicit_options) {
      if (ResumeFree(key) || !given.contains(key)) continue;
      if (given[key] != kept[key])
        throw Error("--" + key + " " + given[key].dump() + " contradicts the checkpoint's " +
                    kept[key].dump() + "; a resumed run keeps its settings (only --steps, "
                    "--out, --log, --eval-every, --eval-batches, --save-every and --stop-after "
                    "may change)");
    }
    const TrainOptions mine = o;
    o = stored;
    o.resume_dir = mine.resume_dir;
    o.steps = mine.steps;
    o.out_dir = mine.out_dir;
    o.force = mine.force;
    o.log_path = mine.log_path;
    o.eval_every = mine.eval_every;
    o.eval_batches = mine.eval_batches;
    o.save_every = mine.save_every;
    o.stop_after = mine.stop_after;
    if (o.steps <= resumed.step)
      throw Error("the checkpoint has already done " + std::to_string(resumed.step) +
                  " steps; give a larger --steps to continue");
  }
  CheckOptions(o);
  CheckOutDir(o);
  ScheduleOptions sched;
  sched.kind = ParseSchedule(o.schedule);
  sched.lr = o.lr;
  sched.warmup = o.warmup;
  sched.total_steps = o.steps;
  sched.min_lr_ratio = o.min_lr_ratio;
  sched.decay_fraction = o.decay_fraction;
  LearningRate(sched, 0);  // validates

  const std::string model_dir = o.resume_dir.empty() ? o.init_dir : o.resume_dir;
  Config cfg;
  ParamSet params;
  AdamWOptions adam{o.lr, o.beta1, o.beta2, o.eps, o.weight_decay};
  AdamW opt;
  if (o.resume_dir.empty()) {
    params = ParamSet::FromDir(o.init_dir, &cfg);
    opt = AdamW(params, adam);
  } else {
    LoadCheckpoint(o.resume_dir, &cfg, &params, &opt, &resumed);
    opt.set_options(adam);
  }
  const bool has_moe = cfg.n_routed_experts > 0;
  if (o.balance_loss > 0 && !has_moe)
    throw Error("--balance-loss needs a mixture-of-experts model; " + model_dir + " has none");
  if (o.mtp_weight > 0 && params.mtp_modules() == 0)
    throw Error("--mtp-weight needs multi-token-prediction modules; " + model_dir +
                " has none (num_nextn_predict_layers = 0, or their weights are missing)");
  if (o.mtp_weight < 0) o.mtp_weight = params.mtp_modules() > 0 ? 0.3 : 0.0;

  if (cfg.max_position_embeddings > 0 && o.seq_len > cfg.max_position_embeddings)
    throw Error("--seq-len " + std::to_string(o.seq_len) +
                " exceeds the model's max_position_embeddings " +
                std::to_string(cfg.max_position_embeddings));
  std::unique_ptr<Tokenizer> tok;
  const std::string tok_source = TokenizerSource(o, model_dir);
  if (NeedsTokenizer(o) || o.sft) {
    if (tok_source.empty())
      throw Error("text data needs a tokenizer: " + model_dir +
                  " has no tokenizer.json; pass --tokenizer FILE");
    tok = Tokenizer::Load(tok_source);
    if (tok->vocab_size() > cfg.vocab_size)
      throw Error("the tokenizer has " + std::to_string(tok->vocab_size()) +
                  " tokens but the model's vocabulary is " + std::to_string(cfg.vocab_size));
  }
  std::unique_ptr<ChatTemplate> chat;
  if (o.sft) {
    chat = std::make_unique<ChatTemplate>(
        o.chat_template.empty() ? ChatTemplate::ForModel(tok->chat_template(), ModelTypeName(cfg.arch))
                                : ChatTemplate::FromFlag(o.chat_template));
  }
  DataOptions dopt;
  dopt.files = o.data;
  dopt.eval_files = o.eval_data;
  dopt.sft = o.sft;
  dopt.seq_len = o.seq_len;
  dopt.batch = o.batch;
  dopt.shuffle = o.shuffle;
  dopt.seed = o.seed;
  dopt.eval_fraction =
      o.eval_fraction >= 0 ? o.eval_fraction : (o.eval_every > 0 && o.eval_data.empty() ? 0.05 : 0.0);
  dopt.vocab_size = cfg.vocab_size;
  DataSet data = DataSet::Build(dopt, tok.get(), chat.get(), cb.load_progress);
  const int64_t T = data.seq_len();
  if (cfg.max_position_embeddings > 0 && T > cfg.max_position_embeddings)
    throw Error("--seq-len " + std::to_string(T) + " exceeds the model's max_position_embeddings " +
                std::to_string(cfg.max_position_embeddings));
  if (o.eval_every > 0 && data.eval_rows() == 0)
    throw Error("--eval-every needs held-out rows: give --eval-data or a larger --eval-split");
  if (!o.resume_dir.empty()) data.RestoreState(resumed.data_state);
  for (const auto& w : data.warnings()) say("warning: " + w);
  say(data.summary());
  const UnigramBaseline unigram = Unigram(data, cfg.vocab_size);
  {
    char buf[160];
    std::snprintf(buf, sizeof buf, "unigram baseline: %.3f nats/token on the training data%s",
                  unigram.train,
                  unigram.eval >= 0
                      ? (", " + std::to_string(unigram.eval).substr(0, 5) + " on the held-out data").c_str()
                      : "");
    say(buf);
  }

  TrainModel model(cfg, params);
  const auto biases = model.RouterBiases();
  const bool any_bias = std::any_of(biases.begin(), biases.end(), [](Param* p) { return p; });
  say("model: " + std::string(ArchName(cfg.arch)) + ", " + std::to_string(params.NumElements()) +
      " parameters" + (params.mtp_modules() ? ", " + std::to_string(params.mtp_modules()) +
                                                  " MTP module(s), weight " +
                                                  std::to_string(o.mtp_weight).substr(0, 4)
                                            : std::string()) +
      "; " + std::to_string(o.steps) + " steps of " + std::to_string(o.batch * o.grad_accum) +
      " x " + std::to_string(T) + " tokens");

  std::ofstream log;
  if (!o.log_path.empty()) {
    const bool append = !o.resume_dir.empty();
    log.open(o.log_path, append ? std::ios::app : std::ios::trunc);
    if (!log) throw Error(o.log_path + ": cannot open for writing");
  }
  auto write_log = [&](const ojson& line) {
    if (log.is_open()) {
      log << line.dump() << "\n";
      log.flush();
    }
  };

  // ---- Training. ----
  TrainResult result;
  const int64_t start = o.resume_dir.empty() ? 0 : resumed.step;
  const auto t_start = std::chrono::steady_clock::now();
  double last_eval = resumed.extra.is_object() && resumed.extra.contains("eval_loss")
                         ? resumed.extra["eval_loss"].get<double>()
                         : -1;
  LossOptions lopt;
  lopt.balance_alpha = o.balance_loss;
  lopt.mtp_weight = o.mtp_weight;
  lopt.grad_scale = 1.0 / static_cast<double>(o.grad_accum);

  auto evaluate = [&](int64_t step) {
    double sum = 0;
    int64_t count = 0;
    for (const Batch& b : data.EvalBatches(o.eval_batches)) {
      LossOptions eo;
      const StepStats st = model.Step({b.B, b.T, b.tokens.data(), b.loss_mask.data()}, eo, false);
      sum += st.loss * static_cast<double>(st.targets);
      count += st.targets;
    }
    last_eval = count ? sum / static_cast<double>(count) : 0.0;
    ojson line;
    line["step"] = step;
    line["eval_loss"] = last_eval;
    line["eval_ppl"] = std::exp(last_eval);
    line["eval_tokens"] = count;
    if (unigram.eval >= 0) line["unigram_eval_loss"] = unigram.eval;
    write_log(line);
    if (cb.on_eval) cb.on_eval(line);
  };
  auto save = [&](int64_t step, double loss) {
    TrainerState st;
    st.step = step;
    st.options = o.ToJson();
    st.data_state = data.SaveState();
    st.extra = json{{"loss", loss}};
    if (last_eval >= 0) st.extra["eval_loss"] = last_eval;
    SaveCheckpoint(o.out_dir, cfg, params, opt, st, tok_source);
  };

  int64_t step = start;
  double loss = 0;
  for (; step < o.steps; ++step) {
    if ((cb.stop && cb.stop->load()) || (o.stop_after > 0 && step - start >= o.stop_after)) {
      result.stopped_early = true;
      break;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const double lr = LearningRate(sched, step);
    params.ZeroGrad();
    StepStats total;
    int64_t tokens = 0;
    for (int64_t m = 0; m < o.grad_accum; ++m) {
      const Batch b = data.Next();
      const StepStats st = model.Step({b.B, b.T, b.tokens.data(), b.loss_mask.data()}, lopt, true);
      const double w = 1.0 / static_cast<double>(o.grad_accum);
      total.loss += w * st.loss;
      total.mtp_loss += w * st.mtp_loss;
      total.balance_loss += w * st.balance_loss;
      total.targets += st.targets;
      tokens += b.B * b.T;
      if (total.expert_load.empty()) {
        total.expert_load = st.expert_load;
      } else {
        for (size_t l = 0; l < st.expert_load.size(); ++l)
          for (size_t e = 0; e < st.expert_load[l].size(); ++e)
            total.expert_load[l][e] += st.expert_load[l][e];
      }
    }
    const double grad_norm = ClipGradNorm(params, o.clip);
    if (!std::isfinite(total.loss) || !std::isfinite(grad_norm))
      throw Error("step " + std::to_string(step + 1) + ": the loss or the gradient is not finite (loss " +
                  std::to_string(total.loss) + ", gradient norm " + std::to_string(grad_norm) +
                  "); lower --lr or set --clip; the last checkpoint in " + o.out_dir +
                  " is unchanged");
    opt.Step(params, lr);
    if (any_bias && o.bias_update_speed > 0)
      UpdateRouterBiases(biases, total.expert_load, o.bias_update_speed);
    loss = total.loss;
    const auto t1 = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(t1 - t0).count();

    TrainStepInfo info;
    info.step = step + 1;
    info.total_steps = o.steps;
    info.loss = total.loss;
    info.lr = lr;
    info.grad_norm = grad_norm;
    info.tokens_per_s = static_cast<double>(tokens) / std::max(dt, 1e-9);
    info.elapsed_s = std::chrono::duration<double>(t1 - t_start).count();
    ojson line;
    line["step"] = info.step;
    line["loss"] = total.loss;
    line["lr"] = lr;
    line["grad_norm"] = grad_norm;
    line["tokens_per_s"] = info.tokens_per_s;
    line["elapsed_s"] = info.elapsed_s;
    line["epoch"] = data.epoch();
    if (lopt.mtp_weight > 0) line["mtp_loss"] = total.mtp_loss;
    if (o.balance_loss > 0) line["balance_loss"] = total.balance_loss;
    if (!total.expert_load.empty()) {
      // MaxVio (V3 §2.3): how far the busiest expert is above the mean load, per MoE layer.
      ojson per_layer = ojson::array();
      double worst = 0;
      for (const auto& l : total.expert_load) {
        if (l.empty()) continue;
        double mean = 0, mx = 0;
        for (int64_t c : l) {
          mean += static_cast<double>(c);
          mx = std::max(mx, static_cast<double>(c));
        }
        mean /= static_cast<double>(l.size());
        const double vio = mean > 0 ? mx / mean - 1 : 0;
        per_layer.push_back(vio);
        worst = std::max(worst, vio);
      }
      line["max_vio"] = worst;
      line["max_vio_layers"] = per_layer;
      line["expert_load"] = total.expert_load;
    }
    info.line = line;
    write_log(line);
    if (step == start) {
      // After the first step every buffer has its working size.
      const double mb = 1.0 / (1 << 20), w = static_cast<double>(params.NumElements()) * 4 * mb;
      char buf[200];
      std::snprintf(buf, sizeof buf,
                    "memory: weights %.1f MB, gradients %.1f MB, AdamW moments %.1f MB, "
                    "saved activations %.1f MB",
                    w, w, 2 * w, static_cast<double>(model.ActivationBytes()) * mb);
      say(buf);
    }
    if (cb.on_step) cb.on_step(info);
    result.last_loss = loss;

    const bool last = step + 1 == o.steps;
    if (o.eval_every > 0 && ((step + 1) % o.eval_every == 0 || last)) evaluate(step + 1);
    if ((o.save_every > 0 && (step + 1) % o.save_every == 0) || last) {
      save(step + 1, loss);
      say("saved step " + std::to_string(step + 1) + " to " + o.out_dir);
    }
  }
  if (result.stopped_early && step > start) {
    save(step, loss);
    say("stopped at step " + std::to_string(step) + "; saved to " + o.out_dir +
        "; continue with: r1 train --resume " + o.out_dir + " --out " + o.out_dir + " --steps " +
        std::to_string(o.steps));
  }
  result.steps_done = step;
  result.last_eval_loss = last_eval;
  return result;
}

}  // namespace r1
