// `r1 quantize`: re-encodes a model folder's weight matrices as BF16, FP8 (DeepSeek's 128x128
// block scales), Q8_0 or Q4_0, and copies everything else. The result loads in every command.
// Which tensors keep their precision, and why, is in docs/quantization.md.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace r1 {

enum class QuantTarget { kBF16, kFP8, kQ8, kQ4 };

// "bf16", "fp8", "q8", "q4" (also "q8_0", "q4_0"); throws r1::Error on anything else.
QuantTarget ParseQuantTarget(const std::string& name);
const char* QuantTargetName(QuantTarget t);

struct QuantizeOptions {
  QuantTarget to = QuantTarget::kQ8;
  bool overwrite = false;  // replace an existing output folder's files
  // Q4 only: encode the output head in Q4 too instead of Q8 (as a GGUF q4_0 made with --pure,
  // for like-for-like comparisons; costs accuracy, docs/quantization.md).
  bool q4_head = false;
};

struct QuantizeReport {
  int64_t matrices_encoded = 0;  // written in the target format
  int64_t matrices_kept = 0;     // routers, and for Q4/FP8 the embedding and head (see docs)
  int64_t vectors_copied = 0;
  int64_t unknown_copied = 0;    // tensors the model does not bind, copied unchanged
  uint64_t bytes_in = 0, bytes_out = 0;
};

// Reads the folder `src`, writes `dst`/model.safetensors, config.json (with quantization_config)
// and copies of the other files (tokenizer, generation config). `progress` gets the fraction of
// the output written. Loads the result once before returning, so a folder that would not load is
// reported here rather than by the next command.
QuantizeReport QuantizeModel(const std::string& src, const std::string& dst,
                             const QuantizeOptions& options,
                             const std::function<void(double)>& progress);

}  // namespace r1
