#include "r1/tokenizer/pretokenize.h"

#include <algorithm>
#include <string>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/tokenizer/pretokenize_regex.h"
#include "r1/tokenizer/unicode_props.h"
#include "r1/tokenizer/unicode_utf8.h"

namespace r1::tok {
namespace {

using Json = nlohmann::json;

// The GPT-2 word pattern ByteLevel applies when use_regex is set.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

bool BoolField(const Json& j, const char* key, bool fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) throw Error(std::string("pre-tokenizer field \"") + key + "\" must be a boolean");
  return it->get<bool>();
}

PreTokenizer::Behavior ParseBehavior(const Json& j) {
  const auto it = j.find("behavior");
  if (it == j.end() || !it->is_string()) throw Error("Split pre-tokenizer needs a \"behavior\" string");
  const std::string b = it->get<std::string>();
  using B = PreTokenizer::Behavior;
  if (b == "Removed") return B::kRemoved;
  if (b == "Isolated") return B::kIsolated;
  if (b == "MergedWithPrevious") return B::kMergedWithPrevious;
  if (b == "MergedWithNext") return B::kMergedWithNext;
  if (b == "Contiguous") return B::kContiguous;
  throw Error("unsupported Split behavior '" + b + "'");
}

struct Piece {
  size_t begin, end;
  bool flag;  // is a match (before behaviours apply) / is removed (after)
};

}  // namespace

struct PreTokenizer::Step {
  enum class Kind { kSplit, kByteLevel, kDigits } kind;
  std::unique_ptr<Regex> regex;  // kSplit, and kByteLevel with use_regex
  Behavior behavior = Behavior::kIsolated;
  bool invert = false;
  bool add_prefix_space = false;
  bool individual_digits = false;
};

PreTokenizer::PreTokenizer() = default;
PreTokenizer::~PreTokenizer() = default;

std::unique_ptr<PreTokenizer> PreTokenizer::FromJson(const Json& j) {
  std::unique_ptr<PreTokenizer> p(new PreTokenizer());
  p->Add(j);
  for (size_t i = 0; i + 1 < p->steps_.size(); ++i) {
    // After ByteLevel the reference splits text spelled in the byte alphabet; words here stay raw
    // bytes until the model, so such a pipeline would split differently.
    if (p->steps_[i].kind == Step::Kind::kByteLevel) {
      throw Error("unsupported pre-tokenizer order: ByteLevel must be the last step");
    }
  }
  return p;
}

void PreTokenizer::Add(const Json& j) {
  if (j.is_null()) return;
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string()) {
    throw Error("pre_tokenizer must be null or an object with a \"type\"");
  }
  const std::string type = j["type"].get<std::string>();
  Step step;
  if (type == "Sequence") {
    const auto it = j.find("pretokenizers");
    if (it == j.end() || !it->is_array()) {
      throw Error("pre-tokenizer Sequence needs a \"pretokenizers\" array");
    }
    for (const auto& child : *it) Add(child);
    return;
  } else if (type == "Split") {
    step.kind = Step::Kind::kSplit;
    const auto pat = j.find("pattern");
    if (pat == j.end() || !pat->is_object()) {
      throw Error("Split pre-tokenizer needs a \"pattern\" object");
    }
    if (pat->contains("Regex") && (*pat)["Regex"].is_string()) {
      step.regex = Regex::Compile((*pat)["Regex"].get<std::string>(), /*literal=*/false);
    } else if (pat->contains("String") && (*pat)["String"].is_string()) {
      step.regex = Regex::Compile((*pat)["String"].get<std::string>(), /*literal=*/true);
    } else {
      throw Error("Split pattern must be {\"Regex\": ...} or {\"String\": ...}");
    }
    step.behavior = ParseBehavior(j);
    step.invert = BoolField(j, "invert", false);
  } else if (type == "ByteLevel") {
    step.kind = Step::Kind::kByteLevel;
    step.add_prefix_space = BoolField(j, "add_prefix_space", true);
    if (BoolField(j, "use_regex", true)) step.regex = Regex::Compile(kGpt2Pattern, false);
    byte_level_ = true;
  } else if (type == "Digits") {
    step.kind = Step::Kind::kDigits;
    step.individual_digits = BoolField(j, "individual_digits", false);
    step.behavior = step.individual_digits ? Behavior::kIsolated : Behavior::kContiguous;
  } else {
    throw Error("unsupported pre-tokenizer type '" + type + "'");
  }
  steps_.push_back(std::move(step));
}

void PreTokenizer::Split(std::string_view text, WordSink& sink) const { RunStep(0, text, sink); }

void PreTokenizer::RunStep(size_t index, std::string_view piece, WordSink& sink) const {
  if (piece.empty()) return;
  if (index == steps_.size()) {
    sink.OnWord(piece);
    return;
  }
  const Step& step = steps_[index];
  switch (step.kind) {
    case Step::Kind::kByteLevel: {
      std::string prefixed;
      if (step.add_prefix_space && piece.front() != ' ') {
        prefixed.reserve(piece.size() + 1);
        prefixed.push_back(' ');
        prefixed.append(piece);
        piece = prefixed;
      }
      if (!step.regex) {
        RunStep(index + 1, piece, sink);
        return;
      }
      break;  // the GPT-2 regex splits like an Isolated Split
    }
    case Step::Kind::kSplit:
      // Isolated keeps matches and gaps alike, so the match flags (and invert) do not matter.
      if (step.behavior == Behavior::kIsolated) break;
      RunGeneric(index, step, piece, sink);
      return;
    case Step::Kind::kDigits:
      RunGeneric(index, step, piece, sink);
      return;
  }
  // Isolated splitting, streamed: no list of pieces is built.
  size_t prev = 0;
  step.regex->ForEachMatch(piece, [&](size_t b, size_t e) {
    if (prev < b) RunStep(index + 1, piece.substr(prev, b - prev), sink);
    RunStep(index + 1, piece.substr(b, e - b), sink);
    prev = e;
  });
  if (prev < piece.size()) RunStep(index + 1, piece.substr(prev), sink);
}

void PreTokenizer::RunGeneric(size_t index, const Step& step, std::string_view piece,
                              WordSink& sink) const {
  // 1. The pattern's matches and the gaps between them, covering the whole piece.
  std::vector<Piece> matches;
  if (step.kind == Step::Kind::kDigits) {
    size_t last = 0;
    for (size_t pos = 0; pos < piece.size();) {
      const size_t b = pos;
      if (IsNumeric(NextCodePoint(piece, pos))) {
        if (last < b) matches.push_back({last, b, false});
        matches.push_back({b, pos, true});
        last = pos;
      }
    }
    if (last < piece.size()) matches.push_back({last, piece.size(), false});
  } else {
    size_t prev = 0;
    step.regex->ForEachMatch(piece, [&](size_t b, size_t e) {
      if (prev != b) matches.push_back({prev, b, false});
      matches.push_back({b, e, true});
      prev = e;
    });
    if (prev != piece.size()) matches.push_back({prev, piece.size(), false});
  }
  if (step.invert) {
    for (Piece& m : matches) m.flag = !m.flag;
  }

  // 2. The delimiter behaviour decides what becomes a piece; flag now means "drop it".
  std::vector<Piece> out;
  out.reserve(matches.size());
  bool prev_match = false;
  switch (step.behavior) {
    case Behavior::kIsolated:
      for (const Piece& m : matches) out.push_back({m.begin, m.end, false});
      break;
    case Behavior::kRemoved:
      out = matches;
      break;
    case Behavior::kContiguous:
      for (const Piece& m : matches) {
        if (m.flag == prev_match && !out.empty()) {
          out.back().end = m.end;
        } else {
          out.push_back({m.begin, m.end, false});
        }
        prev_match = m.flag;
      }
      break;
    case Behavior::kMergedWithPrevious:
      for (const Piece& m : matches) {
        if (m.flag && !prev_match && !out.empty()) {
          out.back().end = m.end;
        } else {
          out.push_back({m.begin, m.end, false});
        }
        prev_match = m.flag;
      }
      break;
    case Behavior::kMergedWithNext:
      for (auto it = matches.rbegin(); it != matches.rend(); ++it) {
        if (it->flag && !prev_match && !out.empty()) {
          out.back().begin = it->begin;
        } else {
          out.push_back({it->begin, it->end, false});
        }
        prev_match = it->flag;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  for (const Piece& p : out) {
    if (!p.flag) RunStep(index + 1, piece.substr(p.begin, p.end - p.begin), sink);
  }
}

}  // namespace r1::tok
