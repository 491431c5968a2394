#include "r1/train/plot.h"

#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "r1/core/error.h"

namespace r1 {
namespace {

// Counts non-overlapping occurrences of `needle`.
size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = hay.find(needle); pos != std::string::npos;
       pos = hay.find(needle, pos + needle.size())) {
    ++n;
  }
  return n;
}

// A small XML well-formedness check: every tag closes in order, attributes are quoted, entities
// are known, there is one root element and no text outside it. Returns "" or the problem.
std::string XmlProblem(const std::string& xml) {
  std::vector<std::string> stack;
  size_t i = 0;
  bool root_seen = false;
  auto check_text = [&](size_t from, size_t to) -> std::string {
    for (size_t k = from; k < to; ++k) {
      if (xml[k] == '&') {
        const size_t semi = xml.find(';', k);
        if (semi == std::string::npos || semi > to) return "bare & at " + std::to_string(k);
        const std::string ent = xml.substr(k, semi - k + 1);
        if (ent != "&amp;" && ent != "&lt;" && ent != "&gt;" && ent != "&quot;" && ent != "&apos;")
          return "unknown entity " + ent;
      } else if (xml[k] == '>') {
        return "bare > at " + std::to_string(k);
      } else if (stack.empty() && !std::isspace(static_cast<unsigned char>(xml[k]))) {
        return "text outside the root at " + std::to_string(k);
      }
    }
    return "";
  };
  while (i < xml.size()) {
    const size_t lt = xml.find('<', i);
    if (lt == std::string::npos) {
      if (std::string p = check_text(i, xml.size()); !p.empty()) return p;
      break;
    }
    if (std::string p = check_text(i, lt); !p.empty()) return p;
    if (xml.compare(lt, 5, "<?xml") == 0) {
      const size_t end = xml.find("?>", lt);
      if (end == std::string::npos || lt != 0) return "bad XML declaration";
      i = end + 2;
      continue;
    }
    // Find the tag's end, skipping quoted attribute values.
    size_t k = lt + 1;
    char quote = 0;
    for (; k < xml.size(); ++k) {
      if (quote) {
        if (xml[k] == quote)
          quote = 0;
        else if (xml[k] == '<')
          return "< inside an attribute at " + std::to_string(k);
      } else if (xml[k] == '"' || xml[k] == '\'') {
        quote = xml[k];
      } else if (xml[k] == '>') {
        break;
      }
    }
    if (k >= xml.size()) return "unterminated tag at " + std::to_string(lt);
    std::string tag = xml.substr(lt + 1, k - lt - 1);
    i = k + 1;
    if (!tag.empty() && tag[0] == '/') {
      const std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name)
        return "</" + name + "> closes <" + (stack.empty() ? "" : stack.back()) + ">";
      stack.pop_back();
      continue;
    }
    const bool self_closing = !tag.empty() && tag.back() == '/';
    if (self_closing) tag.pop_back();
    const size_t sp = tag.find_first_of(" \t\n");
    const std::string name = tag.substr(0, sp);
    if (name.empty() || !std::isalpha(static_cast<unsigned char>(name[0])))
      return "bad tag name at " + std::to_string(lt);
    // Attributes: name="value" pairs.
    size_t a = sp == std::string::npos ? tag.size() : sp;
    while (a < tag.size()) {
      while (a < tag.size() && std::isspace(static_cast<unsigned char>(tag[a]))) ++a;
      if (a >= tag.size()) break;
      const size_t eq = tag.find('=', a);
      if (eq == std::string::npos || eq + 1 >= tag.size() || tag[eq + 1] != '"')
        return "unquoted attribute in <" + name + "> at " + std::to_string(lt);
      const size_t close = tag.find('"', eq + 2);
      if (close == std::string::npos) return "unterminated attribute in <" + name + ">";
      if (std::string p = check_text(lt + 1 + eq + 2, lt + 1 + close);
          !p.empty() && p.find("outside") == std::string::npos)
        return p;
      a = close + 1;
    }
    if (stack.empty()) {
      if (root_seen) return "second root element <" + name + ">";
      root_seen = true;
    }
    if (!self_closing) stack.push_back(name);
  }
  if (!stack.empty()) return "<" + stack.back() + "> never closed";
  if (!root_seen) return "no root element";
  return "";
}

const char* kLog =
    "{\"step\": 1, \"loss\": 4.0, \"lr\": 0.0001, \"grad_norm\": 2.0, \"tokens_per_s\": 5000, "
    "\"run\": \"nano\", \"ok\": true}\n"
    "{\"step\": 2, \"loss\": 3.5, \"lr\": 0.0002, \"grad_norm\": 1.5, \"tokens_per_s\": 5100}\n"
    "\n"
    "{\"step\": 3, \"loss\": 3.0, \"lr\": 0.0003, \"tokens_per_s\": 5200, \"mtp_loss\": 3.3}\n"
    "{\"step\": 3, \"eval_loss\": 3.2}\n"
    "{\"step\": 4, \"loss\": 2.8, \"lr\": 0.0003, \"grad_norm\": null, \"balance_max_vio\": 0.4}\n";

TEST(PlotParse, SeriesInFirstAppearanceOrderWithMissingFields) {
  const TrainLog log = ParseTrainLog(kLog, "runs/a/log.jsonl");
  EXPECT_EQ(log.label, "log.jsonl");
  EXPECT_EQ(log.lines, 5);
  EXPECT_TRUE(log.warnings.empty());
  std::vector<std::string> names;
  for (const PlotSeries& s : log.series) names.push_back(s.name);
  // "run" (string) and "ok" (boolean) are not series; "step" is the axis.
  EXPECT_EQ(names, (std::vector<std::string>{"loss", "lr", "grad_norm", "tokens_per_s", "mtp_loss",
                                             "eval_loss", "balance_max_vio"}));
  const PlotSeries* loss = log.Find("loss");
  ASSERT_NE(loss, nullptr);
  EXPECT_EQ(loss->steps, (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(loss->values, (std::vector<double>{4.0, 3.5, 3.0, 2.8}));
  // null and missing values leave gaps in the points, not zeros.
  EXPECT_EQ(log.Find("grad_norm")->steps, (std::vector<double>{1, 2}));
  EXPECT_EQ(log.Find("eval_loss")->steps, (std::vector<double>{3}));
  EXPECT_EQ(log.Find("nope"), nullptr);
}

TEST(PlotParse, StepsSortedAndARepeatedStepKeepsTheLaterLine) {
  // A resumed run appends steps it already logged; the later values win.
  const TrainLog log = ParseTrainLog(
      "{\"step\": 10, \"loss\": 2}\n{\"step\": 20, \"loss\": 1.5}\n"
      "{\"step\": 15, \"loss\": 1.9}\n{\"step\": 20, \"loss\": 1.4}\n",
      "x.jsonl");
  EXPECT_EQ(log.series[0].steps, (std::vector<double>{10, 15, 20}));
  EXPECT_EQ(log.series[0].values, (std::vector<double>{2, 1.9, 1.4}));
}

TEST(PlotParse, LinesWithoutStepAreSkippedWithAWarning) {
  const TrainLog log = ParseTrainLog(
      "{\"event\": \"start\", \"params\": 1234}\n{\"config\": \"x\"}\n{\"step\": 1, \"loss\": 2}\n",
      "x.jsonl");
  ASSERT_EQ(log.series.size(), 1u);
  EXPECT_EQ(log.series[0].name, "loss");
  ASSERT_EQ(log.warnings.size(), 1u);
  EXPECT_NE(log.warnings[0].find("x.jsonl:1"), std::string::npos) << log.warnings[0];
}

TEST(PlotParse, BadLineNamesFileAndLine) {
  try {
    ParseTrainLog("{\"step\": 1, \"loss\": 2}\nnot json\n{\"step\": 2, \"loss\": 1}\n", "r.jsonl");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("r.jsonl:2"), std::string::npos) << e.what();
  }
  // A JSON value that is not an object.
  EXPECT_THROW(ParseTrainLog("[1, 2]\n{\"step\": 1, \"loss\": 2}\n", "r.jsonl"), Error);
  // A broken line in the middle is an error even if it looks unfinished.
  EXPECT_THROW(ParseTrainLog("{\"step\": 1, \"lo\n{\"step\": 2, \"loss\": 1}\n", "r.jsonl"), Error);
  // A last line that is complete garbage, not an unfinished object, is an error too.
  EXPECT_THROW(ParseTrainLog("{\"step\": 1, \"loss\": 2}\nxyz\n", "r.jsonl"), Error);
  EXPECT_THROW(ParseTrainLog("{\"step\": 1, \"loss\": 2}\n{\"step\": 2} x\n", "r.jsonl"), Error);
}

TEST(PlotParse, UnfinishedLastLineIsAWarning) {
  for (const char* tail : {"{\"step\": 3, \"lo", "{\"step\": 3, \"loss\": 2.", "{\"step\": 3,",
                           "{\"step\": 3, \"loss\": 2.5"}) {
    const std::string text =
        std::string("{\"step\": 1, \"loss\": 3}\n{\"step\": 2, \"loss\": 2.9}\n") + tail;
    const TrainLog log = ParseTrainLog(text, "r.jsonl");
    ASSERT_EQ(log.warnings.size(), 1u) << tail;
    EXPECT_NE(log.warnings[0].find("r.jsonl:3"), std::string::npos) << log.warnings[0];
    EXPECT_EQ(log.series[0].steps.size(), 2u);
  }
}

TEST(PlotParse, NanAndInfinityFromADivergedRunAreSkippedWithAWarning) {
  // Python's json writes these; they are not JSON but should not stop the plot.
  const TrainLog log = ParseTrainLog(
      "{\"step\": 1, \"loss\": 2.5, \"note\": \"NaN in a string stays\"}\n"
      "{\"step\": 2, \"loss\": NaN, \"grad_norm\": Infinity, \"lr\": 0.1}\n"
      "{\"step\": 3, \"loss\": -Infinity, \"lr\": 0.1}\n",
      "d.jsonl");
  EXPECT_EQ(log.Find("loss")->steps, (std::vector<double>{1}));
  EXPECT_EQ(log.Find("lr")->steps, (std::vector<double>{2, 3}));
  EXPECT_EQ(log.Find("grad_norm"), nullptr);
  ASSERT_EQ(log.warnings.size(), 1u);
  EXPECT_NE(log.warnings[0].find("d.jsonl:2"), std::string::npos) << log.warnings[0];
  EXPECT_NE(log.warnings[0].find("3 NaN/Infinity"), std::string::npos) << log.warnings[0];
  // An unfinished last line holding a NaN is still an unfinished line.
  const TrainLog cut = ParseTrainLog(
      "{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": NaN, \"lr\": 0.", "c.jsonl");
  ASSERT_EQ(cut.warnings.size(), 1u);
  EXPECT_NE(cut.warnings[0].find("unfinished"), std::string::npos);
  // Other junk is still an error.
  EXPECT_THROW(ParseTrainLog("{\"step\": 1, \"loss\": NaN x}\n{\"step\": 2}\n", "e.jsonl"), Error);
}

TEST(PlotParse, MissingFileIsAnError) {
  EXPECT_THROW(ReadTrainLog("/nonexistent/r1/log.jsonl"), Error);
}

TEST(PlotPanels, SuffixAndSplitPrefixShareAPanel) {
  const std::vector<std::string> names = {
      "loss",  "lr", "grad_norm", "eval_loss", "mtp_loss", "eval_mtp_loss", "balance_max_vio",
      "min_lr"};
  const auto groups = GroupSeriesIntoPanels(names);
  ASSERT_EQ(groups.size(), 4u);
  EXPECT_EQ(groups[0], (std::vector<size_t>{0, 3, 4, 5}));  // the loss family
  EXPECT_EQ(groups[1], (std::vector<size_t>{1, 7}));        // lr, min_lr
  EXPECT_EQ(groups[2], (std::vector<size_t>{2}));
  EXPECT_EQ(groups[3], (std::vector<size_t>{6}));
  // train_loss and val_loss share a panel without a plain "loss".
  const auto g2 = GroupSeriesIntoPanels({"train_loss", "val_loss", "tokens_per_s"});
  ASSERT_EQ(g2.size(), 2u);
  EXPECT_EQ(g2[0], (std::vector<size_t>{0, 1}));
  // A name is not its own suffix, and partial words do not match (gloss is not *_loss).
  EXPECT_EQ(GroupSeriesIntoPanels({"gloss", "loss"}).size(), 2u);
}

TEST(PlotPanels, SeriesOfAnotherScaleGetTheirOwnPanel) {
  // The trainer's fields: balance_loss (~0.01) would be a flat line in the loss panel (~3).
  std::string text;
  for (int s = 1; s <= 20; ++s) {
    text += "{\"step\": " + std::to_string(s) + ", \"loss\": " + std::to_string(3.0 + 1.0 / s) +
            ", \"mtp_loss\": " + std::to_string(3.4 + 1.0 / s) +
            ", \"balance_loss\": " + std::to_string(0.01 + 0.001 * s) + "}\n";
    if (s % 5 == 0) {
      text +=
          "{\"step\": " + std::to_string(s) + ", \"eval_loss\": 3.2, \"unigram_eval_loss\": 6.9}\n";
    }
  }
  const std::string svg = RenderTrainPlotSvg({ParseTrainLog(text, "t.jsonl")}, PlotOptions{});
  EXPECT_EQ(XmlProblem(svg), "");
  EXPECT_NE(svg.find(">loss, mtp_loss, eval_loss, unigram_eval_loss<"), std::string::npos);
  EXPECT_NE(svg.find(">balance_loss<"), std::string::npos);
  EXPECT_EQ(Count(svg, "<g id=\"panel-"), 2u);
}

TEST(PlotPanels, LossLrAndGradNormLeadWhateverTheKeyOrder) {
  // nlohmann::json sorts keys: elapsed_s, epoch, grad_norm, loss, lr, tokens_per_s.
  const TrainLog log = ParseTrainLog(
      "{\"elapsed_s\": 1, \"epoch\": 0, \"grad_norm\": 2, \"loss\": 8, \"lr\": 0.001, "
      "\"step\": 1, \"tokens_per_s\": 83456}\n",
      "s.jsonl");
  const std::string svg = RenderTrainPlotSvg({log}, PlotOptions{});
  const size_t loss = svg.find("<g id=\"panel-0-loss\""), lr = svg.find("<g id=\"panel-1-lr\""),
               gn = svg.find("<g id=\"panel-2-grad_norm\""),
               el = svg.find("<g id=\"panel-3-elapsed_s\"");
  EXPECT_NE(loss, std::string::npos);
  EXPECT_NE(lr, std::string::npos);
  EXPECT_NE(gn, std::string::npos);
  EXPECT_NE(el, std::string::npos);
  EXPECT_NE(svg.find("last 83,456 at step 1"), std::string::npos);  // whole numbers in full
}

TEST(PlotTicks, NiceSpacingInsideTheRange) {
  double step = 0;
  const auto t = NiceTicks(0, 1000, 5, &step);
  EXPECT_EQ(step, 200);
  EXPECT_EQ(t, (std::vector<double>{0, 200, 400, 600, 800, 1000}));
  const auto t2 = NiceTicks(2.73, 3.91, 5, &step);
  EXPECT_DOUBLE_EQ(step, 0.2);
  ASSERT_FALSE(t2.empty());
  EXPECT_GE(t2.front(), 2.73);
  EXPECT_LE(t2.back(), 3.91);
  for (double v : NiceTicks(1e-5, 3e-4, 5, &step)) {
    EXPECT_GE(v, 1e-5);
    EXPECT_LE(v, 3e-4 * (1 + 1e-9));  // the top tick may be 3e-4 give or take rounding
  }
  // A degenerate range gives one tick, not a loop.
  EXPECT_EQ(NiceTicks(5, 5, 5).size(), 1u);
}

TEST(PlotTicks, Labels) {
  EXPECT_EQ(FormatTick(0, 0.5), "0");
  EXPECT_EQ(FormatTick(2.5, 0.5), "2.5");
  EXPECT_EQ(FormatTick(3, 0.2), "3.0");
  EXPECT_EQ(FormatTick(1500, 500), "1500");
  EXPECT_EQ(FormatTick(12000, 2000), "12k");
  EXPECT_EQ(FormatTick(2500, 500), "2500");
  EXPECT_EQ(FormatTick(3000000, 1000000), "3M");
  EXPECT_EQ(FormatTick(0.0004, 0.0002), "0.0004");
  EXPECT_EQ(FormatTick(2e-5, 1e-5), "2e-5");
  EXPECT_EQ(FormatTick(-0.5, 0.5), "-0.5");
}

TEST(PlotDecimate, KeepsExtremesAndEnds) {
  PlotSeries s;
  s.name = "loss";
  for (int i = 0; i < 100000; ++i) {
    s.steps.push_back(i);
    s.values.push_back(i == 54321 ? 100.0 : 1.0 + 0.001 * (i % 7));
  }
  const PlotSeries d = DecimateForWidth(s, 0, 99999, 300);
  EXPECT_LE(d.steps.size(), 4u * 300u + 4u);
  EXPECT_GE(d.steps.size(), 300u);
  EXPECT_EQ(d.steps.front(), 0);
  EXPECT_EQ(d.steps.back(), 99999);
  bool spike = false;
  for (size_t i = 0; i < d.steps.size(); ++i) {
    if (i) {
      EXPECT_LT(d.steps[i - 1], d.steps[i]);
    }
    spike |= d.values[i] == 100.0;
  }
  EXPECT_TRUE(spike) << "the one-step spike must survive";
  // Short series are untouched.
  PlotSeries small;
  small.steps = {1, 2, 3};
  small.values = {3, 2, 1};
  EXPECT_EQ(DecimateForWidth(small, 1, 3, 300).steps.size(), 3u);
}

TEST(PlotSvg, WellFormedWithPanelsAxesAndLegend) {
  const TrainLog log = ParseTrainLog(kLog, "runs/a/log.jsonl");
  PlotOptions o;
  o.title = "nano <run> & co";
  const std::string svg = RenderTrainPlotSvg({log}, o);
  EXPECT_EQ(XmlProblem(svg), "") << svg.substr(0, 2000);
  EXPECT_EQ(svg.rfind("<?xml", 0), 0u);
  EXPECT_NE(svg.find("<svg xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_NE(svg.find("nano &lt;run&gt; &amp; co"), std::string::npos);
  // Seven series in five panels: loss + mtp_loss + eval_loss, lr, grad_norm, tokens_per_s,
  // balance_max_vio. One <path> per series.
  EXPECT_EQ(Count(svg, "<path "), 7u);
  EXPECT_EQ(Count(svg, "<g id=\"panel-"), 5u);
  EXPECT_NE(svg.find(">loss, mtp_loss, eval_loss<"), std::string::npos);
  EXPECT_NE(svg.find(">tokens_per_s<"), std::string::npos);
  // Axes: a "step" label per panel, tick labels on both axes.
  EXPECT_EQ(Count(svg, ">step</text>"), 5u);
  EXPECT_NE(svg.find(">5100<"), std::string::npos);  // a tokens_per_s tick
  EXPECT_NE(svg.find(">2.0<"), std::string::npos);   // a step tick
  // Few points: markers. The legend lists the loss panel's three series.
  EXPECT_GT(Count(svg, "<circle "), 10u);
  EXPECT_NE(svg.find(">eval_loss</text>"), std::string::npos);
}

TEST(PlotSvg, SeriesSelectionAndErrors) {
  const TrainLog log = ParseTrainLog(kLog, "log.jsonl");
  PlotOptions o;
  o.series = {"eval_loss", "loss"};
  const std::string svg = RenderTrainPlotSvg({log}, o);
  EXPECT_EQ(XmlProblem(svg), "");
  EXPECT_EQ(Count(svg, "<path "), 2u);
  EXPECT_EQ(Count(svg, "<g id=\"panel-"), 1u);
  EXPECT_EQ(svg.find(">lr<"), std::string::npos);

  o.series = {"loss", "bogus"};
  try {
    RenderTrainPlotSvg({log}, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("bogus"), std::string::npos) << m;
    EXPECT_NE(m.find("eval_loss"), std::string::npos) << m;  // lists what there is
  }
  const TrainLog empty = ParseTrainLog("{\"step\": 1, \"note\": \"x\"}\n", "e.jsonl");
  EXPECT_THROW(RenderTrainPlotSvg({empty}, PlotOptions{}), Error);
}

TEST(PlotSvg, LogScaleAndNonPositivePanelsStayLinear) {
  std::string text;
  for (int s = 0; s <= 1000; s += 10) {
    text += "{\"step\": " + std::to_string(s) +
            ", \"loss\": " + std::to_string(10.0 * std::exp(-s / 200.0) + 0.5) +
            ", \"bias\": " + std::to_string(std::sin(s / 100.0)) + "}\n";
  }
  PlotOptions o;
  o.log_y = true;
  const std::string svg = RenderTrainPlotSvg({ParseTrainLog(text, "l.jsonl")}, o);
  EXPECT_EQ(XmlProblem(svg), "");
  EXPECT_NE(svg.find("(log scale)"), std::string::npos);
  EXPECT_NE(svg.find("(linear: values"), std::string::npos);
  // Log ticks 1, 2, 5, 10 on the loss panel.
  EXPECT_NE(svg.find(">1<"), std::string::npos);
  EXPECT_NE(svg.find(">10<"), std::string::npos);
  // 101 points: no markers; the x axis reaches 1000.
  EXPECT_EQ(Count(svg, "<circle "), 0u);
  EXPECT_NE(svg.find(">1000<"), std::string::npos);
}

TEST(PlotSmooth, EmaIsDebiasedAndOnlyNoisySeriesAreSmoothed) {
  const std::vector<double> v = {2, 2, 2, 2};
  for (double x : SmoothEma(v, 0.9)) EXPECT_NEAR(x, 2.0, 1e-12);  // no pull towards 0
  const std::vector<double> s = SmoothEma({0, 10}, 0.5);
  EXPECT_DOUBLE_EQ(s[0], 0);
  EXPECT_NEAR(s[1], 5 / 0.75, 1e-12);  // m = 0.5 * 10, debiased by 1 - 0.5^2
  EXPECT_EQ(SmoothEma({1, 2, 3}, 0), (std::vector<double>{1, 2, 3}));
  EXPECT_THROW(SmoothEma({1}, 1.0), Error);

  PlotSeries lr, loss;
  for (int i = 0; i < 500; ++i) {
    lr.steps.push_back(i);
    lr.values.push_back(i < 50 ? 1e-3 * (i + 1) / 50 : 1e-3 * (1 - (i - 50) / 900.0));
    loss.steps.push_back(i);
    const uint32_t h = static_cast<uint32_t>(i) * 2654435761u;  // noise in [-0.1, 0.1]
    loss.values.push_back(3 + 5 * std::exp(-i / 50.0) +
                          0.1 * (static_cast<int>(h >> 16) % 13 - 6) / 6.0);
  }
  EXPECT_FALSE(IsNoisy(lr));
  EXPECT_TRUE(IsNoisy(loss));
  std::string text;
  for (int i = 0; i < 500; ++i) {
    text += "{\"step\": " + std::to_string(i) + ", \"loss\": " + std::to_string(loss.values[i]) +
            ", \"lr\": " + std::to_string(lr.values[i]) + "}\n";
  }
  PlotOptions o;
  o.smooth = 0.9;
  const std::string svg = RenderTrainPlotSvg({ParseTrainLog(text, "s.jsonl")}, o);
  EXPECT_EQ(XmlProblem(svg), "");
  EXPECT_EQ(Count(svg, "<path "), 3u);  // loss raw + smoothed, lr raw only
  EXPECT_EQ(Count(svg, "(smoothed)</title>"), 1u);
  EXPECT_EQ(Count(svg, "stroke-opacity=\"0.3\""), 1u);
}

TEST(PlotSvg, LogScaleLearningRateTicksInOneStyle) {
  std::string text;
  for (int s = 1; s <= 400; ++s) {
    text += "{\"step\": " + std::to_string(s) +
            ", \"lr\": " + std::to_string(s < 40 ? 1e-3 * s / 40 : 1e-3) + "}\n";
  }
  PlotOptions o;
  o.log_y = true;
  const std::string svg = RenderTrainPlotSvg({ParseTrainLog(text, "lr.jsonl")}, o);
  EXPECT_EQ(XmlProblem(svg), "");
  // 2.5e-5 .. 1e-3: 1-2-5 ticks, all written the same way.
  for (const char* tick : {">5e-5<", ">1e-4<", ">2e-4<", ">5e-4<", ">1e-3<"}) {
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  }
  EXPECT_EQ(svg.find(">0.001<"), std::string::npos);
  // Steps 1..400: the axis starts at 0.
  EXPECT_NE(svg.find(">0</text>"), std::string::npos);
}

TEST(PlotSvg, SeveralLogsOverlayWithAFileLegend) {
  const TrainLog a = ParseTrainLog(kLog, "runs/a/log.jsonl");
  const TrainLog b = ParseTrainLog(
      "{\"step\": 1, \"loss\": 4.2, \"lr\": 0.0001}\n{\"step\": 6, \"loss\": 2.1, \"lr\": 0.0002}\n"
      "{\"step\": 6, \"eval_loss\": 2.5}\n",
      "runs/b/log.jsonl");
  const std::string svg = RenderTrainPlotSvg({a, b}, PlotOptions{});
  EXPECT_EQ(XmlProblem(svg), "");
  // Same file names: the legend uses the folders too.
  EXPECT_NE(svg.find(">a/log.jsonl</text>"), std::string::npos);
  EXPECT_NE(svg.find(">b/log.jsonl</text>"), std::string::npos);
  EXPECT_NE(svg.find("a/log.jsonl vs b/log.jsonl"), std::string::npos);  // default title
  EXPECT_EQ(Count(svg, "<path "), 7u + 3u);
  EXPECT_NE(svg.find("stroke-dasharray"), std::string::npos);  // series told apart by dash
  // Shared step axis: both runs' ranges fit (b reaches step 6).
  EXPECT_NE(svg.find(">6<"), std::string::npos);
}

}  // namespace
}  // namespace r1
