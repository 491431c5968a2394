#include "r1/infer/kv_cache.h"

#include "r1/core/error.h"

namespace r1 {

namespace {
int64_t RowWidth(const Config& c) {
  if (c.is_deepseek()) return c.kv_lora_rank + c.qk_rope_head_dim;
  return 2LL * c.num_key_value_heads * c.head_dim;
}
}  // namespace

int64_t KVBytesPerToken(const Config& cfg, int bytes_per_value) {
  return RowWidth(cfg) * cfg.num_hidden_layers * bytes_per_value;
}

KVCache::KVCache(const Config& cfg, int extra_layers)
    : row_width_(RowWidth(cfg)),
      num_layers_(cfg.num_hidden_layers),
      total_layers_(cfg.num_hidden_layers + extra_layers) {}

int KVCache::AddSequence() {
  for (size_t i = 0; i < seqs_.size(); ++i) {
    if (!seqs_[i].live) {
      seqs_[i].live = true;
      seqs_[i].length = 0;
      seqs_[i].layers.assign(total_layers_, {});
      return static_cast<int>(i);
    }
  }
  Seq s;
  s.live = true;
  s.layers.resize(total_layers_);
  seqs_.push_back(std::move(s));
  return static_cast<int>(seqs_.size() - 1);
}

bool KVCache::Valid(int slot) const {
  return slot >= 0 && slot < static_cast<int>(seqs_.size()) && seqs_[slot].live;
}

void KVCache::RemoveSequence(int slot) {
  if (!Valid(slot)) throw Error("KV cache: no sequence in slot " + std::to_string(slot));
  seqs_[slot] = Seq{};
}

void KVCache::Truncate(int slot, int64_t length) {
  if (!Valid(slot)) throw Error("KV cache: no sequence in slot " + std::to_string(slot));
  if (length < seqs_[slot].length) seqs_[slot].length = length;
}

int64_t KVCache::Length(int slot) const {
  if (!Valid(slot)) throw Error("KV cache: no sequence in slot " + std::to_string(slot));
  return seqs_[slot].length;
}

void KVCache::Reserve(int slot, int64_t new_length) {
  if (!Valid(slot)) throw Error("KV cache: no sequence in slot " + std::to_string(slot));
  for (auto& layer : seqs_[slot].layers) {
    const size_t need = static_cast<size_t>(new_length * row_width_);
    if (layer.capacity() < need) {
      // Doubling keeps appends amortized O(1) during decoding.
      layer.reserve(std::max(need, layer.capacity() * 2));
    }
    if (layer.size() < need) layer.resize(need);
  }
}

void KVCache::Commit(int slot, int64_t new_length) {
  if (!Valid(slot)) throw Error("KV cache: no sequence in slot " + std::to_string(slot));
  seqs_[slot].length = new_length;
}

}  // namespace r1
