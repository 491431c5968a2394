// Training curves: reading the trainer's JSON-lines log and drawing it as an SVG (`r1 plot`).
//
// The log holds one JSON object a line, e.g.
//   {"step": 12, "loss": 3.41, "lr": 0.001, "grad_norm": 0.8, "tokens_per_s": 5120.3}
//   {"step": 50, "eval_loss": 3.2}
// Every numeric field except "step" is a series of (step, value) points; strings, booleans,
// nulls, arrays and objects are ignored, and a line may have any subset of the fields. Lines
// without a numeric "step" add nothing. Points are ordered by step; when a step repeats (a run
// resumed from an earlier checkpoint appends to the same log) the later line wins. NaN, Infinity
// and -Infinity (which Python's json writes, JSON lacks) are read as missing, with a warning.
//
// The picture: one panel per series in a grid (small multiples) sharing the step axis; series
// whose names differ by a prefix ending in '_' share a panel (loss, eval_loss, mtp_loss; lr and
// min_lr) when their typical (median) sizes are within 10x of each other (balance_loss gets a
// panel of its own), each with its own colour and a legend. The loss, lr and grad_norm panels
// come first, the rest in order of first appearance. Several logs overlay: each file gets a
// colour, the series in a panel a dash pattern, and a legend at the top names the files. Series of
// few points (evaluations) get markers on their line. No dependencies: the SVG is written as text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace r1 {

struct PlotSeries {
  std::string name;
  std::vector<double> steps, values;  // same length, steps ascending and distinct
};

struct TrainLog {
  std::string path;
  std::string label;                  // legend name: the file name without folders
  std::vector<PlotSeries> series;     // in the order the keys first appear in the file
  int64_t lines = 0;                  // non-blank lines read
  std::vector<std::string> warnings;  // e.g. "log.jsonl:101: truncated last line ignored"
  const PlotSeries* Find(const std::string& name) const;
};

// Parses a log held in memory; `path` names it in messages. Throws r1::Error naming path:line
// for a line that is not a JSON object, except that an unfinished last line (a run killed while
// writing it: a '{' whose JSON ends early) is dropped with a warning. Does not require series.
TrainLog ParseTrainLog(const std::string& text, const std::string& path);
// Reads and parses a file; throws r1::Error when it cannot be read.
TrainLog ReadTrainLog(const std::string& path);

struct PlotOptions {
  std::string title;                // empty: the file names
  std::vector<std::string> series;  // empty: every series, in order of first appearance
  bool log_y = false;               // log-scale value axes (a panel with values <= 0 stays linear)
  int columns = 0;                  // panels per row; 0 picks 1-3 from the panel count
  int panel_width = 440, panel_height = 280;  // pixels, each panel with its margins
  size_t marker_max_points = 60;              // series with at most this many points get markers
  // Exponential moving average weight in [0, 1) for the noisy series (IsNoisy) with more points
  // than that: the smoothed line is drawn over the raw one, which stays faint behind it. 0: off.
  double smooth = 0;
};

// The smoothed values drawn with PlotOptions::smooth: an exponential moving average with the
// start-up bias removed (as TensorBoard's smoothing), s_i = m_i / (1 - w^(i+1)) with
// m_i = w m_(i-1) + (1 - w) v_i, m_(-1) = 0.
std::vector<double> SmoothEma(const std::vector<double>& values, double weight);
// Whether smoothing would help: the median distance of a point from the midpoint of its
// neighbours is over 0.1% of the series' range (a learning-rate schedule is not noisy, a loss
// is).
bool IsNoisy(const PlotSeries& s);

// Which series share a panel: groups of indices into `names`, in order of first member. A name
// joins the panel of the longest other name it ends with after a '_' (eval_loss and mtp_loss
// join loss; eval_mtp_loss joins mtp_loss, so the same panel), applied transitively.
std::vector<std::vector<size_t>> GroupSeriesIntoPanels(const std::vector<std::string>& names);

// Tick positions for an axis over [lo, hi]: multiples of 1, 2 or 5 x 10^k, about `target` of
// them, all inside [lo, hi]. `step_out` gets the spacing (for FormatTick).
std::vector<double> NiceTicks(double lo, double hi, int target, double* step_out = nullptr);
// A tick label: as few decimals as the spacing needs ("0.25", "1500", "12k" for large round
// numbers, "2e-05" for tiny ones).
std::string FormatTick(double value, double spacing);

// Reduces a long series for drawing: at most about 4 points per pixel column of `columns`
// (first, lowest, highest and last of the column, in step order), so spikes survive. Series with
// no more than 4 * columns points are returned as they are.
PlotSeries DecimateForWidth(const PlotSeries& s, double x_lo, double x_hi, int columns);

// The whole picture as an SVG document. Throws r1::Error when no selected series has a point,
// or when options.series names a series no log has (the message lists those there are).
std::string RenderTrainPlotSvg(const std::vector<TrainLog>& logs, const PlotOptions& options);

}  // namespace r1
