#include "r1/tokenizer/bpe_merge.h"

#include <algorithm>
#include <cstring>
#include <limits>

namespace r1::tok {
namespace {

constexpr size_t kScanMaxSymbols = 32;
constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();

MergeRule Lookup(const PairMap& merges, int32_t l, int32_t r) {
  const MergeRule* rule = merges.Find(l, r);
  return rule ? *rule : MergeRule{kNoRank, -1};
}

struct Candidate {
  uint32_t rank;
  uint32_t pos;  // index of the left symbol in the original word
  int32_t merged;
};

// std heap functions build a max-heap; "greater" puts the lowest (rank, pos) on top.
bool HeapAfter(const Candidate& a, const Candidate& b) {
  return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
}

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

}  // namespace

void ApplyMerges(const PairMap& merges, std::vector<int32_t>& symbols) {
  if (symbols.size() <= kScanMaxSymbols) {
    ApplyMergesByScan(merges, symbols);
  } else {
    ApplyMergesByHeap(merges, symbols);
  }
}

void ApplyMergesByScan(const PairMap& merges, std::vector<int32_t>& symbols) {
  size_t n = symbols.size();
  if (n < 2) return;
  thread_local std::vector<MergeRule> pairs;
  pairs.resize(n - 1);
  int32_t* sym = symbols.data();
  MergeRule* pr = pairs.data();
  for (size_t i = 0; i + 1 < n; ++i) pr[i] = Lookup(merges, sym[i], sym[i + 1]);
  while (n > 1) {
    uint32_t best = kNoRank;
    size_t at = 0;
    for (size_t i = 0; i + 1 < n; ++i) {
      if (pr[i].rank < best) {
        best = pr[i].rank;
        at = i;
      }
    }
    if (best == kNoRank) break;
    sym[at] = pr[at].merged;
    std::memmove(sym + at + 1, sym + at + 2, (n - at - 2) * sizeof(int32_t));
    std::memmove(pr + at, pr + at + 1, (n - at - 2) * sizeof(MergeRule));
    --n;
    if (at > 0) pr[at - 1] = Lookup(merges, sym[at - 1], sym[at]);
    if (at + 1 < n) pr[at] = Lookup(merges, sym[at], sym[at + 1]);
  }
  symbols.resize(n);
}

void ApplyMergesByHeap(const PairMap& merges, std::vector<int32_t>& symbols) {
  const size_t n = symbols.size();
  if (n < 2) return;
  thread_local std::vector<Symbol> sym;
  thread_local std::vector<Candidate> heap;
  sym.resize(n);
  heap.clear();
  for (size_t i = 0; i < n; ++i) {
    sym[i] = Symbol{symbols[i], static_cast<int32_t>(i) - 1,
                    i + 1 < n ? static_cast<int32_t>(i + 1) : -1, true};
  }
  auto push = [&](size_t pos) {
    const int32_t next = sym[pos].next;
    const MergeRule r = Lookup(merges, sym[pos].id, sym[next].id);
    if (r.rank == kNoRank) return;
    heap.push_back({r.rank, static_cast<uint32_t>(pos), r.merged});
    std::push_heap(heap.begin(), heap.end(), HeapAfter);
  };
  for (size_t i = 0; i + 1 < n; ++i) push(i);

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), HeapAfter);
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[top.pos];
    if (!left.alive || left.next < 0) continue;
    // Entries go stale when either symbol of their pair has since merged with something else.
    const MergeRule current = Lookup(merges, left.id, sym[left.next].id);
    if (current.merged != top.merged || current.rank != top.rank) continue;
    Symbol& right = sym[left.next];
    left.id = top.merged;
    right.alive = false;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = static_cast<int32_t>(top.pos);
    if (left.prev >= 0) push(static_cast<size_t>(left.prev));
    if (left.next >= 0) push(top.pos);
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0; i = sym[i].next) symbols[out++] = sym[i].id;
  symbols.resize(out);
}

}  // namespace r1::tok
