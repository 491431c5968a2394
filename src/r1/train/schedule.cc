#include "r1/train/schedule.h"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "r1/core/error.h"

namespace r1 {
namespace {

void Validate(const ScheduleOptions& o, int64_t step) {
  const std::string what = std::string("learning-rate schedule '") + ScheduleName(o.kind) + "': ";
  if (!(o.lr >= 0.0) || !std::isfinite(o.lr))
    throw Error(what + "lr must be a finite value >= 0, got " + std::to_string(o.lr));
  if (o.warmup < 0) throw Error(what + "warmup must be >= 0, got " + std::to_string(o.warmup));
  if (step < 0) throw Error(what + "step must be >= 0, got " + std::to_string(step));
  if (o.kind == ScheduleKind::kConstant) return;
  if (o.total_steps <= 0) {
    throw Error(what + "needs total_steps > 0, got " + std::to_string(o.total_steps));
  }
  if (o.warmup > o.total_steps) {
    throw Error(what + "warmup (" + std::to_string(o.warmup) + ") exceeds total_steps (" +
                std::to_string(o.total_steps) + ")");
  }
  if (!(o.min_lr_ratio >= 0.0 && o.min_lr_ratio <= 1.0))
    throw Error(what + "min_lr_ratio must be in [0, 1], got " + std::to_string(o.min_lr_ratio));
  if (!(o.decay_fraction >= 0.0 && o.decay_fraction <= 1.0)) {
    throw Error(what + "decay_fraction must be in [0, 1], got " +
                std::to_string(o.decay_fraction));
  }
}

// From the peak (progress 0) to the floor (progress 1) along half a cosine.
double CosineBetween(double peak, double floor, double progress) {
  return floor + (peak - floor) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress));
}

}  // namespace

double LearningRate(const ScheduleOptions& o, int64_t step) {
  Validate(o, step);
  if (step < o.warmup) return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup);
  const double floor = o.lr * o.min_lr_ratio;
  switch (o.kind) {
    case ScheduleKind::kConstant:
      return o.lr;
    case ScheduleKind::kCosine: {
      // The first step after warm-up runs at the peak (so warmup 0 starts at full lr) and the
      // last at the floor.
      const int64_t span = std::max<int64_t>(1, o.total_steps - o.warmup - 1);
      const double progress =
          std::min(1.0, static_cast<double>(step - o.warmup) / static_cast<double>(span));
      return CosineBetween(o.lr, floor, progress);
    }
    case ScheduleKind::kWsd: {
      // The decay never reaches back into the warm-up.
      const int64_t decay = std::min<int64_t>(
          o.total_steps - o.warmup, std::llround(o.decay_fraction * o.total_steps));
      const int64_t start = o.total_steps - decay;
      if (step < start) return o.lr;
      // The stable phase already ran at the peak, so the first decay step is below it.
      const double progress =
          std::min(1.0, static_cast<double>(step - start + 1) / static_cast<double>(decay));
      return CosineBetween(o.lr, floor, progress);
    }
  }
  return o.lr;
}

ScheduleKind ParseSchedule(const std::string& name) {
  for (ScheduleKind k : {ScheduleKind::kConstant, ScheduleKind::kCosine, ScheduleKind::kWsd})
    if (name == ScheduleName(k)) return k;
  throw Error("unknown learning-rate schedule '" + name + "' (valid: constant, cosine, wsd)");
}

const char* ScheduleName(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::kConstant:
      return "constant";
    case ScheduleKind::kCosine:
      return "cosine";
    case ScheduleKind::kWsd:
      return "wsd";
  }
  return "?";
}

}  // namespace r1
