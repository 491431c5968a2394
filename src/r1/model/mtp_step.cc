// Inference forward of a multi-token-prediction module: the same math as the trainer's MTP pass
// (train_model.cc), one position at a time or in runs, with the module's own KV cache layer.
#include <algorithm>
#include <numeric>

#include "r1/core/error.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/ops.h"
#include "r1/model/model.h"
#include "r1/model/model_internal.h"

namespace r1 {

void Model::MtpStep(KVCache& cache, int slot, int module, int64_t pos0,
                    std::span<const float> hidden, std::span<const int32_t> next_tokens,
                    const StepOptions& opts, StepOutput& out) const {
  const int64_t d = cfg_.hidden_size, V = cfg_.vocab_size;
  if (module < 0 || module >= num_mtp_modules()) {
    throw Error("mtp step: the model has " + std::to_string(num_mtp_modules()) +
                " MTP module(s), no module " + std::to_string(module));
  }
  if (!cache.Valid(slot)) throw Error("mtp step: no sequence in slot " + std::to_string(slot));
  const int64_t n = static_cast<int64_t>(next_tokens.size());
  if (n == 0) throw Error("mtp step: no positions given");
  if (static_cast<int64_t>(hidden.size()) != n * d) {
    throw Error("mtp step: expected " + std::to_string(n) + " hidden rows of " +
                std::to_string(d) + " floats, got " + std::to_string(hidden.size()) + " floats");
  }
  if (pos0 < 0) throw Error("mtp step: negative position " + std::to_string(pos0));
  for (int32_t t : next_tokens) {
    if (t < 0 || t >= V) {
      throw Error("mtp step: token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                  std::to_string(V - 1) + ")");
    }
  }
  const MtpWeights& m = w_.mtp[module];
  const int layer = cfg_.num_hidden_layers + module;

  Scratch s;
  s.n = n;
  s.slot.assign(n, slot);
  s.pos.resize(n);
  std::iota(s.pos.begin(), s.pos.end(), pos0);
  s.chunk_range.emplace_back(0, n);
  // Reserve never shrinks and leaves Length() alone, so the main model's rows are untouched.
  cache.Reserve(slot, std::max(cache.Length(slot), pos0 + n));

  // [enorm(Emb(next)); hnorm(h)]: embedding first, as the trainer and vLLM/SGLang concatenate.
  std::vector<float> cat(n * 2 * d);
  for (int64_t i = 0; i < n; ++i) {
    float* row = cat.data() + i * 2 * d;
    m.embed.DequantRow(next_tokens[i], 0, d, row + d);  // raw embedding parked in the second half
    RmsNorm(row + d, m.enorm.data(), d, cfg_.rms_norm_eps, row);
    RmsNorm(hidden.data() + i * d, m.hnorm.data(), d, cfg_.rms_norm_eps, row + d);
  }
  s.x.resize(n * d);
  s.h.resize(n * d);
  s.attn.resize(n * d);
  s.ffn.resize(n * d);
  MatMul(m.eh_proj, cat.data(), n, s.x.data(), pool());
  DecoderBlock(layer, m.block, cache, s);

  std::vector<int64_t> rows;
  if (opts.all_logits) {
    rows.resize(n);
    std::iota(rows.begin(), rows.end(), 0);
  } else {
    rows.push_back(n - 1);
  }
  const int64_t r = static_cast<int64_t>(rows.size());
  out.rows = r;
  out.hidden.clear();
  out.final_hidden.resize(r * d);
  std::vector<float> normed(r * d);
  for (int64_t i = 0; i < r; ++i) {
    std::copy_n(s.x.data() + rows[i] * d, d, out.final_hidden.data() + i * d);
    RmsNorm(s.x.data() + rows[i] * d, m.head_norm.data(), d, cfg_.rms_norm_eps,
            normed.data() + i * d);
  }
  if (!opts.compute_logits) {
    out.logits.clear();
    return;
  }
  out.logits.resize(r * V);
  MatMul(m.head, normed.data(), r, out.logits.data(), pool());
}

}  // namespace r1
