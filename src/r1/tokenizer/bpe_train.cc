// The BPE merge loop. Recounting every pair after each merge would cost O(corpus) per merge;
// instead pair counts are kept up to date by touching only the words that contain the merged
// pair (found through a pair -> words index), and the best pair comes from a priority queue
// whose stale entries are skipped or re-queued when popped (lazy invalidation).
#include <algorithm>
#include <array>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "r1/core/error.h"
#include "r1/core/progress.h"
#include "r1/tokenizer/bpe_model.h"
#include "r1/tokenizer/bpe_train.h"
#include "r1/tokenizer/unicode_byte_level.h"

namespace r1::tok {
namespace {

using PairKey = uint64_t;

PairKey Key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}
int32_t Left(PairKey k) { return static_cast<int32_t>(k >> 32); }
int32_t Right(PairKey k) { return static_cast<int32_t>(k & 0xFFFFFFFFu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

struct Candidate {
  int64_t count;
  PairKey pair;
};

// Priority order: higher count first, then the smaller (left, right) vocab strings. Distinct
// pairs never compare equal (vocab strings are unique), so the order is total and the result
// does not depend on hash-map iteration order.
struct LowerPriority {
  const std::vector<std::string>* vocab;
  bool operator()(const Candidate& x, const Candidate& y) const {
    if (x.count != y.count) return x.count < y.count;
    const std::string& xl = (*vocab)[Left(x.pair)];
    const std::string& yl = (*vocab)[Left(y.pair)];
    if (xl != yl) return xl > yl;
    return (*vocab)[Right(x.pair)] > (*vocab)[Right(y.pair)];
  }
};

void MergeSymbols(const std::vector<int32_t>& in, int32_t a, int32_t b, int32_t c,
                  std::vector<int32_t>& out) {
  out.clear();
  for (size_t i = 0; i < in.size(); ++i) {
    if (i + 1 < in.size() && in[i] == a && in[i + 1] == b) {
      out.push_back(c);
      ++i;
    } else {
      out.push_back(in[i]);
    }
  }
}

}  // namespace

BpeLearned LearnBpe(const BpeWordCounts& counts, size_t bpe_vocab_size, int64_t min_frequency,
                    bool quiet) {
  if (bpe_vocab_size < 256) throw Error("BPE vocabulary must hold at least the 256 byte symbols");
  BpeLearned out;

  // Ids 0..255: the byte symbols in GPT-2's order, which is their stand-in code point order.
  std::array<int32_t, 256> byte_id{};
  {
    std::vector<int> bytes(256);
    for (int i = 0; i < 256; ++i) bytes[i] = i;
    const auto& chars = ByteLevelChars();
    std::sort(bytes.begin(), bytes.end(), [&](int x, int y) { return chars[x] < chars[y]; });
    for (int i = 0; i < 256; ++i) {
      byte_id[bytes[i]] = i;
      out.vocab.push_back(ByteLevelStrings()[bytes[i]]);
    }
  }
  TokenMap ids;
  for (size_t i = 0; i < out.vocab.size(); ++i) ids.emplace(out.vocab[i], static_cast<int32_t>(i));

  std::vector<Word> words;
  words.reserve(counts.size());
  for (const auto& [text, count] : counts) {
    Word w;
    w.count = count;
    w.symbols.reserve(text.size());
    for (unsigned char ch : text) w.symbols.push_back(byte_id[ch]);
    words.push_back(std::move(w));
  }

  std::unordered_map<PairKey, int64_t> pair_count;
  std::unordered_map<PairKey, std::vector<uint32_t>> where;  // may list a word twice or stale
  pair_count.reserve(1 << 16);
  where.reserve(1 << 16);
  for (uint32_t wi = 0; wi < words.size(); ++wi) {
    const auto& s = words[wi].symbols;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      const PairKey k = Key(s[i], s[i + 1]);
      pair_count[k] += words[wi].count;
      where[k].push_back(wi);
    }
  }

  std::priority_queue<Candidate, std::vector<Candidate>, LowerPriority> queue(
      LowerPriority{&out.vocab});
  for (const auto& [k, n] : pair_count) queue.push({n, k});

  std::unordered_set<PairKey> merged_pairs;
  std::vector<int32_t> merged;
  std::vector<PairKey> touched;
  const size_t start = out.vocab.size();
  Progress progress("merging pairs", static_cast<double>(bpe_vocab_size - start), quiet);
  while (out.vocab.size() < bpe_vocab_size && !queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const auto cit = pair_count.find(top.pair);
    const int64_t current = cit == pair_count.end() ? 0 : cit->second;
    if (current != top.count) {
      // Counts only drop without a new queue entry, so a higher entry is stale: requeue it at
      // its true count. A lower one is superseded by the entry pushed when the count rose.
      if (current > 0 && current < top.count) queue.push({current, top.pair});
      continue;
    }
    if (current < min_frequency) break;

    const int32_t a = Left(top.pair), b = Right(top.pair);
    // Two different pairs can spell the same string ("a"+"bc", "ab"+"c"); the token is shared,
    // as in the reference trainer.
    std::string text = out.vocab[a] + out.vocab[b];
    int32_t c;
    if (auto it = ids.find(text); it != ids.end()) {
      c = it->second;
    } else {
      c = static_cast<int32_t>(out.vocab.size());
      ids.emplace(text, c);
      out.vocab.push_back(std::move(text));
    }
    // A pair can only come back through such a shared token; its merge rule exists already.
    if (merged_pairs.insert(top.pair).second) out.merges.emplace_back(a, b);

    std::vector<uint32_t> affected = std::move(where[top.pair]);
    where.erase(top.pair);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    touched.clear();
    for (const uint32_t wi : affected) {
      Word& w = words[wi];
      MergeSymbols(w.symbols, a, b, c, merged);
      if (merged.size() == w.symbols.size()) continue;  // stale index entry
      // Words are short, so replacing the word's pairs wholesale is cheaper than being clever
      // about overlapping occurrences ("a b a b").
      for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
        pair_count[Key(w.symbols[i], w.symbols[i + 1])] -= w.count;
      }
      for (size_t i = 0; i + 1 < merged.size(); ++i) {
        const PairKey k = Key(merged[i], merged[i + 1]);
        pair_count[k] += w.count;
        // Only pairs with the new token can be new to this word or have grown.
        if (merged[i] == c || merged[i + 1] == c) {
          where[k].push_back(wi);
          touched.push_back(k);
        }
      }
      w.symbols.swap(merged);
    }
    // Normally gone now; it survives only if the shared-token case above re-created it.
    if (auto it = pair_count.find(top.pair); it != pair_count.end() && it->second == 0) {
      pair_count.erase(it);
    }
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    for (const PairKey k : touched) {
      const int64_t n = pair_count[k];
      if (n > 0) queue.push({n, k});
    }
    progress.Update(static_cast<double>(out.vocab.size() - start),
                    std::to_string(out.merges.size()) + " merges");
  }
  progress.Finish(std::to_string(out.merges.size()) + " merges");

  for (const Word& w : words) out.tokens += w.count * static_cast<int64_t>(w.symbols.size());
  return out;
}

}  // namespace r1::tok
