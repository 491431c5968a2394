// The BPE model of tokenizer.json ("model": {"type": "BPE", ...}): vocab, ranked merges, and the
// per-word encoding the reference performs. With a byte-level pre-tokenizer a word arrives as raw
// bytes and each byte starts out as the vocab entry of its byte-alphabet character.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "r1/tokenizer/bpe_cache.h"
#include "r1/tokenizer/bpe_pair_map.h"

namespace r1::tok {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return HashBytes(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

// The two big sections of the model, streamed out of the file rather than kept as JSON values.
struct BpeData {
  bool has_vocab = false;
  bool has_merges = false;
  std::vector<std::pair<std::string, int32_t>> vocab;
  std::vector<std::pair<std::string, std::string>> merges;  // in rank order
};

class BpeModel {
 public:
  // Builds from the "model" object's options and its vocab and merges. Throws r1::Error naming
  // what is wrong (unsupported options, merges naming unknown tokens).
  static std::unique_ptr<BpeModel> Build(const nlohmann::json& options, BpeData data,
                                         bool byte_level);

  // Appends the ids of one pre-tokenized word. Thread-safe.
  void EncodeWord(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> TokenId(std::string_view token) const;
  // Vocab strings indexed by id ("" where the vocab has no such id).
  const std::vector<std::string>& tokens() const { return tokens_; }
  size_t merge_count() const { return merges_.size(); }

 private:
  BpeModel() = default;
  void LoadVocab(std::vector<std::pair<std::string, int32_t>> vocab);
  void AddMerge(size_t rank, const std::string& left, const std::string& right);
  int32_t Require(const std::string& token, size_t rank) const;
  // The word's initial symbols: one per byte (byte-level) or per character.
  void InitialSymbols(std::string_view word, std::vector<int32_t>& symbols) const;
  // What the reference does with a character missing from the vocab: byte fallback tokens,
  // else the unk token (fused with a preceding unk if configured), else nothing.
  void AddUnknown(std::string_view piece, std::vector<int32_t>& symbols, bool& last_was_unk) const;

  TokenMap vocab_;
  std::vector<std::string> tokens_;
  PairMap merges_;
  bool byte_level_ = false;
  std::array<int32_t, 256> byte_ids_{};      // byte -> id of its byte-alphabet character, or -1
  std::array<int32_t, 256> fallback_ids_{};  // byte -> id of "<0xXX>", or -1
  bool ignore_merges_ = false;
  bool byte_fallback_ = false;
  bool fuse_unk_ = false;
  int32_t unk_id_ = -1;
  mutable WordCache cache_;
};

}  // namespace r1::tok
