#include "r1/model/rope.h"

#include <algorithm>
#include <cmath>

namespace r1 {

std::vector<float> RopeInvFreq(const Config& cfg, int D) {
  std::vector<float> f(D / 2);
  const float theta = static_cast<float>(cfg.rope_theta);
  for (int i = 0; i < D / 2; ++i)
    f[i] = 1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(D));

  if (cfg.rope_scaling == RopeScaling::kYarn && cfg.rope_factor > 1.0) {
    const double s = cfg.rope_factor, L0 = cfg.rope_original_max_position;
    auto corr = [&](double n) {
      return D * std::log(L0 / (n * 2 * M_PI)) / (2 * std::log(cfg.rope_theta));
    };
    const double lo = std::max(std::floor(corr(cfg.yarn_beta_fast)), 0.0);
    double hi = std::min(std::ceil(corr(cfg.yarn_beta_slow)), static_cast<double>(D - 1));
    if (lo == hi) hi += 0.001;
    for (int i = 0; i < D / 2; ++i) {
      const float ramp =
          static_cast<float>(std::clamp((i - lo) / (hi - lo), 0.0, 1.0));
      const float smooth = 1.0f - ramp;
      f[i] = f[i] / static_cast<float>(s) * (1.0f - smooth) + f[i] * smooth;
    }
  } else if (cfg.rope_scaling == RopeScaling::kLlama3) {
    const double s = cfg.rope_factor, a = cfg.llama3_low_freq_factor,
                 b = cfg.llama3_high_freq_factor, L0 = cfg.rope_original_max_position;
    const double low_wavelen = L0 / a, high_wavelen = L0 / b;
    for (int i = 0; i < D / 2; ++i) {
      const double w = f[i];
      const double wavelen = 2 * M_PI / w;
      double out;
      if (wavelen < high_wavelen) {
        out = w;
      } else if (wavelen > low_wavelen) {
        out = w / s;
      } else {
        const double g = (L0 / wavelen - a) / (b - a);
        out = (1 - g) * w / s + g * w;
      }
      f[i] = static_cast<float>(out);
    }
  }
  return f;
}

}  // namespace r1
