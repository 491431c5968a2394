// What one token costs a model: the weight bytes a decode step reads and the multiply-adds a
// prefill token performs; and what memory a model needs beside its weights. Used by `r1 bench` to
// turn speeds into ratios of the machine's limits and by `r1 info` for its memory plan.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "r1/model/weights.h"

namespace r1 {

struct TokenCost {
  // Weight bytes read per decoded token: every matrix except the embedding (one row is
  // gathered), routed experts counted num_experts_per_tok / n_routed_experts of the time.
  double decode_weight_bytes = 0;
  // Float operations per prefill token in the matrix products (2 per multiply-add), without the
  // output head, which a prefill applies to the last token only. Attention over the context is
  // not included.
  double prefill_flops = 0;
};

TokenCost ComputeTokenCost(const Config& cfg, const Weights& w);

// Short name of a matrix storage type as the CLI spells formats: "f32", "f16", "bf16", "fp8",
// "q8" (I8 codes), "q4" (packed 4-bit codes).
std::string MatrixFormatName(DType dtype);

// Stored bytes (scales included) of the main model's matrices, embedding and head included (a
// tied head once), by MatrixFormatName. MTP modules are left out: plain decoding never reads them.
std::map<std::string, double> MatrixBytesByFormat(const Weights& w);

// The one format of all those matrices, or "mixed".
std::string WeightFormat(const std::map<std::string, double>& bytes_by_format);

// Bytes of the float32 buffers one Model::Step allocates for `tokens` new tokens of sequences up
// to `context` positions long, `logit_rows` of them getting logits, with `threads` workers:
// activations, attention temporaries, the largest FFN's intermediates, the head's output. An
// estimate that follows model.cc's buffers (absorbed MLA); the KV cache is not included.
int64_t StepScratchBytes(const Config& cfg, int64_t tokens, int64_t logit_rows, int64_t context,
                         int threads);

}  // namespace r1
