// Word -> ids memo for BPE. Natural text repeats a small set of words, so most words skip the
// merge loop entirely. Keys and ids live in two flat arenas and the table is open-addressed, so a
// hit allocates nothing; when full the whole cache is dropped and refilled, which keeps it bounded
// without the bookkeeping an LRU would add to every hit. Safe to use from several threads.
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace r1::tok {

uint64_t HashBytes(std::string_view s);

class WordCache {
 public:
  explicit WordCache(size_t max_words = 1 << 16);

  // Appends the ids cached for `word` to `out`; false (and nothing appended) on a miss.
  bool Lookup(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const;
  void Insert(std::string_view word, uint64_t hash, std::span<const int32_t> ids);

 private:
  struct Slot {
    uint64_t hash;
    uint32_t key_offset;  // kEmpty when unused
    uint32_t key_length;
    uint32_t ids_offset;
    uint32_t ids_length;
  };
  static constexpr uint32_t kEmpty = 0xFFFFFFFFu;

  void ClearLocked();

  const size_t max_words_;
  mutable std::mutex mu_;
  std::vector<Slot> slots_;  // twice max_words_, a power of two
  std::string keys_;
  std::vector<int32_t> ids_;
  size_t words_ = 0;
};

}  // namespace r1::tok
