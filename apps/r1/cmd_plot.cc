// r1 plot: training curves from the trainer's JSON-lines logs, as an SVG.
#include <cstdio>

#include "commands.h"
#include "r1/core/error.h"
#include "r1/io/safetensors.h"
#include "r1/train/plot.h"

namespace r1::cli {

namespace {
struct PlotArgs {
  std::vector<std::string> files;
  std::string out, series;
  PlotOptions opts;
};

// "loss, eval_loss" -> {"loss", "eval_loss"}.
std::vector<std::string> SplitNames(const std::string& list) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= list.size()) {
    size_t end = list.find(',', pos);
    if (end == std::string::npos) end = list.size();
    const std::string item = list.substr(pos, end - pos);
    const size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(item.substr(b, e - b + 1));
    pos = end + 1;
  }
  return out;
}

int RunPlot(PlotArgs& a) {
  a.opts.series = SplitNames(a.series);
  if (!a.series.empty() && a.opts.series.empty()) throw Error("--series: no series names given");
  if (!(a.opts.smooth >= 0 && a.opts.smooth < 1)) {
    throw Error("--smooth: the weight must be in [0, 1), e.g. 0.9 (got " +
                std::to_string(a.opts.smooth) + ")");
  }
  std::vector<TrainLog> logs;
  for (const std::string& f : a.files) {
    logs.push_back(ReadTrainLog(f));
    for (const std::string& w : logs.back().warnings) {
      std::fprintf(stderr, "r1: warning: %s\n", w.c_str());
    }
    if (logs.back().series.empty()) {
      throw Error(f + ": no numeric series (expected lines like {\"step\": 1, \"loss\": 2.5})");
    }
  }
  const std::string svg = RenderTrainPlotSvg(logs, a.opts);
  WriteFileAtomic(a.out, svg);
  size_t lines = 0;  // series drawn, counted per file
  for (const TrainLog& log : logs) {
    if (a.opts.series.empty()) lines += log.series.size();
    for (const std::string& name : a.opts.series) lines += log.Find(name) ? 1 : 0;
  }
  std::printf("wrote %s (%zu file%s, %zu line%s)\n", a.out.c_str(), logs.size(),
              logs.size() == 1 ? "" : "s", lines, lines == 1 ? "" : "s");
  return 0;
}
}  // namespace

void AddPlot(CLI::App& app, Action& action) {
  auto a = std::make_shared<PlotArgs>();
  auto* cmd = app.add_subcommand(
      "plot",
      "Draw training curves from JSON-lines logs (one object a line, e.g. {\"step\": 12, "
      "\"loss\": 3.41, \"lr\": 0.001}) as an SVG: every numeric field except \"step\" against "
      "step, one panel per series in a grid, with series such as loss and eval_loss (or "
      "mtp_loss) sharing a panel. Several files overlay, a colour each. An unfinished last "
      "line (a run stopped mid-write) is skipped with a warning.\n"
      "Example: r1 plot runs/nano/log.jsonl -o runs/nano/curves.svg --series loss,eval_loss,lr "
      "--smooth 0.9");
  cmd->add_option("files", a->files, "Log files (JSONL)")->required()->expected(1, -1);
  cmd->add_option("-o,--out", a->out, "SVG file to write")->required();
  cmd->add_option("--series", a->series,
                  "Comma-separated series to draw, in this order (default: all)");
  cmd->add_flag("--log-y", a->opts.log_y,
                "Logarithmic value axes (panels with values <= 0 stay linear)");
  cmd->add_option("--smooth", a->opts.smooth,
                  "Draw an exponential moving average of weight W in [0, 1) over each dense "
                  "series (the raw line stays, faint); e.g. 0.9");
  cmd->add_option("--title", a->opts.title, "Title (default: the file names)");
  cmd->add_option("--columns", a->opts.columns, "Panels per row (default: 1-3 by count)")
      ->check(CLI::Range(1, 12));
  cmd->callback([a, &action] { action = [a] { return RunPlot(*a); }; });
}

}  // namespace r1::cli
