// Added tokens (the "added_tokens" section of tokenizer.json): special tokens such as
// <｜User｜> or <|im_end|> and extra tokens such as <think>. They are cut out of the text before
// normalization and BPE, as the reference's AddedVocabulary does: leftmost-longest matching
// (its Aho-Corasick mode), honouring single_word, lstrip and rstrip; tokens with normalized=true
// are matched afterwards, inside the normalized text between the others.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace r1::tok {

class Normalizer;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

class PieceSink {
 public:
  virtual void OnText(std::string_view text) = 0;  // never empty
  virtual void OnToken(int32_t id) = 0;

 protected:
  ~PieceSink() = default;
};

// Finds the tokens of one set (all raw or all normalized) in a text.
class AddedTokenMatcher {
 public:
  // `patterns[i]` is what token `tokens[i]` looks like in the text it is matched in.
  AddedTokenMatcher(const std::vector<const AddedToken*>& tokens,
                    const std::vector<std::string>& patterns);

  // Reports the text between matches and the ids of the matches, covering all of `text`.
  void Split(std::string_view text, PieceSink& sink) const;
  bool empty() const { return tokens_.empty(); }

 private:
  struct Node {
    uint32_t edges_begin = 0, edges_end = 0;
    int32_t token = -1;  // index into tokens_ of the token ending here
  };
  struct Edge {
    uint8_t byte;
    int32_t node;
  };
  // Longest token starting at `pos`: its index, with its end in `end`; -1 if none.
  int32_t LongestAt(std::string_view text, size_t pos, size_t& end) const;

  std::vector<const AddedToken*> tokens_;
  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  bool first_byte_[256] = {};
};

class AddedVocabulary {
 public:
  AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer& normalizer);
  AddedVocabulary(const AddedVocabulary&) = delete;
  AddedVocabulary& operator=(const AddedVocabulary&) = delete;

  const std::vector<AddedToken>& tokens() const { return tokens_; }
  // Id of the added token with exactly this content.
  std::optional<int32_t> Find(std::string_view content) const;
  const AddedTokenMatcher& raw() const { return raw_; }
  const AddedTokenMatcher& normalized() const { return normalized_; }

 private:
  static std::vector<const AddedToken*> Select(const std::vector<AddedToken>& tokens, bool normalized);
  static std::vector<std::string> Patterns(const std::vector<const AddedToken*>& tokens,
                                           const Normalizer* normalizer);

  std::vector<AddedToken> tokens_;
  std::map<std::string, int32_t, std::less<>> ids_;
  AddedTokenMatcher raw_;
  AddedTokenMatcher normalized_;
};

}  // namespace r1::tok
