// Rotary-embedding frequencies with YaRN (DeepSeek) or llama3 scaling, model-spec §3.5.
#pragma once

#include <vector>

#include "r1/model/config.h"

namespace r1 {

// D/2 float32 frequencies for a rotated width D.
std::vector<float> RopeInvFreq(const Config& cfg, int rotated_dim);

}  // namespace r1
