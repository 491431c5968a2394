#include "r1/train/plot.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <utility>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/io/safetensors.h"

namespace r1 {

namespace {

std::string Basename(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The last `parts` components of a path ("runs/a/log.jsonl", 2 -> "a/log.jsonl").
std::string PathTail(const std::string& path, int parts) {
  size_t pos = path.size();
  for (int i = 0; i < parts; ++i) {
    if (pos == 0) return path;
    const size_t slash = path.find_last_of('/', pos - 1);
    if (slash == std::string::npos) return path;
    pos = slash;
  }
  return path.substr(pos + 1);
}

std::string Trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string Snippet(const std::string& s) {
  std::string out = s.size() > 60 ? s.substr(0, 57) + "..." : s;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return out;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        // Control characters are not allowed in XML 1.0 text.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n')
          out += ' ';
        else
          out += c;
    }
  }
  return out;
}

// A coordinate with one decimal, "-0.0" written as "0".
std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f", v);
  std::string s = buf;
  if (s == "-0.0") s = "0.0";
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s;
}

// A value for people: 4 significant digits, trimmed ("2.314", "5120", "0.001").
std::string Value4(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  std::string s = buf;
  const size_t e = s.find('e');
  if (e != std::string::npos) {
    // 1e-05 -> 1e-5
    std::string mant = s.substr(0, e), exp = s.substr(e + 1);
    const bool neg = !exp.empty() && exp[0] == '-';
    size_t i = (!exp.empty() && (exp[0] == '-' || exp[0] == '+')) ? 1 : 0;
    while (i + 1 < exp.size() && exp[i] == '0') ++i;
    s = mant + "e" + (neg ? "-" : "") + exp.substr(i);
  }
  return s;
}

// Always in scientific style, trimmed: 1e-3, 2.5e-4, 3 (no exponent for 10^0).
std::string SciText(double v) {
  if (v == 0) return "0";
  int e = static_cast<int>(std::floor(std::log10(std::fabs(v))));
  double m = v / std::pow(10.0, e);
  if (std::fabs(m) >= 9.9995) {  // 9.9996e-4 rounds to 10
    m /= 10;
    ++e;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g", m);
  return e == 0 ? std::string(buf) : std::string(buf) + "e" + std::to_string(e);
}

// Integer-looking values with thousands separators ("12,000"); others as Value4.
std::string StepText(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    const long long n = static_cast<long long>(v);
    std::string digits = std::to_string(n < 0 ? -n : n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
      out += digits[i];
    }
    return n < 0 ? "-" + out : out;
  }
  return Value4(v);
}

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
constexpr size_t kPaletteSize = sizeof(kPalette) / sizeof(kPalette[0]);
constexpr const char* kDashes[] = {"", "7 4", "2 3", "10 3 2 3"};
constexpr size_t kDashCount = sizeof(kDashes) / sizeof(kDashes[0]);

// Split prefixes that name the same quantity measured elsewhere (train_loss, eval_loss).
std::string StripSplitPrefix(const std::string& name) {
  for (const char* p : {"train_", "eval_", "val_", "valid_", "validation_", "test_", "heldout_"}) {
    const std::string prefix = p;
    if (name.size() > prefix.size() && name.compare(0, prefix.size(), prefix) == 0)
      return name.substr(prefix.size());
  }
  return name;
}

bool EndsWithPart(const std::string& name, const std::string& base) {
  return name.size() > base.size() + 1 &&
         name.compare(name.size() - base.size(), base.size(), base) == 0 &&
         name[name.size() - base.size() - 1] == '_';
}

// Python's json writes NaN, Infinity and -Infinity, which JSON lacks: as null (outside strings),
// so a diverged run still plots. Returns how many were replaced.
int NonFiniteToNull(std::string& line) {
  int replaced = 0;
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (in_string) {
      out += c;
      if (c == '\\' && i + 1 < line.size())
        out += line[++i];
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    bool hit = false;
    for (const char* word : {"-Infinity", "Infinity", "NaN"}) {
      const size_t n = std::char_traits<char>::length(word);
      if (line.compare(i, n, word) == 0) {
        out += "null";
        i += n - 1;
        ++replaced;
        hit = true;
        break;
      }
    }
    if (!hit) out += c;
  }
  if (replaced) line = std::move(out);
  return replaced;
}

// Parses `text` into `j`; on failure, the parser's byte position (1-based; past the end when
// the text stopped early).
std::optional<size_t> TryParse(const std::string& text, nlohmann::ordered_json& j) {
  try {
    j = nlohmann::ordered_json::parse(text);
    return std::nullopt;
  } catch (const nlohmann::json::parse_error& e) {
    return e.byte;
  }
}

}  // namespace

const PlotSeries* TrainLog::Find(const std::string& name) const {
  for (const PlotSeries& s : series) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

TrainLog ParseTrainLog(const std::string& text, const std::string& path) {
  TrainLog log;
  log.path = path;
  log.label = Basename(path);

  // Lines, with their 1-based numbers; the last non-blank one may be an unfinished write.
  std::vector<std::pair<int64_t, std::string>> lines;
  {
    size_t pos = 0;
    int64_t number = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      ++number;
      std::string line = Trim(text.substr(pos, end - pos));
      if (!line.empty()) lines.emplace_back(number, std::move(line));
      pos = end + 1;
    }
  }

  struct Point {
    double step;
    int64_t order;
    double value;
  };
  std::map<std::string, size_t> index;  // series name -> position in `points`/`names`
  std::vector<std::string> names;
  std::vector<std::vector<Point>> points;
  int64_t no_step = 0, first_no_step = 0, non_finite = 0, first_non_finite = 0;
  for (size_t li = 0; li < lines.size(); ++li) {
    const auto& [number, line] = lines[li];
    const std::string where = path + ":" + std::to_string(number);
    nlohmann::ordered_json j;
    std::string parsed = line;  // the text the error position refers to
    std::optional<size_t> error = TryParse(line, j);
    if (error) {
      std::string fixed = line;
      if (const int n = NonFiniteToNull(fixed); n > 0) {
        error = TryParse(fixed, j);
        parsed = std::move(fixed);
        if (!error) {
          if (non_finite == 0) first_non_finite = number;
          non_finite += n;
        }
      }
    }
    if (error) {
      // A run killed mid-write leaves a '{' whose text stops early: the parser fails only at
      // the end of the input.
      if (li + 1 == lines.size() && line[0] == '{' && *error > parsed.size()) {
        log.warnings.push_back(where +
                               ": unfinished last line ignored (a run stopped while "
                               "writing it?)");
        break;
      }
      throw Error(where + ": not a JSON object: " + Snippet(line));
    }
    if (!j.is_object()) throw Error(where + ": not a JSON object: " + Snippet(line));
    ++log.lines;
    const auto step_it = j.find("step");
    if (step_it == j.end() || !step_it->is_number() || !std::isfinite(step_it->get<double>())) {
      bool has_numbers = false;
      for (const auto& item : j.items()) has_numbers |= item.value().is_number();
      if (has_numbers && no_step++ == 0) first_no_step = number;
      continue;
    }
    const double step = step_it->get<double>();
    for (const auto& item : j.items()) {
      if (item.key() == "step" || !item.value().is_number()) continue;
      const double v = item.value().get<double>();
      if (!std::isfinite(v)) continue;
      auto [it, inserted] = index.try_emplace(item.key(), names.size());
      if (inserted) {
        names.push_back(item.key());
        points.emplace_back();
      }
      points[it->second].push_back({step, number, v});
    }
  }
  if (non_finite > 0) {
    log.warnings.push_back(path + ":" + std::to_string(first_non_finite) + ": " +
                           std::to_string(non_finite) +
                           " NaN/Infinity value(s) not drawn (from this line on)");
  }
  if (no_step > 0) {
    log.warnings.push_back(path + ":" + std::to_string(first_no_step) + ": " +
                           std::to_string(no_step) +
                           " line(s) with numbers but no numeric \"step\" skipped");
  }

  for (size_t i = 0; i < names.size(); ++i) {
    std::vector<Point>& p = points[i];
    std::stable_sort(p.begin(), p.end(), [](const Point& a, const Point& b) {
      return a.step < b.step || (a.step == b.step && a.order < b.order);
    });
    PlotSeries s;
    s.name = names[i];
    for (size_t k = 0; k < p.size(); ++k) {
      if (k + 1 < p.size() && p[k + 1].step == p[k].step) continue;  // a later line wins
      s.steps.push_back(p[k].step);
      s.values.push_back(p[k].value);
    }
    log.series.push_back(std::move(s));
  }
  return log;
}

TrainLog ReadTrainLog(const std::string& path) {
  return ParseTrainLog(ReadFileToString(path), path);
}

std::vector<std::vector<size_t>> GroupSeriesIntoPanels(const std::vector<std::string>& names) {
  const size_t n = names.size();
  std::vector<size_t> parent(n);
  std::iota(parent.begin(), parent.end(), size_t{0});
  auto find = [&](size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  auto unite = [&](size_t a, size_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  };
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      if (i == j) continue;
      const std::string si = StripSplitPrefix(names[i]), sj = StripSplitPrefix(names[j]);
      if (EndsWithPart(names[i], names[j]) || si == sj || EndsWithPart(si, sj)) unite(i, j);
    }
  }
  std::vector<std::vector<size_t>> groups;
  std::map<size_t, size_t> group_of_root;
  for (size_t i = 0; i < n; ++i) {
    const size_t r = find(i);
    auto [it, inserted] = group_of_root.try_emplace(r, groups.size());
    if (inserted) groups.emplace_back();
    groups[it->second].push_back(i);
  }
  return groups;
}

std::vector<double> NiceTicks(double lo, double hi, int target, double* step_out) {
  if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) {
    if (step_out) *step_out = std::fabs(lo) > 0 ? std::fabs(lo) : 1.0;
    return {lo};
  }
  const double raw = (hi - lo) / std::max(1, target);
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  const double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  if (step_out) *step_out = step;
  std::vector<double> ticks;
  const double first = std::ceil(lo / step - 1e-9);
  for (int i = 0; i < 1000; ++i) {
    double v = (first + i) * step;
    if (v > hi + step * 1e-9) break;
    if (std::fabs(v) < step * 1e-9) v = 0;
    ticks.push_back(v);
  }
  return ticks;
}

std::string FormatTick(double value, double spacing) {
  if (value == 0) return "0";
  spacing = std::fabs(spacing);
  if (!(spacing > 0)) spacing = std::fabs(value);
  const double a = std::fabs(value);
  if (a >= 1e7 || a < 1e-4 || spacing < 1e-4) return Value4(value);
  char buf[48];
  if (spacing >= 1000 && a >= 1000) {
    // 12k, 2.5k, 3M.
    const bool mega = spacing >= 1e6 && a >= 1e6;
    const double unit = mega ? 1e6 : 1e3;
    const double s = spacing / unit;
    const int dec = s >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(s) - 1e-9));
    std::snprintf(buf, sizeof(buf), "%.*f%s", dec, value / unit, mega ? "M" : "k");
    return buf;
  }
  const int dec = spacing >= 1 ? 0 : static_cast<int>(std::ceil(-std::log10(spacing) - 1e-9));
  std::snprintf(buf, sizeof(buf), "%.*f", dec, value);
  return buf;
}

PlotSeries DecimateForWidth(const PlotSeries& s, double x_lo, double x_hi, int columns) {
  const size_t n = s.steps.size();
  if (columns <= 0 || n <= static_cast<size_t>(4 * columns) || !(x_hi > x_lo)) return s;
  PlotSeries out;
  out.name = s.name;
  size_t i = 0;
  while (i < n) {
    auto column = [&](size_t k) {
      const double f = (s.steps[k] - x_lo) / (x_hi - x_lo);
      return std::clamp(static_cast<int>(f * columns), 0, columns - 1);
    };
    const int c = column(i);
    size_t j = i, lo = i, hi = i;
    while (j < n && column(j) == c) {
      if (s.values[j] < s.values[lo]) lo = j;
      if (s.values[j] > s.values[hi]) hi = j;
      ++j;
    }
    std::set<size_t> keep = {i, lo, hi, j - 1};
    for (size_t k : keep) {
      out.steps.push_back(s.steps[k]);
      out.values.push_back(s.values[k]);
    }
    i = j;
  }
  return out;
}

bool IsNoisy(const PlotSeries& s) {
  const size_t n = s.values.size();
  if (n < 5) return false;
  const auto [mn, mx] = std::minmax_element(s.values.begin(), s.values.end());
  const double range = *mx - *mn;
  if (!(range > 0)) return false;
  std::vector<double> wiggle;
  wiggle.reserve(n - 2);
  for (size_t i = 1; i + 1 < n; ++i) {
    wiggle.push_back(std::fabs(s.values[i] - 0.5 * (s.values[i - 1] + s.values[i + 1])));
  }
  std::nth_element(wiggle.begin(), wiggle.begin() + wiggle.size() / 2, wiggle.end());
  return wiggle[wiggle.size() / 2] > 1e-3 * range;
}

std::vector<double> SmoothEma(const std::vector<double>& values, double weight) {
  if (!(weight >= 0 && weight < 1)) throw Error("smoothing weight must be in [0, 1)");
  std::vector<double> out(values.size());
  double m = 0, wk = 1;
  for (size_t i = 0; i < values.size(); ++i) {
    m = weight * m + (1 - weight) * values[i];
    wk *= weight;
    out[i] = m / (1 - wk);
  }
  return out;
}

namespace {

// One drawn line: a series of one log.
struct Line {
  size_t log;
  const PlotSeries* series;
  std::string color, dash;
};

struct Axis {
  double lo = 0, hi = 1;  // in axis units (log10 of the value for a log axis)
  bool log = false;
  std::vector<double> ticks;  // in axis units
  std::vector<std::string> labels;
};

Axis MakeValueAxis(double vmin, double vmax, bool log, int target) {
  Axis a;
  a.log = log;
  if (log) {
    double lo = std::log10(vmin), hi = std::log10(vmax);
    const double pad = hi > lo ? (hi - lo) * 0.05 : 0.1;
    lo -= pad;
    hi += pad;
    a.lo = lo;
    a.hi = hi;
    const double span = hi - lo;
    // Mantissas per decade, richest first; the first set giving at most target + 1 ticks wins.
    // Past that, powers of ten, every k-th.
    const std::vector<std::vector<double>> sets = {{1, 2, 5}, {1, 3}, {1}};
    std::vector<double> values;
    for (const auto& set : sets) {
      values.clear();
      for (int e = static_cast<int>(std::floor(lo)); e <= static_cast<int>(std::ceil(hi)); ++e) {
        for (double m : set) {
          const double t = e + std::log10(m);
          if (t >= lo && t <= hi) values.push_back(m * std::pow(10.0, e));
        }
      }
      if (values.size() <= static_cast<size_t>(target) + 1) break;
    }
    if (values.size() > static_cast<size_t>(target) + 1) {
      values.clear();
      const int stride = static_cast<int>(std::ceil(span / target));
      for (int e = static_cast<int>(std::ceil(lo)); e <= static_cast<int>(std::floor(hi)); ++e) {
        if (e % stride == 0) values.push_back(std::pow(10.0, e));
      }
    }
    if (values.size() < 3) {
      // About a decade or less.
      // Dense candidates, thinned from the bottom so labels keep apart where the log scale
      // squeezes them: round mantissas first (3, 4, 6, 8, 10), else evenly spaced values for a
      // narrow range (4900, 5000, 5100).
      const double gap = span / (1.6 * target);
      auto add_thinned = [&](const std::vector<double>& candidates, double step) {
        a.ticks.clear();
        a.labels.clear();
        for (double v : candidates) {
          if (v <= 0) continue;
          const double t = std::log10(v);
          if (t < lo || t > hi || (!a.ticks.empty() && t - a.ticks.back() < gap)) continue;
          a.ticks.push_back(t);
          a.labels.push_back(step > 0 ? FormatTick(v, step) : Value4(v));
        }
      };
      std::vector<double> round;
      for (int e = static_cast<int>(std::floor(lo)); e <= static_cast<int>(std::ceil(hi)); ++e) {
        for (double m : {1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0}) {
          round.push_back(m * std::pow(10.0, e));
        }
      }
      add_thinned(round, 0);
      if (a.ticks.size() < 3) {
        double step = 1;
        add_thinned(NiceTicks(std::pow(10.0, lo), std::pow(10.0, hi), 3 * target, &step), step);
      }
      return a;
    }
    // One style for the whole axis: plain numbers, or 3e-5 style when some are tiny or huge.
    const bool sci = values.front() < 1e-3 || values.back() >= 1e6;
    for (double v : values) {
      a.ticks.push_back(std::log10(v));
      a.labels.push_back(sci ? SciText(v) : FormatTick(v, v));
    }
    return a;
  }
  double lo = vmin, hi = vmax;
  if (hi > lo) {
    const double pad = (hi - lo) * 0.05;
    lo -= pad;
    hi += pad;
    if (vmin >= 0 && lo < 0) lo = 0;  // a non-negative quantity keeps a non-negative axis
  } else {
    const double pad = vmin != 0 ? std::fabs(vmin) * 0.1 : 1.0;
    lo -= pad;
    hi += pad;
  }
  a.lo = lo;
  a.hi = hi;
  double step = 1;
  a.ticks = NiceTicks(lo, hi, target, &step);
  for (double t : a.ticks) a.labels.push_back(FormatTick(t, step));
  return a;
}

class Svg {
 public:
  void Add(const std::string& s) {
    out_ += s;
    out_ += '\n';
  }
  void Text(double x, double y, const std::string& text, const std::string& attrs) {
    Add("<text x=\"" + Num(x) + "\" y=\"" + Num(y) + "\" " + attrs + ">" + XmlEscape(text) +
        "</text>");
  }
  void LineEl(double x1, double y1, double x2, double y2, const std::string& attrs) {
    Add("<line x1=\"" + Num(x1) + "\" y1=\"" + Num(y1) + "\" x2=\"" + Num(x2) + "\" y2=\"" +
        Num(y2) + "\" " + attrs + "/>");
  }
  std::string& str() { return out_; }

 private:
  std::string out_;
};

std::string DashAttr(const std::string& dash) {
  return dash.empty() ? "" : " stroke-dasharray=\"" + dash + "\"";
}

}  // namespace

std::string RenderTrainPlotSvg(const std::vector<TrainLog>& logs, const PlotOptions& options) {
  if (logs.empty()) throw Error("no logs to plot");

  // Every series name, in order of first appearance across the logs.
  std::vector<std::string> all;
  for (const TrainLog& log : logs) {
    for (const PlotSeries& s : log.series) {
      if (std::find(all.begin(), all.end(), s.name) == all.end()) all.push_back(s.name);
    }
  }
  std::string files;
  for (const TrainLog& log : logs) files += (files.empty() ? "" : ", ") + log.path;
  if (all.empty()) {
    throw Error("no numeric series in " + files +
                " (expected lines like {\"step\": 1, \"loss\": 2.5})");
  }
  std::vector<std::string> names;
  if (options.series.empty()) {
    names = all;
  } else {
    for (const std::string& want : options.series) {
      if (std::find(all.begin(), all.end(), want) == all.end()) {
        std::string have;
        for (const std::string& a : all) have += (have.empty() ? "" : ", ") + a;
        throw Error("no series '" + want + "' in " + files + " (there are: " + have + ")");
      }
      if (std::find(names.begin(), names.end(), want) == names.end()) names.push_back(want);
    }
  }

  // Legend names: the file name, or more of the path where file names repeat.
  std::vector<std::string> labels(logs.size());
  for (int parts = 1; parts <= 64; ++parts) {
    std::set<std::string> seen;
    bool unique = true;
    for (size_t i = 0; i < logs.size(); ++i) {
      labels[i] = parts == 64 ? logs[i].path : PathTail(logs[i].path, parts);
      unique &= seen.insert(labels[i]).second;
    }
    if (unique) break;
  }

  // The shared step axis.
  double xmin = INFINITY, xmax = -INFINITY;
  for (const TrainLog& log : logs) {
    for (const std::string& name : names) {
      const PlotSeries* s = log.Find(name);
      if (!s || s->steps.empty()) continue;
      xmin = std::min(xmin, s->steps.front());
      xmax = std::max(xmax, s->steps.back());
    }
  }
  if (!std::isfinite(xmin)) throw Error("no points to plot in " + files);
  if (!(xmax > xmin)) {
    xmin -= 1;
    xmax += 1;
  } else if (xmin > 0 && xmin <= 0.05 * (xmax - xmin)) {
    xmin = 0;  // steps 1..N: start the axis at 0 for round ticks
  }

  // Panels by name, then apart again where scales differ: a series whose typical size is more
  // than 10x from the panel's first would be a flat line there (balance_loss beside loss).
  std::vector<std::vector<size_t>> groups;
  for (const std::vector<size_t>& group : GroupSeriesIntoPanels(names)) {
    auto typical = [&](size_t i) {
      std::vector<double> a;
      for (const TrainLog& log : logs) {
        if (const PlotSeries* s = log.Find(names[i])) {
          for (double v : s->values) a.push_back(std::fabs(v));
        }
      }
      if (a.empty()) return 0.0;
      std::nth_element(a.begin(), a.begin() + a.size() / 2, a.end());
      return a[a.size() / 2];
    };
    std::vector<size_t> left = group;
    while (!left.empty()) {
      const double base = typical(left[0]);
      std::vector<size_t> same, rest;
      for (size_t i : left) {
        const double t = typical(i);
        const bool close =
            (base == 0 && t == 0) || (base > 0 && t > 0 && std::max(t / base, base / t) <= 10.0);
        (i == left[0] || close ? same : rest).push_back(i);
      }
      groups.push_back(same);
      left = rest;
    }
  }
  // The panels people look at first lead, whatever order the log's keys come in (a writer may
  // sort them): loss, lr, grad_norm; the rest keep their order.
  auto rank = [&](const std::vector<size_t>& g) {
    const char* first[] = {"loss", "lr", "grad_norm"};
    for (size_t r = 0; r < 3; ++r) {
      for (size_t i : g) {
        if (names[i] == first[r]) return r;
      }
    }
    return size_t{3};
  };
  std::stable_sort(groups.begin(), groups.end(),
                   [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  const int panels = static_cast<int>(groups.size());
  int cols = options.columns > 0          ? options.columns
             : panels <= 1                ? 1
             : panels == 2 || panels == 4 ? 2
                                          : 3;
  cols = std::min(cols, panels);
  const int rows = (panels + cols - 1) / cols;
  const int pw = std::max(options.panel_width, 200), ph = std::max(options.panel_height, 140);
  const int margin = 16;
  const bool multi = logs.size() > 1;

  std::string title = options.title;
  if (title.empty()) {
    for (size_t i = 0; i < labels.size(); ++i) title += (i ? " vs " : "") + labels[i];
  }

  // Header: title, then (several logs) a legend of files, wrapped to the width.
  const int width = 2 * margin + cols * pw;
  struct LegendItem {
    double x, y;
    size_t log;
  };
  std::vector<LegendItem> file_legend;
  double header = 44;
  if (multi) {
    double x = margin + 8, y = header + 4;
    for (size_t i = 0; i < logs.size(); ++i) {
      const double w = 34 + 7.0 * static_cast<double>(labels[i].size()) + 24;
      if (x + w > width - margin && x > margin + 8) {
        x = margin + 8;
        y += 20;
      }
      file_legend.push_back({x, y, i});
      x += w;
    }
    header = y + 18;
  }
  const int height = static_cast<int>(header) + rows * ph + margin / 2;

  Svg svg;
  svg.Add("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
  svg.Add("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + std::to_string(width) +
          "\" height=\"" + std::to_string(height) + "\" viewBox=\"0 0 " + std::to_string(width) +
          " " + std::to_string(height) +
          "\" font-family=\"DejaVu Sans, Verdana, Helvetica, Arial, sans-serif\">");
  svg.Add("<title>" + XmlEscape(title) + "</title>");
  svg.Add("<rect x=\"0\" y=\"0\" width=\"" + std::to_string(width) + "\" height=\"" +
          std::to_string(height) + "\" fill=\"#ffffff\"/>");
  svg.Text(width / 2.0, 28, title,
           "text-anchor=\"middle\" font-size=\"18\" font-weight=\"bold\" fill=\"#222222\"");
  for (const LegendItem& it : file_legend) {
    const std::string color = kPalette[it.log % kPaletteSize];
    svg.LineEl(it.x, it.y, it.x + 26, it.y,
               "stroke=\"" + color + "\" stroke-width=\"3\" stroke-linecap=\"round\"");
    svg.Text(it.x + 32, it.y + 4.5, labels[it.log], "font-size=\"13\" fill=\"#222222\"");
  }

  for (int p = 0; p < panels; ++p) {
    const double cx = margin + (p % cols) * pw, cy = header + (p / cols) * ph;
    const double left = cx + 66, right = cx + pw - 16, top = cy + 30, bottom = cy + ph - 44;
    const double plot_w = right - left, plot_h = bottom - top;

    // The panel's lines and value range.
    std::vector<Line> lines;
    std::vector<std::string> panel_names;
    double vmin = INFINITY, vmax = -INFINITY;
    for (size_t k = 0; k < groups[p].size(); ++k) {
      const std::string& name = names[groups[p][k]];
      panel_names.push_back(name);
      for (size_t l = 0; l < logs.size(); ++l) {
        const PlotSeries* s = logs[l].Find(name);
        if (!s || s->steps.empty()) continue;
        Line line{l, s, "", ""};
        if (multi) {
          line.color = kPalette[l % kPaletteSize];
          line.dash = kDashes[k % kDashCount];
        } else {
          line.color = kPalette[k % kPaletteSize];
        }
        for (double v : s->values) {
          vmin = std::min(vmin, v);
          vmax = std::max(vmax, v);
        }
        lines.push_back(line);
      }
    }
    if (lines.empty()) continue;  // cannot happen: every listed series has a point
    const bool log_y = options.log_y && vmin > 0;
    const Axis y = MakeValueAxis(vmin, vmax, log_y, std::max(3, static_cast<int>(plot_h / 42)));
    double xstep = 1;
    const std::vector<double> xticks =
        NiceTicks(xmin, xmax, std::max(3, static_cast<int>(plot_w / 80)), &xstep);
    auto X = [&](double step) { return left + (step - xmin) / (xmax - xmin) * plot_w; };
    auto Y = [&](double v) {
      const double a = y.log ? std::log10(v) : v;
      return bottom - (a - y.lo) / (y.hi - y.lo) * plot_h;
    };

    std::string panel_title;
    for (size_t k = 0; k < panel_names.size(); ++k) panel_title += (k ? ", " : "") + panel_names[k];
    std::string id;
    for (char c : panel_names[0]) id += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    svg.Add("<g id=\"panel-" + std::to_string(p) + "-" + id + "\">");
    std::string scale_note;
    if (log_y)
      scale_note = "(log scale)";
    else if (options.log_y)
      scale_note = "(linear: values \u2264 0)";
    svg.Add("<text x=\"" + Num(left) + "\" y=\"" + Num(cy + 19) +
            "\" font-size=\"14\" font-weight=\"bold\" fill=\"#222222\">" + XmlEscape(panel_title) +
            (scale_note.empty()
                 ? ""
                 : "<tspan dx=\"8\" font-size=\"11\" font-weight=\"normal\" fill=\"#777777\">" +
                       XmlEscape(scale_note) + "</tspan>") +
            "</text>");
    if (lines.size() == 1) {
      // The latest value, at the right when it fits beside the title (widths estimated).
      const PlotSeries& s = *lines[0].series;
      const double v = s.values.back();
      const std::string last =
          "last " + (v == std::floor(v) && std::fabs(v) < 1e9 ? StepText(v) : Value4(v)) +
          " at step " + StepText(s.steps.back());
      const double used =
          8.6 * static_cast<double>(panel_title.size()) +
          (scale_note.empty() ? 0 : 8 + 6.3 * static_cast<double>(scale_note.size()));
      if (left + used + 12 + 6.3 * static_cast<double>(last.size()) <= right) {
        svg.Text(right, cy + 19, last, "text-anchor=\"end\" font-size=\"11\" fill=\"#666666\"");
      }
    }

    // Plot area, grid, ticks and tick labels.
    svg.Add("<rect x=\"" + Num(left) + "\" y=\"" + Num(top) + "\" width=\"" + Num(plot_w) +
            "\" height=\"" + Num(plot_h) + "\" fill=\"#fbfbfb\" stroke=\"none\"/>");
    for (size_t t = 0; t < y.ticks.size(); ++t) {
      const double yy = bottom - (y.ticks[t] - y.lo) / (y.hi - y.lo) * plot_h;
      svg.LineEl(left, yy, right, yy, "stroke=\"#e3e3e3\" stroke-width=\"1\"");
      svg.LineEl(left - 4, yy, left, yy, "stroke=\"#555555\" stroke-width=\"1\"");
      svg.Text(left - 7, yy + 4, y.labels[t],
               "text-anchor=\"end\" font-size=\"11\" fill=\"#444444\"");
    }
    for (double t : xticks) {
      const double xx = X(t);
      svg.LineEl(xx, top, xx, bottom, "stroke=\"#e3e3e3\" stroke-width=\"1\"");
      svg.LineEl(xx, bottom, xx, bottom + 4, "stroke=\"#555555\" stroke-width=\"1\"");
      svg.Text(xx, bottom + 17, FormatTick(t, xstep),
               "text-anchor=\"middle\" font-size=\"11\" fill=\"#444444\"");
    }
    svg.Add("<rect x=\"" + Num(left) + "\" y=\"" + Num(top) + "\" width=\"" + Num(plot_w) +
            "\" height=\"" + Num(plot_h) +
            "\" fill=\"none\" stroke=\"#888888\" stroke-width=\"1\"/>");
    svg.Text((left + right) / 2, bottom + 34, "step",
             "text-anchor=\"middle\" font-size=\"12\" fill=\"#555555\"");

    // The lines: a path each, markers where the points are few. With smoothing, the faint raw
    // lines go first, the smoothed ones over them, the markers on top.
    const int columns = static_cast<int>(std::ceil(plot_w));
    auto path_d = [&](const PlotSeries& full) {
      const PlotSeries shown = DecimateForWidth(full, xmin, xmax, columns);
      std::string d;
      for (size_t i = 0; i < shown.steps.size(); ++i) {
        d += (i ? " L" : "M") + Num(X(shown.steps[i])) + "," + Num(Y(shown.values[i]));
      }
      return d;
    };
    auto smoothed = [&](const Line& line) {
      return options.smooth > 0 && line.series->steps.size() > options.marker_max_points &&
             IsNoisy(*line.series);
    };
    auto tip = [&](const Line& line) {
      return XmlEscape((multi ? labels[line.log] + ": " : "") + line.series->name);
    };
    for (const Line& line : lines) {
      svg.Add("<path d=\"" + path_d(*line.series) + "\" fill=\"none\" stroke=\"" + line.color +
              (smoothed(line) ? "\" stroke-opacity=\"0.3\" stroke-width=\"1\""
                              : "\" stroke-width=\"1.6\"") +
              " stroke-linejoin=\"round\" stroke-linecap=\"round\"" + DashAttr(line.dash) +
              "><title>" + tip(line) + "</title></path>");
    }
    for (const Line& line : lines) {
      if (!smoothed(line)) continue;
      PlotSeries s = *line.series;
      s.values = SmoothEma(line.series->values, options.smooth);
      svg.Add("<path d=\"" + path_d(s) + "\" fill=\"none\" stroke=\"" + line.color +
              "\" stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"" +
              DashAttr(line.dash) + "><title>" + tip(line) + " (smoothed)</title></path>");
    }
    for (const Line& line : lines) {
      if (line.series->steps.size() > options.marker_max_points) continue;
      std::string marks = "<g fill=\"" + line.color + "\" stroke=\"#ffffff\" stroke-width=\"0.8\">";
      for (size_t i = 0; i < line.series->steps.size(); ++i) {
        marks += "<circle cx=\"" + Num(X(line.series->steps[i])) + "\" cy=\"" +
                 Num(Y(line.series->values[i])) + "\" r=\"3\"/>";
      }
      svg.Add(marks + "</g>");
    }

    // A legend when the panel holds several series: top right, inside the plot area.
    if (panel_names.size() > 1) {
      size_t longest = 0;
      for (const std::string& n : panel_names) longest = std::max(longest, n.size());
      const double lw = 40 + 6.8 * static_cast<double>(longest);
      const double lh = 8 + 17.0 * static_cast<double>(panel_names.size());
      const double lx = right - lw - 6, ly = top + 6;
      svg.Add("<rect x=\"" + Num(lx) + "\" y=\"" + Num(ly) + "\" width=\"" + Num(lw) +
              "\" height=\"" + Num(lh) +
              "\" rx=\"3\" fill=\"#ffffff\" fill-opacity=\"0.88\" stroke=\"#cccccc\"/>");
      for (size_t k = 0; k < panel_names.size(); ++k) {
        const double ry = ly + 13 + 17.0 * static_cast<double>(k);
        const std::string color = multi ? "#444444" : kPalette[k % kPaletteSize];
        const std::string dash = multi ? kDashes[k % kDashCount] : "";
        svg.LineEl(lx + 7, ry - 4, lx + 29, ry - 4,
                   "stroke=\"" + color + "\" stroke-width=\"2\"" + DashAttr(dash));
        svg.Text(lx + 34, ry, panel_names[k], "font-size=\"11\" fill=\"#222222\"");
      }
    }
    svg.Add("</g>");
  }
  svg.Add("</svg>");
  return std::move(svg.str());
}

}  // namespace r1
