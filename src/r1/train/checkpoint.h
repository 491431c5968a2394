// Trainer checkpoints and model exports. A checkpoint is a complete Hugging Face model folder
// (config.json, model.safetensors in float32, generation_config.json, the tokenizer files when a
// source for them is given) plus the trainer's state:
//
//   optimizer.safetensors  F32 adamw.m.<name> and adamw.v.<name> for every trainable parameter
//   trainer_state.json     {"format": "r1cpp-trainer-state", "version": 1, "step",
//                           "adamw": {"step", "beta1", "beta2", "eps", "weight_decay", "lr"},
//                           "options", "data_state", "rng_state", "extra"}
//
// Float32 weights and moments make a resumed run continue bit for bit. config.json is the
// loaded one (Config::raw) with torch_dtype set to what is written and quantization_config
// dropped, since the weights are no longer FP8.
//
// Folders are replaced whole: everything is written (and fsynced) into <dir>.tmp-<pid>, then an
// existing <dir> is renamed to <dir>.old-<pid>, the new folder is renamed to <dir>, and the old
// one is removed. A kill at any moment leaves the previous complete folder at <dir>, or, between
// the two renames only, at <dir>.old-<pid> with no <dir>; LoadCheckpoint then names that folder
// in its error rather than guessing. Leftover .tmp-/.old- siblings of dead processes are removed
// by the next successful save. An existing <dir> is replaced only when it holds nothing but
// model/checkpoint files, so a mistyped path cannot delete unrelated work.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "r1/core/dtype.h"
#include "r1/model/config.h"
#include "r1/train/optimizer.h"
#include "r1/train/params.h"

namespace r1 {

inline constexpr int kTrainerStateVersion = 1;

// What the trainer needs besides weights and moments. The JSON members are stored as given
// (null when unset) and come back exactly.
struct TrainerState {
  int64_t step = 0;           // training steps completed (AdamW::step() counts updates)
  nlohmann::json options;     // the run's training options
  nlohmann::json data_state;  // position in the data stream
  nlohmann::json rng_state;
  nlohmann::json extra;  // anything else worth keeping (best loss, wall time, ...)
};

// Writes the checkpoint folder `dir` (see above). `tokenizer_source_dir`: a folder holding
// tokenizer.json (and maybe tokenizer_config.json, generation_config.json), or a tokenizer.json
// path, or "" for none. Throws r1::Error when the optimizer lacks state for a trainable
// parameter, when `dir` holds files that are not part of a checkpoint, or on I/O failure; `dir`
// is then left as it was.
void SaveCheckpoint(const std::string& dir, const Config& cfg, const ParamSet& params,
                    const AdamW& optimizer, const TrainerState& state,
                    const std::string& tokenizer_source_dir = "");

// Loads a checkpoint written by SaveCheckpoint. `optimizer` gets the saved moments, step count
// and hyper-parameters (call set_options afterwards to change them). `cfg` and `state` may be
// null. Outputs are assigned only when everything loaded. Throws r1::Error naming the folder and what is missing or
// inconsistent ("DIR is not a complete checkpoint: missing trainer_state.json").
void LoadCheckpoint(const std::string& dir, Config* cfg, ParamSet* params, AdamW* optimizer,
                    TrainerState* state);

// Only trainer_state.json, validated: for reading the step or options before loading weights.
TrainerState ReadTrainerState(const std::string& dir);
// True when `dir` has every checkpoint file and a valid trainer_state.json; never throws.
bool IsCheckpoint(const std::string& dir);

// Writes only the model folder (config.json, model.safetensors, generation_config.json,
// tokenizer files), with the same whole-folder replacement. `dtype` kF32 or kBF16 (a compact
// final export; e_score_correction_bias stays F32 as in the published V3 checkpoint).
void WriteModelFolder(const std::string& dir, const Config& cfg, const ParamSet& params,
                      const std::string& tokenizer_source_dir = "", DType dtype = DType::kF32);

}  // namespace r1
