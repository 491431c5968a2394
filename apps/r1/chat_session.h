// What `r1 generate -p` and `r1 chat` share: a model with its tokenizer and chat template, turning
// a conversation into prompt ids and generated ids back into streamed text split into reasoning
// and answer.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "r1/infer/generate.h"
#include "r1/infer/speculative.h"
#include "r1/model/model.h"
#include "r1/tokenizer/chat_template.h"
#include "r1/tokenizer/reasoning.h"
#include "r1/tokenizer/tokenizer.h"

namespace r1::cli {

struct Reply {
  std::string text, reasoning, content;
  std::vector<int32_t> tokens;
  std::string finish_reason;
  GenerationStats stats;
  std::optional<SpeculativeStats> speculative;  // set when the reply was decoded speculatively
};

class ChatSession {
 public:
  // Loads the tokenizer from `tokenizer_path` (default: the model folder) and picks the chat
  // template: `template_flag` (a name or a file) if given, else the one the tokenizer config
  // names, else the architecture's.
  ChatSession(std::unique_ptr<Model> model, const std::string& tokenizer_path,
              const std::string& template_flag);

  const Tokenizer& tokenizer() const { return *tok_; }
  const ChatTemplate& chat_template() const { return template_; }
  // Generate with GenerateSpeculative (greedy, MTP draft) instead of Generate.
  void set_speculative(bool on) { speculative_ = on; }

  // Ids for a conversation rendered with the template (generation prompt added), or for raw text
  // (BOS added when the tokenizer config asks for it).
  std::vector<int32_t> PromptIds(const nlohmann::json& messages) const;
  std::vector<int32_t> RawPromptIds(const std::string& text) const;

  // Generates after `prompt`, calling on_text(reasoning_delta, content_delta) as text completes.
  // `in_reasoning`: the prompt left the model inside a <think> block.
  Reply Generate(const std::vector<int32_t>& prompt, GenerateOptions opts, bool in_reasoning,
                 const std::function<void(const std::string&, const std::string&)>& on_text);

 private:
  std::unique_ptr<Model> model_;
  std::unique_ptr<Tokenizer> tok_;
  ChatTemplate template_;
  bool speculative_ = false;
};

}  // namespace r1::cli
