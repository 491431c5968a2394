// The trainer's float32 master weights and their gradients, one entry per Hugging Face tensor.
// Whatever dtype a checkpoint stores (F32, BF16, F16, FP8 with block scales), training works on
// float32 copies; checkpoints are written back under the same names.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "r1/io/safetensors.h"
#include "r1/model/config.h"

namespace r1 {

struct Param {
  std::string name;  // Hugging Face tensor name
  std::vector<int64_t> shape;
  std::vector<float> value, grad;
  bool decay = false;     // decoupled weight decay applies (2-D weights by default)
  bool trainable = true;  // false: e_score_correction_bias, moved by the balance rule instead
  int64_t numel() const { return static_cast<int64_t>(value.size()); }
};

class ParamSet {
 public:
  ParamSet() = default;
  // Every tensor of the config from `store`, dequantized. MTP modules are included when the
  // store has them; their copies of the embedding and head are not parameters (the modules share
  // the main model's, as DeepSeek-V3 trains them) but are written back as copies on save.
  static ParamSet FromStore(const Config& cfg, const TensorStore& store);
  // Loads config.json and the safetensors of a model folder.
  static ParamSet FromDir(const std::string& dir, Config* cfg_out);

  std::vector<Param>& params() { return params_; }
  const std::vector<Param>& params() const { return params_; }
  Param* Find(const std::string& name);
  const Param* Find(const std::string& name) const;
  // Throws r1::Error naming the tensor when absent.
  Param& Get(const std::string& name);
  const Param& Get(const std::string& name) const;

  void ZeroGrad();
  int64_t NumElements() const;
  // Number of MTP modules present.
  int mtp_modules() const { return mtp_modules_; }

  // Float32 views over the current values, including the MTP embedding/head copies (pointing at
  // the main model's), for binding a Model (evaluation, generation) or writing a checkpoint.
  // Valid while this ParamSet is alive and not resized.
  TensorStore View(const std::string& source = "trainer weights") const;

 private:
  void Index();
  std::vector<Param> params_;
  std::map<std::string, size_t> index_;
  // MTP copy name -> main tensor name.
  std::vector<std::pair<std::string, std::string>> tied_copies_;
  int mtp_modules_ = 0;
};

}  // namespace r1
