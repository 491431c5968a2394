// r1 train: pretraining and SFT of a model folder, with checkpoints that resume bit for bit.
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdio>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/core/progress.h"
#include "r1/train/trainer.h"

namespace r1::cli {

namespace {

std::atomic<bool> g_stop{false};

void OnInterrupt(int) {
  // A second Ctrl-C kills at once; the first asks for a clean stop with a checkpoint.
  if (g_stop.exchange(true)) std::_Exit(130);
}

std::string Duration(double s) {
  char buf[32];
  const int t = static_cast<int>(s + 0.5);
  if (t < 60) {
    std::snprintf(buf, sizeof buf, "%ds", t);
  } else if (t < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", t / 3600, (t / 60) % 60);
  }
  return buf;
}

struct TrainArgs {
  TrainOptions o;
  int threads = 0;
  bool no_shuffle = false, quiet = false;
};

int RunTrain(TrainArgs& a, CLI::App* cmd) {
  ApplyThreads(a.threads);
  a.o.shuffle = !a.no_shuffle;
  // Flags given on the command line, by their JSON names, for the resume consistency check.
  for (const CLI::Option* opt : cmd->get_options()) {
    if (opt->count() == 0 || opt->get_lnames().empty()) continue;
    std::string name = opt->get_lnames()[0];
    for (char& c : name)
      if (c == '-') c = '_';
    if (name == "no_shuffle") name = "shuffle";
    if (name == "eval_split") name = "eval_fraction";
    a.o.explicit_options.push_back(name);
  }
  const bool tty = isatty(2);
  TrainCallbacks cb;
  cb.message = [&](const std::string& m) {
    if (!a.quiet) std::fprintf(stderr, "%s%s\n", tty ? "\r\033[K" : "", m.c_str());
  };
  std::unique_ptr<Progress> data_progress;
  cb.load_progress = [&](double f) {
    if (!data_progress) data_progress = std::make_unique<Progress>("preparing data", 1.0, a.quiet);
    if (f >= 1.0) {
      data_progress->Finish();
    } else {
      data_progress->Update(f);
    }
  };
  int64_t printed = 0;
  cb.on_step = [&](const TrainStepInfo& s) {
    if (a.quiet) return;
    const double per_step = s.elapsed_s / static_cast<double>(++printed);
    const double eta = per_step * static_cast<double>(s.total_steps - s.step);
    char line[256];
    std::snprintf(line, sizeof line,
                  "step %lld/%lld | loss %.4f | lr %.2e | grad %.3f | %.0f tok/s | ETA %s",
                  static_cast<long long>(s.step), static_cast<long long>(s.total_steps), s.loss,
                  s.lr, s.grad_norm, s.tokens_per_s, Duration(eta).c_str());
    if (tty) {
      std::fprintf(stderr, "\r\033[K%s", line);
      if (s.step == s.total_steps) std::fprintf(stderr, "\n");
    } else {
      // Plain logs: about twenty lines over the run.
      const int64_t every = std::max<int64_t>(1, s.total_steps / 20);
      if (s.step % every == 0 || s.step == s.total_steps || printed == 1)
        std::fprintf(stderr, "%s\n", line);
    }
  };
  cb.on_eval = [&](const nlohmann::ordered_json& e) {
    if (a.quiet) return;
    std::fprintf(stderr, "%sstep %lld | eval loss %.4f | eval ppl %.2f\n", tty ? "\r\033[K" : "",
                 static_cast<long long>(e["step"].get<int64_t>()), e["eval_loss"].get<double>(),
                 e["eval_ppl"].get<double>());
  };
  cb.stop = &g_stop;
  std::signal(SIGINT, OnInterrupt);
  const TrainResult r = RunTraining(a.o, cb);
  std::signal(SIGINT, SIG_DFL);
  if (r.stopped_early) return g_stop.load() ? 130 : 0;
  if (!a.quiet)
    std::fprintf(stderr, "done: %lld steps, last loss %.4f%s; model in %s\n",
                 static_cast<long long>(r.steps_done), r.last_loss,
                 r.last_eval_loss >= 0
                     ? (", eval loss " + std::to_string(r.last_eval_loss).substr(0, 6)).c_str()
                     : "",
                 a.o.out_dir.c_str());
  return 0;
}

}  // namespace

void AddTrain(CLI::App& app, Action& action) {
  auto a = std::make_shared<TrainArgs>();
  TrainOptions& o = a->o;
  auto* cmd = app.add_subcommand(
      "train",
      "Train a model folder (pretraining on text, or SFT on chat conversations) with AdamW, "
      "auxiliary-loss-free MoE balancing and multi-token prediction; checkpoints in --out are "
      "model folders that every command loads, and resume bit for bit.\n"
      "Example: r1 init --preset v3-nano --tokenizer tok/ --out runs/init && "
      "r1 train --init runs/init --data corpus.txt --seq-len 128 --batch 16 --steps 500 "
      "--out runs/nano --log runs/nano.jsonl");
  cmd->add_option("--init", o.init_dir, "Model folder to start from (e.g. from r1 init)");
  cmd->add_option("--resume", o.resume_dir,
                  "Checkpoint folder to continue (its settings are kept; --steps is the new total)");
  cmd->add_option("--data", o.data,
                  "Training data (repeatable): .txt, .jsonl {\"text\"} or {\"messages\"} with "
                  "--sft, or pre-tokenized .safetensors (input_ids [N, L])")
      ->take_all();
  cmd->add_option("--eval-data", o.eval_data, "Held-out data for evaluation (repeatable)");
  cmd->add_option("--eval-split", o.eval_fraction,
                  "Share of the data held out for evaluation when no --eval-data (default 0.05 "
                  "with --eval-every)");
  cmd->add_flag("--sft", o.sft, "Supervised fine-tuning: loss only on assistant tokens");
  cmd->add_option("--chat-template", o.chat_template,
                  "Template name or file for --sft (default: the model's)");
  cmd->add_option("--tokenizer", o.tokenizer,
                  "tokenizer.json or its folder (default: the model folder's)");
  cmd->add_option("--steps", o.steps, "Total optimizer steps")->required();
  cmd->add_option("--batch", o.batch, "Sequences per micro-batch (default 8)");
  cmd->add_option("--seq-len", o.seq_len,
                  "Tokens per sequence (targets); taken from pre-tokenized data when omitted");
  cmd->add_option("--grad-accum", o.grad_accum, "Micro-batches per optimizer step (default 1)");
  cmd->add_option("--lr", o.lr, "Peak learning rate (default 1e-3)");
  cmd->add_option("--beta1", o.beta1, "AdamW beta1 (default 0.9)");
  cmd->add_option("--beta2", o.beta2, "AdamW beta2 (default 0.95, as DeepSeek-V3)");
  cmd->add_option("--eps", o.eps, "AdamW epsilon (default 1e-8)");
  cmd->add_option("--weight-decay", o.weight_decay,
                  "Decoupled weight decay on 2-D weights (default 0.1)");
  cmd->add_option("--schedule", o.schedule,
                  "constant | cosine (warm-up, cosine to lr*min-lr-ratio) | wsd (warm-up, "
                  "stable, decay) (default cosine)")
      ->check(CLI::IsMember({"constant", "cosine", "wsd"}));
  cmd->add_option("--warmup", o.warmup, "Linear warm-up steps (default 0)");
  cmd->add_option("--min-lr-ratio", o.min_lr_ratio, "Final lr as a share of --lr (default 0.1)");
  cmd->add_option("--decay-fraction", o.decay_fraction,
                  "wsd: share of the steps spent decaying (default 0.1)");
  cmd->add_option("--clip", o.clip, "Clip the global gradient norm (default 1.0; 0 = none)");
  cmd->add_option("--bias-update-speed", o.bias_update_speed,
                  "gamma of the auxiliary-loss-free balancing bias update (default 0.001)");
  cmd->add_option("--balance-loss", o.balance_loss,
                  "alpha of the sequence-wise balance loss (default 0 = off; V3 used 1e-4)");
  cmd->add_option("--mtp-weight", o.mtp_weight,
                  "lambda of the multi-token-prediction loss (default 0.3 when the model has "
                  "MTP modules; 0 turns it off)");
  cmd->add_flag("--no-shuffle", a->no_shuffle,
                "Use rows in file order: step s takes rows s*B .. s*B+B-1");
  cmd->add_option("--seed", o.seed, "Seed of the data order (default 0)");
  cmd->add_option("--eval-every", o.eval_every, "Evaluate every N steps (default 0 = never)");
  cmd->add_option("--eval-batches", o.eval_batches, "Batches per evaluation (default 50)");
  cmd->add_option("--save-every", o.save_every,
                  "Checkpoint every N steps (default 0: only at the end and on Ctrl-C)");
  cmd->add_option("--stop-after", o.stop_after,
                  "Stop with a checkpoint after N steps of this run (resume later; the schedule "
                  "still spans --steps)");
  cmd->add_option("-o,--out", o.out_dir, "Checkpoint folder (holds the latest checkpoint)")
      ->required();
  cmd->add_flag("--force", o.force, "Replace a checkpoint already in --out");
  cmd->add_option("--log", o.log_path,
                  "JSON-lines log: one line per step (step, loss, lr, grad_norm, tokens_per_s, "
                  "...) and per evaluation; plot it with r1 plot");
  cmd->add_flag("-q,--quiet", a->quiet, "No progress output");
  AddThreadsOption(cmd, a->threads);
  cmd->callback([a, cmd, &action] { action = [a, cmd] { return RunTrain(*a, cmd); }; });
}

}  // namespace r1::cli
