#include "r1/tokenizer/reasoning.h"

namespace r1 {
namespace {

constexpr std::string_view kOpen = "<think>";
constexpr std::string_view kClose = "</think>";

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view LStrip(std::string_view s) {
  size_t b = 0;
  while (b < s.size() && IsSpace(s[b])) ++b;
  return s.substr(b);
}

std::string_view Strip(std::string_view s) {
  s = LStrip(s);
  size_t e = s.size();
  while (e > 0 && IsSpace(s[e - 1])) --e;
  return s.substr(0, e);
}

// Length of the longest suffix of s that is a proper prefix of tag.
size_t PartialTagSuffix(std::string_view s, std::string_view tag) {
  for (size_t n = std::min(s.size(), tag.size() - 1); n > 0; --n) {
    if (s.substr(s.size() - n) == tag.substr(0, n)) return n;
  }
  return 0;
}

}  // namespace

ReasoningParser::ReasoningParser(bool starts_in_reasoning)
    : state_(starts_in_reasoning ? State::kReasoning : State::kStart) {}

void ReasoningParser::EmitReasoning(std::string_view text, Delta* out) {
  if (!reasoning_started_) {
    text = LStrip(text);
    if (text.empty()) return;
    reasoning_started_ = true;
  }
  size_t e = text.size();
  while (e > 0 && IsSpace(text[e - 1])) --e;
  if (e == 0) {
    held_whitespace_.append(text);
    return;
  }
  out->reasoning += held_whitespace_;
  out->reasoning.append(text.substr(0, e));
  held_whitespace_.assign(text.substr(e));
}

void ReasoningParser::EmitContent(std::string_view text, Delta* out) {
  if (!content_started_) {
    text = LStrip(text);
    if (text.empty()) return;
    content_started_ = true;
  }
  out->content.append(text);
}

ReasoningParser::Delta ReasoningParser::Push(std::string_view text) {
  Delta out;
  pending_.append(text);
  while (!pending_.empty()) {
    if (state_ == State::kStart) {
      // Leading whitespace is dropped either way: it precedes the reasoning or starts content.
      const std::string_view rest = LStrip(pending_);
      if (rest.empty()) {
        pending_.clear();
        break;
      }
      if (rest.substr(0, kOpen.size()) == kOpen) {
        pending_ = std::string(rest.substr(kOpen.size()));
        state_ = State::kReasoning;
        continue;
      }
      if (kOpen.substr(0, rest.size()) == rest) {
        pending_ = std::string(rest);  // could still become "<think>"
        break;
      }
      state_ = State::kContent;
      continue;
    }
    if (state_ == State::kContent) {
      EmitContent(pending_, &out);
      pending_.clear();
      break;
    }
    const size_t close = pending_.find(kClose);
    if (close != std::string::npos) {
      EmitReasoning(std::string_view(pending_).substr(0, close), &out);
      held_whitespace_.clear();
      pending_.erase(0, close + kClose.size());
      state_ = State::kContent;
      continue;
    }
    const size_t keep = PartialTagSuffix(pending_, kClose);
    EmitReasoning(std::string_view(pending_).substr(0, pending_.size() - keep), &out);
    pending_.erase(0, pending_.size() - keep);
    break;
  }
  return out;
}

ReasoningParser::Delta ReasoningParser::Flush() {
  Delta out;
  if (state_ == State::kReasoning) {
    EmitReasoning(pending_, &out);
  } else {
    EmitContent(pending_, &out);
  }
  pending_.clear();
  held_whitespace_.clear();
  return out;
}

ReasoningSplit SplitReasoning(std::string_view text, bool starts_in_reasoning) {
  if (!starts_in_reasoning) {
    const std::string_view rest = LStrip(text);
    if (rest.substr(0, kOpen.size()) != kOpen) return {"", std::string(rest)};
    text = rest.substr(kOpen.size());
  }
  const size_t close = text.find(kClose);
  if (close == std::string_view::npos) return {std::string(Strip(text)), ""};
  return {std::string(Strip(text.substr(0, close))),
          std::string(LStrip(text.substr(close + kClose.size())))};
}

}  // namespace r1
