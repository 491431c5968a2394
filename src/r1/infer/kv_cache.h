// Per-sequence key/value cache. For MLA it holds only what the absorbed attention needs: the
// normalized compressed latent (kv_lora_rank) and the rotated rope key (qk_rope_head_dim) per
// token per layer; for GQA the rotated K and the V of the KV heads.
#pragma once

#include <cstdint>
#include <vector>

#include "r1/model/config.h"

namespace r1 {

class KVCache {
 public:
  // `extra_layers` reserves caches for MTP modules after the main layers.
  explicit KVCache(const Config& cfg, int extra_layers = 0);

  // Returns a slot id for a new, empty sequence.
  int AddSequence();
  void RemoveSequence(int slot);
  // Drops everything from position `length` on (rejected speculative tokens, reuse of a slot).
  void Truncate(int slot, int64_t length);
  int64_t Length(int slot) const;
  bool Valid(int slot) const;

  // Floats per token per layer: MLA d_c + d_r; GQA 2 * H_kv * D_h (K then V).
  int64_t row_width() const { return row_width_; }
  // Bytes per token over all main layers, as stored (float32).
  int64_t BytesPerToken() const { return row_width_ * num_layers_ * 4; }

  // Makes room for positions up to `new_length` - 1 (contents of new rows undefined) without
  // changing Length(); the step function writes them, then calls Commit.
  void Reserve(int slot, int64_t new_length);
  void Commit(int slot, int64_t new_length);
  float* Row(int slot, int layer, int64_t pos) {
    return seqs_[slot].layers[layer].data() + pos * row_width_;
  }
  const float* Row(int slot, int layer, int64_t pos) const {
    return seqs_[slot].layers[layer].data() + pos * row_width_;
  }

 private:
  struct Seq {
    bool live = false;
    int64_t length = 0;
    std::vector<std::vector<float>> layers;
  };
  int64_t row_width_;
  int num_layers_;
  int total_layers_;
  std::vector<Seq> seqs_;
};

// Bytes per token of a cache in the given element size, for `r1 info` on any config.
int64_t KVBytesPerToken(const Config& cfg, int bytes_per_value);

}  // namespace r1
