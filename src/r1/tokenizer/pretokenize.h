// The "pre_tokenizer" section of tokenizer.json: how normalized text is cut into words before
// BPE sees them. Supported: Sequence, Split (regex or literal pattern, all five delimiter
// behaviours, invert), ByteLevel (optional prefix space and GPT-2 regex) and Digits. Splitting
// follows the reference's PreTokenizedString: each step re-splits every piece the previous step
// produced, and empty pieces vanish.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace r1::tok {

class Regex;

class WordSink {
 public:
  virtual void OnWord(std::string_view word) = 0;

 protected:
  ~WordSink() = default;
};

class PreTokenizer {
 public:
  // Throws r1::Error naming the unsupported type or bad field.
  static std::unique_ptr<PreTokenizer> FromJson(const nlohmann::json& j);
  ~PreTokenizer();

  // Hands every non-empty word of `text` (valid UTF-8) to `sink`, in order.
  void Split(std::string_view text, WordSink& sink) const;

  // Whether a ByteLevel step is present: then words reach the model as raw bytes to be spelled
  // in the byte-level alphabet.
  bool byte_level() const { return byte_level_; }

  enum class Behavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

 private:
  struct Step;
  PreTokenizer();
  void Add(const nlohmann::json& j);
  void RunStep(size_t index, std::string_view piece, WordSink& sink) const;
  void RunGeneric(size_t index, const Step& step, std::string_view piece, WordSink& sink) const;

  std::vector<Step> steps_;
  bool byte_level_ = false;
};

}  // namespace r1::tok
