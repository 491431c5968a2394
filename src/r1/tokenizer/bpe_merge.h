// The BPE merge loop: repeatedly merge the adjacent pair whose rule has the lowest rank (the
// leftmost such pair on ties) until no rule applies. This is the reference's order; its binary
// heap pops (rank, position) minima, which is the same thing.
#pragma once

#include <cstdint>
#include <vector>

#include "r1/tokenizer/bpe_pair_map.h"

namespace r1::tok {

// Merges `symbols` (token ids) in place. Picks the strategy by length; both give equal results.
void ApplyMerges(const PairMap& merges, std::vector<int32_t>& symbols);

// Rescans all pairs after every merge: quadratic, but fastest for the short words prose has.
void ApplyMergesByScan(const PairMap& merges, std::vector<int32_t>& symbols);
// Heap of candidate pairs over a linked list: O(n log n), for long words (runs of digits, symbols,
// letters without spaces) that would make scanning quadratic.
void ApplyMergesByHeap(const PairMap& merges, std::vector<int32_t>& symbols);

}  // namespace r1::tok
