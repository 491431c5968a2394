// Separates a model's reasoning (<think>...</think>) from its answer, for streaming responses
// with a reasoning_content field (DeepSeek API / OpenAI-compatible servers).
//
// Rules, applied identically by the streaming parser and SplitReasoning():
//  - starts_in_reasoning (the prompt ended with "<think>\n", as the R1 templates make it): all
//    text before the first "</think>" is reasoning, the rest is content.
//  - otherwise a "<think>" that opens the output (after optional whitespace) starts reasoning,
//    closed by the first "</think>"; any other text is content and later tags in it are kept
//    literally. Without a closing tag, everything after "<think>" is reasoning.
//  - whitespace around the reasoning and at the start of the content is dropped, as the DeepSeek
//    API returns reasoning_content without the "\n" after <think> and content without the "\n\n"
//    after </think>.
#pragma once

#include <string>
#include <string_view>

namespace r1 {

struct ReasoningSplit {
  std::string reasoning;
  std::string content;
};

class ReasoningParser {
 public:
  using Delta = ReasoningSplit;

  explicit ReasoningParser(bool starts_in_reasoning);

  // Feeds the next piece of generated text and returns what can be emitted now. Text that may be
  // the start of a tag, or whitespace that may turn out to be trailing, is held back until later
  // pushes decide it; concatenating every Delta plus Flush() equals SplitReasoning() of the whole
  // text, however it was split.
  Delta Push(std::string_view text);
  // Ends the stream: releases held-back text (an unfinished tag prefix is kept as text).
  Delta Flush();

  bool in_reasoning() const { return state_ == State::kReasoning; }

 private:
  enum class State { kStart, kReasoning, kContent };

  void EmitReasoning(std::string_view text, Delta* out);
  void EmitContent(std::string_view text, Delta* out);

  State state_;
  std::string pending_;          // unprocessed text that may begin a tag
  std::string held_whitespace_;  // reasoning whitespace, dropped if nothing follows it
  bool reasoning_started_ = false;
  bool content_started_ = false;
};

ReasoningSplit SplitReasoning(std::string_view text, bool starts_in_reasoning);

}  // namespace r1
