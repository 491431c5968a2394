#include "r1/tokenizer/bpe_model.h"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "r1/core/error.h"
#include "r1/tokenizer/bpe_merge.h"
#include "r1/tokenizer/unicode_byte_level.h"
#include "r1/tokenizer/unicode_utf8.h"

namespace r1::tok {
namespace {

using Json = nlohmann::json;

// Longer words are rare and would crowd the cache with one-off entries.
constexpr size_t kMaxCachedWordBytes = 128;

std::string OptionalString(const Json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (!it->is_string()) throw Error(std::string("model field \"") + key + "\" must be a string");
  return it->get<std::string>();
}

bool OptionalBool(const Json& j, const char* key) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw Error(std::string("model field \"") + key + "\" must be a boolean");
  return it->get<bool>();
}

std::string Abbrev(const std::string& s) { return s.size() <= 80 ? s : s.substr(0, 80) + "..."; }

}  // namespace

std::unique_ptr<BpeModel> BpeModel::Build(const Json& model, BpeData data, bool byte_level) {
  if (!model.is_object()) throw Error("\"model\" must be an object");
  std::unique_ptr<BpeModel> m(new BpeModel());
  m->byte_level_ = byte_level;
  if (!OptionalString(model, "continuing_subword_prefix").empty() ||
      !OptionalString(model, "end_of_word_suffix").empty()) {
    throw Error("unsupported BPE option: continuing_subword_prefix / end_of_word_suffix");
  }
  // "dropout" is a training-time regulariser; encoding here is always deterministic.
  m->ignore_merges_ = OptionalBool(model, "ignore_merges");
  m->byte_fallback_ = OptionalBool(model, "byte_fallback");
  m->fuse_unk_ = OptionalBool(model, "fuse_unk");

  if (!data.has_vocab) throw Error("BPE model needs a \"vocab\" object");
  m->LoadVocab(std::move(data.vocab));
  m->merges_.Reserve(data.merges.size());
  for (size_t rank = 0; rank < data.merges.size(); ++rank) {
    m->AddMerge(rank, data.merges[rank].first, data.merges[rank].second);
  }

  const std::string unk = OptionalString(model, "unk_token");
  if (!unk.empty()) m->unk_id_ = m->TokenId(unk).value_or(-1);
  for (int b = 0; b < 256; ++b) {
    m->byte_ids_[b] = m->TokenId(ByteLevelStrings()[b]).value_or(-1);
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    m->fallback_ids_[b] = m->TokenId(name).value_or(-1);
  }
  return m;
}

void BpeModel::LoadVocab(std::vector<std::pair<std::string, int32_t>> vocab) {
  vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (const auto& [token, id] : vocab) max_id = std::max(max_id, id);
  tokens_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (auto& [token, id] : vocab) {
    tokens_[id] = token;
    // A token listed twice keeps its last id, as a JSON object read into a map would.
    vocab_.insert_or_assign(std::move(token), id);
  }
}

int32_t BpeModel::Require(const std::string& token, size_t rank) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) {
    throw Error("merge #" + std::to_string(rank) + " names token '" + Abbrev(token) +
                "' that is not in the vocab");
  }
  return it->second;
}

void BpeModel::AddMerge(size_t rank, const std::string& left, const std::string& right) {
  const int32_t l = Require(left, rank);
  const int32_t r = Require(right, rank);
  const int32_t merged = Require(left + right, rank);
  merges_.Insert(l, r, MergeRule{static_cast<uint32_t>(rank), merged});
}

std::optional<int32_t> BpeModel::TokenId(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::AddUnknown(std::string_view piece, std::vector<int32_t>& symbols,
                          bool& last_was_unk) const {
  if (byte_fallback_) {
    bool all = true;
    for (char c : piece) all = all && fallback_ids_[static_cast<uint8_t>(c)] >= 0;
    if (all) {
      for (char c : piece) symbols.push_back(fallback_ids_[static_cast<uint8_t>(c)]);
      last_was_unk = false;
      return;
    }
  }
  if (unk_id_ < 0) return;
  if (!(fuse_unk_ && last_was_unk)) symbols.push_back(unk_id_);
  last_was_unk = true;
}

void BpeModel::InitialSymbols(std::string_view word, std::vector<int32_t>& symbols) const {
  bool last_was_unk = false;
  if (byte_level_) {
    for (size_t i = 0; i < word.size(); ++i) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(word[i])];
      if (id >= 0) {
        symbols.push_back(id);
        last_was_unk = false;
      } else {
        AddUnknown(word.substr(i, 1), symbols, last_was_unk);
      }
    }
    return;
  }
  for (size_t pos = 0; pos < word.size();) {
    const size_t len = Utf8CharLength(static_cast<unsigned char>(word[pos]));
    const std::string_view ch = word.substr(pos, len);
    pos += len;
    const auto it = vocab_.find(ch);
    if (it != vocab_.end()) {
      symbols.push_back(it->second);
      last_was_unk = false;
    } else {
      AddUnknown(ch, symbols, last_was_unk);
    }
  }
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (byte_level_ && word.size() == 1 && byte_ids_[static_cast<uint8_t>(word[0])] >= 0) {
    out.push_back(byte_ids_[static_cast<uint8_t>(word[0])]);
    return;
  }
  const uint64_t hash = HashBytes(word);
  if (cache_.Lookup(word, hash, out)) return;

  thread_local std::vector<int32_t> symbols;
  symbols.clear();
  bool whole = false;
  if (ignore_merges_) {
    thread_local std::string spelled;
    spelled.clear();
    if (byte_level_) {
      for (char c : word) spelled += ByteLevelStrings()[static_cast<uint8_t>(c)];
    } else {
      spelled.assign(word);
    }
    if (const auto id = TokenId(spelled)) {
      symbols.push_back(*id);
      whole = true;
    }
  }
  if (!whole) {
    InitialSymbols(word, symbols);
    ApplyMerges(merges_, symbols);
  }
  out.insert(out.end(), symbols.begin(), symbols.end());
  if (word.size() <= kMaxCachedWordBytes) cache_.Insert(word, hash, symbols);
}

}  // namespace r1::tok
