// Merge rules as a flat open-addressing hash table keyed by the (left id, right id) pair. BPE
// looks a pair up for every adjacent symbol pair it considers, so this is the hottest lookup in
// encoding; a node-based std::unordered_map costs a pointer chase per probe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace r1::tok {

struct MergeRule {
  uint32_t rank;   // position in the merges list: lower merges first
  int32_t merged;  // id of the token the pair becomes
};

class PairMap {
 public:
  void Reserve(size_t rules) {
    size_t cap = 16;
    while (cap < rules * 2) cap <<= 1;
    slots_.assign(cap, Slot{kEmpty, {0, 0}});
    mask_ = cap - 1;
    shift_ = 64;
    for (size_t c = cap; c > 1; c >>= 1) --shift_;
    size_ = 0;
  }

  // A pair listed twice keeps its later rule, as the reference's HashMap::collect does.
  void Insert(int32_t left, int32_t right, MergeRule rule) {
    if ((size_ + 1) * 2 > slots_.size()) Grow();
    const uint64_t key = Key(left, right);
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) {
        slots_[i].rule = rule;
        return;
      }
      if (slots_[i].key == kEmpty) {
        slots_[i] = Slot{key, rule};
        ++size_;
        return;
      }
    }
  }

  const MergeRule* Find(int32_t left, int32_t right) const {
    if (slots_.empty()) return nullptr;
    const uint64_t key = Key(left, right);
    for (size_t i = Home(key);; i = (i + 1) & mask_) {
      if (slots_[i].key == key) return &slots_[i].rule;
      if (slots_[i].key == kEmpty) return nullptr;
    }
  }

  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t key;
    MergeRule rule;
  };
  // Ids are non-negative int32, so no real pair has all 64 bits set.
  static constexpr uint64_t kEmpty = ~0ull;

  static uint64_t Key(int32_t l, int32_t r) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(l)) << 32) | static_cast<uint32_t>(r);
  }
  size_t Home(uint64_t key) const { return (key * 0x9E3779B97F4A7C15ull) >> shift_; }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    Reserve(old.empty() ? 8 : old.size());
    for (const Slot& s : old) {
      if (s.key != kEmpty) {
        Insert(static_cast<int32_t>(s.key >> 32), static_cast<int32_t>(s.key & 0xFFFFFFFFu), s.rule);
      }
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
};

}  // namespace r1::tok
