#include "r1/tokenizer/tokenizer_added.h"

#include <algorithm>
#include <map>
#include <utility>

#include "r1/tokenizer/tokenizer_normalizer.h"
#include "r1/tokenizer/unicode_props.h"
#include "r1/tokenizer/unicode_utf8.h"

namespace r1::tok {
namespace {

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

// Start of the last character of non-empty valid UTF-8 `s`.
size_t LastCharStart(std::string_view s) {
  size_t i = s.size() - 1;
  while (i > 0 && IsContinuation(s[i])) --i;
  return i;
}

bool EndsWithWord(std::string_view s) {
  if (s.empty()) return false;
  size_t pos = LastCharStart(s);
  return IsWordChar(NextCodePoint(s, pos));
}

bool StartsWithWord(std::string_view s) {
  if (s.empty()) return false;
  size_t pos = 0;
  return IsWordChar(NextCodePoint(s, pos));
}

// Where the whitespace run that ends `s` begins.
size_t TrailingSpaceStart(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = LastCharStart(s.substr(0, end));
    size_t pos = start;
    if (!IsWhiteSpace(NextCodePoint(s, pos))) break;
    end = start;
  }
  return end;
}

// Length of the whitespace run that starts `s`.
size_t LeadingSpaceLength(std::string_view s) {
  size_t pos = 0;
  while (pos < s.size()) {
    size_t next = pos;
    if (!IsWhiteSpace(NextCodePoint(s, next))) break;
    pos = next;
  }
  return pos;
}

}  // namespace

AddedTokenMatcher::AddedTokenMatcher(const std::vector<const AddedToken*>& tokens,
                                     const std::vector<std::string>& patterns)
    : tokens_(tokens) {
  // Build with ordered child maps, then flatten into sorted edge arrays for lookup.
  std::vector<std::map<uint8_t, int32_t>> children(1);
  std::vector<int32_t> ends(1, -1);
  for (size_t t = 0; t < patterns.size(); ++t) {
    const std::string& p = patterns[t];
    if (p.empty()) continue;  // the reference ignores empty tokens
    int32_t node = 0;
    for (char c : p) {
      const auto b = static_cast<uint8_t>(c);
      auto it = children[node].find(b);
      if (it == children[node].end()) {
        const auto fresh = static_cast<int32_t>(children.size());
        children[node].emplace(b, fresh);
        children.emplace_back();
        ends.push_back(-1);
        node = fresh;
      } else {
        node = it->second;
      }
    }
    // Among identical patterns the first one listed wins, as in the reference.
    if (ends[node] < 0) ends[node] = static_cast<int32_t>(t);
  }
  nodes_.resize(children.size());
  for (size_t n = 0; n < children.size(); ++n) {
    nodes_[n].edges_begin = static_cast<uint32_t>(edges_.size());
    for (const auto& [b, child] : children[n]) edges_.push_back({b, child});
    nodes_[n].edges_end = static_cast<uint32_t>(edges_.size());
    nodes_[n].token = ends[n];
  }
  for (const auto& [b, child] : children[0]) first_byte_[b] = true;
}

int32_t AddedTokenMatcher::LongestAt(std::string_view text, size_t pos, size_t& end) const {
  int32_t best = -1;
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const auto b = static_cast<uint8_t>(text[i]);
    const Edge* first = edges_.data() + nodes_[node].edges_begin;
    const Edge* last = edges_.data() + nodes_[node].edges_end;
    const Edge* e = std::lower_bound(first, last, b,
                                     [](const Edge& edge, uint8_t v) { return edge.byte < v; });
    if (e == last || e->byte != b) break;
    node = e->node;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      end = i + 1;
    }
  }
  return best;
}

void AddedTokenMatcher::Split(std::string_view text, PieceSink& sink) const {
  size_t start_offset = 0;  // end of the last piece handed out
  size_t pos = 0;           // where the search for the next match resumes
  const size_t n = text.size();
  while (pos < n && !tokens_.empty()) {
    // Leftmost match, and the longest of those starting there.
    int32_t found = -1;
    size_t start = pos, stop = 0;
    for (; start < n; ++start) {
      if (!first_byte_[static_cast<uint8_t>(text[start])]) continue;
      found = LongestAt(text, start, stop);
      if (found >= 0) break;
    }
    if (found < 0) break;
    pos = stop;
    const AddedToken& token = *tokens_[found];
    if (token.single_word) {
      const bool space_before = start == 0 || !EndsWithWord(text.substr(0, start));
      const bool space_after = stop == n || !StartsWithWord(text.substr(stop));
      if (!space_before || !space_after) continue;
    }
    if (token.lstrip) start = std::max(TrailingSpaceStart(text.substr(0, start)), start_offset);
    if (token.rstrip) stop += LeadingSpaceLength(text.substr(stop));
    if (start_offset < start) sink.OnText(text.substr(start_offset, start - start_offset));
    sink.OnToken(token.id);
    start_offset = stop;
  }
  if (start_offset < n) sink.OnText(text.substr(start_offset));
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens, const Normalizer& normalizer)
    : tokens_(std::move(tokens)),
      raw_(Select(tokens_, false), Patterns(Select(tokens_, false), nullptr)),
      normalized_(Select(tokens_, true), Patterns(Select(tokens_, true), &normalizer)) {
  // A content listed twice maps to its last id, as in the reference's map.
  for (const AddedToken& t : tokens_) ids_.insert_or_assign(t.content, t.id);
}

std::optional<int32_t> AddedVocabulary::Find(std::string_view content) const {
  const auto it = ids_.find(content);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

std::vector<const AddedToken*> AddedVocabulary::Select(const std::vector<AddedToken>& tokens,
                                                       bool normalized) {
  // Special tokens come first, as in the reference's matching sets.
  std::vector<const AddedToken*> out;
  for (int special = 1; special >= 0; --special) {
    for (const AddedToken& t : tokens) {
      if (t.normalized == normalized && t.special == (special == 1)) out.push_back(&t);
    }
  }
  return out;
}

std::vector<std::string> AddedVocabulary::Patterns(const std::vector<const AddedToken*>& tokens,
                                                   const Normalizer* normalizer) {
  std::vector<std::string> out;
  out.reserve(tokens.size());
  for (const AddedToken* t : tokens) {
    if (!normalizer) {
      out.push_back(t->content);
      continue;
    }
    std::string storage;
    out.emplace_back(normalizer->Apply(t->content, storage));
  }
  return out;
}

}  // namespace r1::tok
