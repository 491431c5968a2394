#include "r1/tokenizer/tokenizer.h"

#include "r1/tokenizer/bpe_model.h"
#include "r1/tokenizer/pretokenize.h"
#include "r1/tokenizer/tokenizer_added.h"
#include "r1/tokenizer/tokenizer_normalizer.h"
#include "r1/tokenizer/unicode_utf8.h"

namespace r1 {
namespace {

// The three stages below added-token extraction, chained as sinks so that no list of pieces or
// words is ever materialized.
class WordsToIds final : public tok::WordSink {
 public:
  WordsToIds(const tok::BpeModel& model, std::vector<int32_t>& out) : model_(model), out_(out) {}
  void OnWord(std::string_view word) override { model_.EncodeWord(word, out_); }

 private:
  const tok::BpeModel& model_;
  std::vector<int32_t>& out_;
};

class NormalizedPieces final : public tok::PieceSink {
 public:
  NormalizedPieces(const tok::PreTokenizer& pre, WordsToIds& words, std::vector<int32_t>& out)
      : pre_(pre), words_(words), out_(out) {}
  void OnText(std::string_view text) override { pre_.Split(text, words_); }
  void OnToken(int32_t id) override { out_.push_back(id); }

 private:
  const tok::PreTokenizer& pre_;
  WordsToIds& words_;
  std::vector<int32_t>& out_;
};

class RawPieces final : public tok::PieceSink {
 public:
  RawPieces(const tok::Normalizer& norm, const tok::AddedTokenMatcher& normalized_tokens,
            NormalizedPieces& next, std::vector<int32_t>& out)
      : norm_(norm), normalized_tokens_(normalized_tokens), next_(next), out_(out) {}
  void OnText(std::string_view text) override {
    std::string storage;
    const std::string_view normalized = norm_.Apply(text, storage);
    if (normalized_tokens_.empty()) {
      if (!normalized.empty()) next_.OnText(normalized);
    } else {
      normalized_tokens_.Split(normalized, next_);
    }
  }
  void OnToken(int32_t id) override { out_.push_back(id); }

 private:
  const tok::Normalizer& norm_;
  const tok::AddedTokenMatcher& normalized_tokens_;
  NormalizedPieces& next_;
  std::vector<int32_t>& out_;
};

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

std::vector<int32_t> Tokenizer::Encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 4);
  Encode(text, out);
  return out;
}

void Tokenizer::Encode(std::string_view text, std::vector<int32_t>& out) const {
  if (tok::IsValidUtf8(text)) {
    EncodeValid(text, out);
  } else {
    EncodeValid(tok::ToUtf8Lossy(text), out);
  }
}

void Tokenizer::EncodeValid(std::string_view text, std::vector<int32_t>& out) const {
  WordsToIds words(*model_, out);
  NormalizedPieces normalized(*pre_tokenizer_, words, out);
  RawPieces raw(*normalizer_, added_->normalized(), normalized, out);
  added_->raw().Split(text, raw);
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special && IsSpecial(id)) continue;
    bytes += TokenBytes(id);
  }
  if (tok::IsValidUtf8(bytes)) return bytes;
  return tok::ToUtf8Lossy(bytes);
}

std::string_view Tokenizer::TokenText(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return {};
  return token_text_[id];
}

std::string_view Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size_) return {};
  const uint32_t b = token_bytes_offset_[id];
  return std::string_view(token_bytes_).substr(b, token_bytes_offset_[id + 1] - b);
}

std::optional<int32_t> Tokenizer::TokenId(std::string_view token) const {
  if (auto id = added_->Find(token)) return id;
  return model_->TokenId(token);
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size_ && special_[id] != 0;
}

}  // namespace r1
