#include "r1/train/optimizer.h"

#include <cmath>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "r1/core/error.h"
#include "r1/core/thread_pool.h"
#include "r1/train/schedule.h"

namespace r1 {
namespace {

Param MakeParam(const std::string& name, std::vector<int64_t> shape, std::vector<float> value,
                bool trainable = true) {
  Param p;
  p.name = name;
  p.shape = std::move(shape);
  p.value = std::move(value);
  p.grad.assign(p.value.size(), 0.0f);
  p.decay = p.shape.size() == 2;
  p.trainable = trainable;
  return p;
}

std::string ErrorText(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

// ---- AdamW --------------------------------------------------------------------------------

// The update as torch.optim.AdamW states it, in double.
double ReferenceAdamW(double p, const std::vector<double>& grads, bool decay, double lr) {
  const double b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
  double m = 0, v = 0;
  for (size_t t = 1; t <= grads.size(); ++t) {
    const double g = grads[t - 1];
    if (decay) p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    p -= lr / bc1 * m / (std::sqrt(v) / std::sqrt(bc2) + eps);
  }
  return p;
}

TEST(TrainOptAdamW, TwoStepsMatchTheHandComputedUpdateWithDecayOnlyOn2D) {
  ParamSet ps;
  ps.params().push_back(MakeParam("w", {2, 2}, {0.05f, -0.02f, 0.03f, 0.0f}));
  ps.params().push_back(MakeParam("b", {2}, {0.05f, -0.02f}));
  ps.params().push_back(MakeParam("bias_frozen", {2}, {0.5f, 0.5f}, /*trainable=*/false));
  const std::vector<std::vector<float>> grads = {{0.5f, -0.25f, 1e-3f, 2.0f},
                                                 {-0.25f, 0.5f, 2e-3f, 2.0f}};
  AdamW opt(ps, AdamWOptions{.lr = 0.01, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8,
                             .weight_decay = 0.1});
  EXPECT_EQ(opt.step(), 0);
  EXPECT_EQ(opt.Find("bias_frozen"), nullptr);
  for (int s = 0; s < 2; ++s) {
    for (int i = 0; i < 4; ++i) ps.params()[0].grad[i] = grads[s][i];
    for (int i = 0; i < 2; ++i) ps.params()[1].grad[i] = grads[s][i];
    ps.params()[2].grad = {7.0f, 7.0f};
    opt.Step(ps, 0.01);
  }
  EXPECT_EQ(opt.step(), 2);

  // Worked out by hand (in double) from the torch.optim.AdamW update rule.
  const double w_expected[] = {0.037226355787382745, -0.013603759813145247,
                               0.01037033133181292, -0.01998999990005};
  const double b_expected[] = {0.03731630578758274, -0.013633739813545246};
  const double w_start[] = {0.05, -0.02, 0.03, 0.0};
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(ps.params()[0].value[i], w_expected[i], 1e-7) << i;
    // The float32 gradients are not exactly the decimals the hand computation used.
    EXPECT_NEAR(ReferenceAdamW(w_start[i], {grads[0][i], grads[1][i]}, true, 0.01),
                w_expected[i], 1e-9);
  }
  for (int i = 0; i < 2; ++i) EXPECT_NEAR(ps.params()[1].value[i], b_expected[i], 1e-7) << i;
  // Same start and grads, so the two differ only by the decay of the 2-D weight.
  EXPECT_GT(std::abs(ps.params()[0].value[0] - ps.params()[1].value[0]), 5e-5);
  EXPECT_EQ(ps.params()[2].value, (std::vector<float>{0.5f, 0.5f}));

  // Moments after two steps: m = 0.9*0.1*g1 + 0.1*g2, v = 0.95*0.05*g1^2 + 0.05*g2^2.
  const AdamW::Moments* mw = opt.Find("w");
  ASSERT_NE(mw, nullptr);
  EXPECT_NEAR(mw->m[0], 0.02, 1e-8);
  EXPECT_NEAR(mw->v[0], 0.015, 1e-8);
}

TEST(TrainOptAdamW, ZeroWeightDecayLeavesDecayParamsUndecayed) {
  ParamSet ps;
  ps.params().push_back(MakeParam("w", {1, 2}, {0.05f, -0.02f}));
  ps.params()[0].grad = {0.5f, -0.25f};
  AdamW opt(ps, AdamWOptions{.weight_decay = 0.0});
  opt.Step(ps, 0.01);
  EXPECT_NEAR(ps.params()[0].value[0], ReferenceAdamW(0.05, {0.5}, false, 0.01), 1e-8);
  EXPECT_NEAR(ps.params()[0].value[1], ReferenceAdamW(-0.02, {-0.25}, false, 0.01), 1e-8);
}

ParamSet LargeParams() {
  ParamSet ps;
  const int64_t n = 300000;  // several blocks of work
  std::vector<float> w(n);
  for (int64_t i = 0; i < n; ++i) w[i] = std::sin(0.001 * i) * 0.1f;
  ps.params().push_back(MakeParam("big", {600, 500}, w));
  ps.params().push_back(MakeParam("small", {7}, std::vector<float>(7, 0.25f)));
  for (Param& p : ps.params())
    for (size_t i = 0; i < p.grad.size(); ++i) p.grad[i] = std::cos(0.37 * i) * 1e-2f;
  return ps;
}

TEST(TrainOptAdamW, ResultsDoNotDependOnTheThreadCount) {
  std::vector<std::vector<float>> results;
  std::vector<double> norms;
  for (int threads : {1, 3}) {
    SetDefaultPoolThreads(threads);
    ParamSet ps = LargeParams();
    norms.push_back(GlobalGradNorm(ps));
    AdamW opt(ps, AdamWOptions{});
    for (int s = 0; s < 3; ++s) opt.Step(ps, 1e-3);
    results.push_back(ps.params()[0].value);
    results.back().insert(results.back().end(), opt.Find("big")->v.begin(),
                          opt.Find("big")->v.end());
  }
  SetDefaultPoolThreads(0);
  EXPECT_EQ(norms[0], norms[1]);
  EXPECT_TRUE(results[0] == results[1]);
}

TEST(TrainOptAdamW, StepWithoutStateForAParameterIsAnError) {
  ParamSet ps;
  ps.params().push_back(MakeParam("w", {1, 2}, {0.0f, 0.0f}));
  AdamW opt;
  const std::string msg = ErrorText([&] { opt.Step(ps, 0.01); });
  EXPECT_NE(msg.find("'w'"), std::string::npos) << msg;
  EXPECT_EQ(opt.step(), 0);
}

// ---- Clipping -----------------------------------------------------------------------------

ParamSet ClipParams() {
  ParamSet ps;
  ps.params().push_back(MakeParam("a", {2}, {0, 0}));
  ps.params().push_back(MakeParam("frozen", {1}, {0}, /*trainable=*/false));
  ps.params()[0].grad = {3.0f, 4.0f};
  ps.params()[1].grad = {100.0f};
  return ps;
}

TEST(TrainOptClip, NormCoversTrainableGradsOnly) {
  ParamSet ps = ClipParams();
  EXPECT_DOUBLE_EQ(GlobalGradNorm(ps), 5.0);
}

TEST(TrainOptClip, ScalesLikeClipGradNorm) {
  ParamSet ps = ClipParams();
  EXPECT_DOUBLE_EQ(ClipGradNorm(ps, 1.0), 5.0);
  const float coef = 1.0f / (5.0f + 1e-6f);
  EXPECT_EQ(ps.params()[0].grad[0], 3.0f * coef);
  EXPECT_EQ(ps.params()[0].grad[1], 4.0f * coef);
  EXPECT_EQ(ps.params()[1].grad[0], 100.0f);  // not trainable: untouched
  EXPECT_NEAR(GlobalGradNorm(ps), 1.0, 1e-6);
}

TEST(TrainOptClip, NoScalingBelowTheLimitOrWhenDisabled) {
  for (double max_norm : {10.0, 0.0, -1.0}) {
    ParamSet ps = ClipParams();
    EXPECT_DOUBLE_EQ(ClipGradNorm(ps, max_norm), 5.0);
    EXPECT_EQ(ps.params()[0].grad, (std::vector<float>{3.0f, 4.0f}));
  }
}

TEST(TrainOptClip, NonFiniteNormLeavesGradsForTheCallerToSkip) {
  ParamSet ps = ClipParams();
  ps.params()[0].grad[0] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(std::isnan(ClipGradNorm(ps, 1.0)));
  EXPECT_EQ(ps.params()[0].grad[1], 4.0f);
}

TEST(TrainOptClip, ScaleGradsSkipsFrozen) {
  ParamSet ps = ClipParams();
  ScaleGrads(ps, 0.5f);
  EXPECT_EQ(ps.params()[0].grad, (std::vector<float>{1.5f, 2.0f}));
  EXPECT_EQ(ps.params()[1].grad[0], 100.0f);
}

// ---- Schedules ----------------------------------------------------------------------------

ScheduleOptions Sched(ScheduleKind kind, int64_t warmup, int64_t total) {
  return ScheduleOptions{.kind = kind, .lr = 1.0, .warmup = warmup, .total_steps = total,
                         .min_lr_ratio = 0.1, .decay_fraction = 0.2};
}

TEST(TrainSched, ConstantWarmsUpLinearlyToThePeak) {
  const ScheduleOptions o = Sched(ScheduleKind::kConstant, 4, 0);
  EXPECT_EQ(LearningRate(o, 0), 0.25);
  EXPECT_EQ(LearningRate(o, 1), 0.5);
  EXPECT_EQ(LearningRate(o, 3), 1.0);
  EXPECT_EQ(LearningRate(o, 4), 1.0);
  EXPECT_EQ(LearningRate(o, 1000000), 1.0);
  EXPECT_EQ(LearningRate(Sched(ScheduleKind::kConstant, 0, 0), 0), 1.0);
}

TEST(TrainSched, CosineRunsFromPeakAfterWarmupToTheFloorAtTheLastStep) {
  const ScheduleOptions o = Sched(ScheduleKind::kCosine, 2, 13);
  EXPECT_EQ(LearningRate(o, 0), 0.5);
  EXPECT_EQ(LearningRate(o, 1), 1.0);
  EXPECT_EQ(LearningRate(o, 2), 1.0);
  EXPECT_NEAR(LearningRate(o, 7), 0.55, 1e-15);  // halfway through steps 2..12
  EXPECT_DOUBLE_EQ(LearningRate(o, 12), 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(o, 500), 0.1);
  const ScheduleOptions no_warmup = Sched(ScheduleKind::kCosine, 0, 11);
  EXPECT_EQ(LearningRate(no_warmup, 0), 1.0);
  EXPECT_NEAR(LearningRate(no_warmup, 5), 0.55, 1e-15);
  EXPECT_DOUBLE_EQ(LearningRate(no_warmup, 10), 0.1);
  for (int64_t s = 1; s < 11; ++s)
    EXPECT_LT(LearningRate(no_warmup, s), LearningRate(no_warmup, s - 1)) << s;
}

TEST(TrainSched, WsdHoldsThePeakThenDecaysOverTheLastFraction) {
  const ScheduleOptions o = Sched(ScheduleKind::kWsd, 2, 20);  // decay: steps 16..19
  EXPECT_EQ(LearningRate(o, 0), 0.5);
  EXPECT_EQ(LearningRate(o, 2), 1.0);
  EXPECT_EQ(LearningRate(o, 15), 1.0);
  EXPECT_DOUBLE_EQ(LearningRate(o, 16),
                   0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.25)));
  EXPECT_NEAR(LearningRate(o, 17), 0.55, 1e-15);
  EXPECT_DOUBLE_EQ(LearningRate(o, 19), 0.1);
  EXPECT_DOUBLE_EQ(LearningRate(o, 40), 0.1);

  ScheduleOptions never = o;
  never.decay_fraction = 0.0;
  EXPECT_EQ(LearningRate(never, 19), 1.0);
  ScheduleOptions all = Sched(ScheduleKind::kWsd, 0, 10);
  all.decay_fraction = 1.0;  // no stable phase: decays from the first step
  EXPECT_LT(LearningRate(all, 0), 1.0);
  EXPECT_DOUBLE_EQ(LearningRate(all, 9), 0.1);
}

TEST(TrainSched, ParseNamesAndRejectsOthers) {
  EXPECT_EQ(ParseSchedule("constant"), ScheduleKind::kConstant);
  EXPECT_EQ(ParseSchedule("cosine"), ScheduleKind::kCosine);
  EXPECT_EQ(ParseSchedule("wsd"), ScheduleKind::kWsd);
  EXPECT_STREQ(ScheduleName(ScheduleKind::kWsd), "wsd");
  const std::string msg = ErrorText([] { ParseSchedule("linear"); });
  EXPECT_NE(msg.find("'linear'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("constant, cosine, wsd"), std::string::npos) << msg;
}

TEST(TrainSched, InvalidOptionsAreErrors) {
  EXPECT_NE(ErrorText([] { LearningRate(Sched(ScheduleKind::kCosine, 0, 0), 0); })
                .find("total_steps"),
            std::string::npos);
  EXPECT_NE(ErrorText([] { LearningRate(Sched(ScheduleKind::kWsd, 30, 20), 0); })
                .find("warmup (30) exceeds total_steps (20)"),
            std::string::npos);
  ScheduleOptions bad = Sched(ScheduleKind::kCosine, 0, 10);
  bad.min_lr_ratio = 1.5;
  EXPECT_NE(ErrorText([&] { LearningRate(bad, 0); }).find("min_lr_ratio"), std::string::npos);
  EXPECT_NE(ErrorText([] { LearningRate(Sched(ScheduleKind::kConstant, -1, 0), 0); })
                .find("warmup"),
            std::string::npos);
  EXPECT_NE(ErrorText([] { LearningRate(Sched(ScheduleKind::kConstant, 0, 0), -1); })
                .find("step"),
            std::string::npos);
}

}  // namespace
}  // namespace r1
