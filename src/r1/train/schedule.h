// Learning-rate schedules. Every schedule starts with the same linear warm-up, lr * (s+1) /
// warmup for step s < warmup, so the last warm-up step reaches the peak and no step runs at 0.
//
//   constant  the peak after warm-up.
//   cosine    after warm-up, half a cosine from the peak (at step `warmup`) down to
//             lr * min_lr_ratio (at step total_steps - 1).
//   wsd       warm-up, stable, decay (DeepSeek-V3 §4.2): the peak until the last
//             D = round(decay_fraction * total_steps) steps, which follow half a cosine (the
//             shape V3 used) down to lr * min_lr_ratio, reached at step total_steps - 1.
//
// Steps at or past total_steps keep the final rate.
#pragma once

#include <cstdint>
#include <string>

namespace r1 {

enum class ScheduleKind { kConstant, kCosine, kWsd };

struct ScheduleOptions {
  ScheduleKind kind = ScheduleKind::kCosine;
  double lr = 1e-3;  // peak
  int64_t warmup = 0;
  int64_t total_steps = 0;  // needed by cosine and wsd
  double min_lr_ratio = 0.1;
  double decay_fraction = 0.1;  // wsd: share of total_steps spent in the final decay
};

// The rate for 0-based `step`, the step about to be taken. Throws r1::Error for options that do
// not describe a schedule (negative values, ratios outside [0, 1], no total_steps for cosine or
// wsd).
double LearningRate(const ScheduleOptions& opts, int64_t step);

// "constant", "cosine", "wsd"; anything else throws r1::Error listing those.
ScheduleKind ParseSchedule(const std::string& name);
const char* ScheduleName(ScheduleKind kind);

}  // namespace r1
