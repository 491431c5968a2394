#include "r1/tokenizer/bpe_cache.h"

#include <cstring>

namespace r1::tok {

uint64_t HashBytes(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = s.size() * kMul;
  const char* p = s.data();
  size_t n = s.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
    p += 8;
    n -= 8;
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  return h * 0xBF58476D1CE4E5B9ull ^ (h >> 31);
}

WordCache::WordCache(size_t max_words) : max_words_(max_words) {
  size_t cap = 16;
  while (cap < max_words_ * 2) cap <<= 1;
  slots_.assign(cap, Slot{0, kEmpty, 0, 0, 0});
}

bool WordCache::Lookup(std::string_view word, uint64_t hash, std::vector<int32_t>& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.key_offset == kEmpty) return false;
    if (s.hash == hash && s.key_length == word.size() &&
        std::memcmp(keys_.data() + s.key_offset, word.data(), word.size()) == 0) {
      out.insert(out.end(), ids_.begin() + s.ids_offset,
                 ids_.begin() + s.ids_offset + s.ids_length);
      return true;
    }
  }
}

void WordCache::Insert(std::string_view word, uint64_t hash, std::span<const int32_t> ids) {
  std::lock_guard<std::mutex> lock(mu_);
  // Offsets are 32-bit; the arenas are dropped long before that matters.
  if (words_ >= max_words_ || keys_.size() + word.size() > 0x7FFFFFFFu ||
      ids_.size() + ids.size() > 0x7FFFFFFFu) {
    ClearLocked();
  }
  const size_t mask = slots_.size() - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.key_offset == kEmpty) {
      s = Slot{hash, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(word.size()),
               static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(ids.size())};
      keys_.append(word);
      ids_.insert(ids_.end(), ids.begin(), ids.end());
      ++words_;
      return;
    }
    if (s.hash == hash && s.key_length == word.size() &&
        std::memcmp(keys_.data() + s.key_offset, word.data(), word.size()) == 0) {
      return;  // another thread got here first
    }
  }
}

void WordCache::ClearLocked() {
  for (Slot& s : slots_) s.key_offset = kEmpty;
  keys_.clear();
  ids_.clear();
  words_ = 0;
}

}  // namespace r1::tok
