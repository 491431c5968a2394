// The pre-tokenizer sections a trained tokenizer.json gets. The DeepSeek-V3 and Qwen2 ones are
// copied byte for byte from the released tokenizer.json files (deepseek_v3 and qwen3 in the
// golden data; Qwen3 kept Qwen2's split pattern), so a trained tokenizer splits words exactly as
// those models do. Retyping the regexes would risk a silent one-character difference.
#include "r1/tokenizer/bpe_train.h"

#include <nlohmann/json.hpp>

#include "r1/core/error.h"

namespace r1::tok {
namespace {

constexpr const char* kDeepSeekV3 =
    R"json({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": false}, {"type": "Split", "pattern": {"Regex": "[一-龥぀-ゟ゠-ヿ]+"}, "behavior": "Isolated", "invert": false}, {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]})json";

constexpr const char* kQwen2 =
    R"json({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}]})json";

// GPT-2's: the ByteLevel step alone, with its built-in word regex.
constexpr const char* kGpt2 =
    R"json({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})json";

}  // namespace

std::vector<std::string> BpePreTokenizerNames() { return {"deepseek-v3", "qwen2", "gpt2"}; }

std::string BpePreTokenizerSource(const std::string& name) {
  const char* text = name == "deepseek-v3" ? kDeepSeekV3
                     : name == "qwen2"     ? kQwen2
                     : name == "gpt2"      ? kGpt2
                                           : nullptr;
  if (text == nullptr) {
    throw Error("unknown pre-tokenizer '" + name + "' (expected deepseek-v3, qwen2 or gpt2)");
  }
  return text;
}

nlohmann::json BpePreTokenizerJson(const std::string& name) {
  return nlohmann::json::parse(BpePreTokenizerSource(name));
}

}  // namespace r1::tok
