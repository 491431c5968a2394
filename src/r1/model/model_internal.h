// Model internals shared by the files that implement Model (model.cc, mtp_step.cc); not part of
// the public API.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "r1/model/model.h"

namespace r1 {

// Per-step bookkeeping and buffers, reused across layers.
struct Model::Scratch {
  int64_t n = 0;                      // new tokens in the step
  std::vector<int> slot;              // per token
  std::vector<int64_t> pos;           // per token
  std::vector<std::pair<int64_t, int64_t>> chunk_range;  // [begin, end) token rows per chunk
  std::vector<float> x, h, attn, ffn;  // [n, d]
  std::vector<float> q, qa, kva, o;   // attention temporaries
  std::vector<float> qcat, ocat;      // MLA decode: absorbed queries, attended latents
  std::vector<float> part_out, part_max, part_sum;  // decode split by keys (AttendPart)
};

// Whether MLA attends a chunk of n new tokens, the last at context length T, cheaper through
// keys and values decompressed from the latent cache (one kv_b product over the T cached rows,
// then attention with heads of qk_nope + qk_rope dims) than in the absorbed form (scores and
// values over kv_lora_rank + qk_rope wide latent rows per head): by multiply-adds. A prefill
// from an empty cache always is; a few tokens after a long context never are.
bool MlaChunkExpands(const Config& cfg, int64_t n, int64_t T);

// MLA and GQA decode attend a token whose context holds at least kMlaSplitKeysMin positions in
// kMlaKeyParts parts of its keys (all heads each, merged after) instead of in parts of its
// heads: each thread then reads its share of the cache rows, not all of them (MLA: every head
// reads the whole latent row; GQA: a KV head's slices of the rows drew the others' bytes along).
// The parts do not depend on the thread count, so neither does the result.
inline constexpr int64_t kMlaSplitKeysMin = 512;
inline constexpr int64_t kMlaKeyParts = 8;

}  // namespace r1
