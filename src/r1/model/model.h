// A loaded model and its batched step function: one forward definition for all four
// architectures, advancing any number of sequences of different lengths and positions at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "r1/core/thread_pool.h"
#include "r1/infer/kv_cache.h"
#include "r1/io/safetensors.h"
#include "r1/model/config.h"
#include "r1/model/weights.h"

namespace r1 {

// How MLA attention is computed. Both give the same numbers (model-spec §3.6.3); absorbed reads
// only the compressed cache, naive re-expands keys and values per head (the training form).
enum class MlaMode { kAbsorbed, kNaive };

// New tokens for one sequence: they are appended to the sequence's cache at positions
// Length(slot), Length(slot)+1, ...
struct SeqChunk {
  int slot = 0;
  std::span<const int32_t> tokens;
};

struct StepOptions {
  bool all_logits = false;      // logits for every new token, else only each chunk's last
  bool keep_hidden = false;     // residual stream after every layer, for every new token
  bool compute_logits = true;
  // final_hidden for every new token even when only each chunk's last gets logits: what an MTP
  // module needs after a prefill, without paying for the head on every prompt token.
  bool all_final_hidden = false;
};

struct StepOutput {
  // [rows, vocab]: rows = total new tokens (all_logits) or one per chunk, in chunk order.
  std::vector<float> logits;
  int64_t rows = 0;
  // hidden[layer] is [total new tokens, hidden_size] when keep_hidden.
  std::vector<std::vector<float>> hidden;
  // The final hidden state (after model.norm) of the rows that got logits, [rows, hidden]; of
  // every new token, [total new tokens, hidden], with all_final_hidden.
  std::vector<float> final_hidden;
};

class Model {
 public:
  // Loads config.json and the safetensors of a Hugging Face model folder.
  static std::unique_ptr<Model> Load(const std::string& dir);
  // For models whose tensors live elsewhere (tests, the trainer).
  Model(Config cfg, TensorStore store);

  const Config& config() const { return cfg_; }
  const Weights& weights() const { return w_; }
  const TensorStore& store() const { return store_; }
  const std::string& dir() const { return dir_; }

  void set_mla_mode(MlaMode m) { mla_mode_ = m; }
  MlaMode mla_mode() const { return mla_mode_; }
  void set_pool(ThreadPool* pool) { pool_ = pool; }
  ThreadPool& pool() const { return pool_ ? *pool_ : DefaultPool(); }

  // Reads every mapped weight page once, in parallel, so the first step does not stall on page
  // faults; `progress` gets the fraction done. Worth it for models of a gigabyte and more. First
  // readies each file for 2 MiB pages (PrepareHugePages in io/huge_pages.h); returns the bytes
  // of the files that were in the page cache in 4 KiB pages and are read again from the file.
  // With R1_MMAP=0 each file is copied into anonymous memory instead (MoveIntoAnonymousMemory),
  // and the bytes copied are returned.
  size_t Prefault(const std::function<void(double)>& progress = {}) const;

  KVCache NewCache() const { return KVCache(cfg_, static_cast<int>(w_.mtp.size())); }

  // Runs the new tokens of every chunk through the model, appending them to the cache.
  // Throws r1::Error for an invalid slot, an empty chunk, a token id outside the vocabulary or a
  // slot named twice.
  void Step(KVCache& cache, std::span<const SeqChunk> chunks, const StepOptions& opts,
            StepOutput& out) const;

  // Number of multi-token-prediction modules loaded (0 when the checkpoint has none).
  int num_mtp_modules() const { return static_cast<int>(w_.mtp.size()); }

  // Runs MTP module `module` (model-spec §5, the trainer's forward) for n = next_tokens.size()
  // consecutive positions pos0 .. pos0+n-1 of the sequence in `slot`. Row i combines
  // hidden[i], the main model's final hidden state at position pos0+i (after model.norm, as
  // StepOutput::final_hidden), with the embedding of next_tokens[i], the token at pos0+i+1:
  //   h'  = eh_proj [enorm(Emb(next)); hnorm(h)],  then the module's decoder block,
  // and its logits (shared_head.norm, then the head) predict the token at pos0+i+2.
  // The block's keys go to the module's own cache layer at those positions and attend to its
  // rows 0 .. pos0+i, which the caller must have filled before; the cache's Length() is the main
  // model's and is not changed, so the caller tracks how far the module's layer is filled.
  // `opts` chooses the logit rows as in Step (all_logits, compute_logits). out.final_hidden gets
  // the block's output for those rows, before shared_head.norm: the h^k a module k+1 would take.
  // Throws r1::Error for a missing module, a bad slot or position, a token outside the
  // vocabulary, or `hidden` not [n, hidden_size].
  void MtpStep(KVCache& cache, int slot, int module, int64_t pos0, std::span<const float> hidden,
               std::span<const int32_t> next_tokens, const StepOptions& opts,
               StepOutput& out) const;

 private:
  struct Scratch;
  // One decoder layer on the scratch's residual stream s.x, in place.
  void DecoderBlock(int layer, const LayerWeights& L, KVCache& cache, Scratch& s) const;
  void Attention(int layer, const LayerWeights& L, KVCache& cache, Scratch& s,
                 float* out) const;
  void MlaAttention(int layer, const LayerWeights& L, KVCache& cache, Scratch& s,
                    float* out) const;
  void MlaExpandedAttention(int layer, const LayerWeights& L, KVCache& cache, Scratch& s,
                            int64_t begin, int64_t end) const;
  void GqaAttention(int layer, const LayerWeights& L, KVCache& cache, Scratch& s,
                    float* out) const;
  void Ffn(const LayerWeights& L, const float* x, int64_t n, float* out) const;
  void Mlp(const MlpWeights& m, const float* x, int64_t n, float* out) const;
  void Moe(const LayerWeights& L, const float* x, int64_t n, float* out) const;
  void MoeExpertsInParallel(const LayerWeights& L, const float* x, int64_t n,
                            const std::vector<std::vector<std::pair<int64_t, float>>>& assigned,
                            float* out) const;

  std::string dir_;
  Config cfg_;
  TensorStore store_;
  Weights w_;
  std::vector<float> rope_freq_;
  float attn_scale_;
  MlaMode mla_mode_ = MlaMode::kAbsorbed;
  ThreadPool* pool_ = nullptr;
};

}  // namespace r1
