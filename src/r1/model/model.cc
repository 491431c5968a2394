#include "r1/model/model.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>

#include "r1/core/error.h"
#include "r1/core/process_memory.h"
#include "r1/io/huge_pages.h"
#include "r1/kernels/attention.h"
#include "r1/kernels/gemm.h"
#include "r1/kernels/gemm_bf16.h"
#include "r1/kernels/matmul.h"
#include "r1/kernels/ops.h"
#include "r1/model/model_internal.h"
#include "r1/model/rope.h"
#include "r1/model/routing.h"

namespace r1 {

namespace {

thread_local std::vector<float> t_buf_a, t_buf_b, t_buf_c;
// The MLP's gate and up activations, kept between calls: a fresh [tokens, intermediate] vector per
// layer meant a prefill page-faulted and zeroed tens of MB per layer (7% of its time).
// Chunks from this many tokens on take the blocked attention path; blocks hold at most
// kAttendBlockMaxTokens queries so a prefill splits into enough items for every thread.
constexpr int64_t kAttendBlockMinTokens = 8;
constexpr int64_t kAttendBlockMaxTokens = 32;
constexpr double kMoeWholeExpertsMaxBytes = 64.0 * (1 << 20);

float* Buf(std::vector<float>& v, size_t n) {
  if (v.size() < n) v.resize(n);
  return v.data();
}

// Token rows per work item of the per-token loops below (residual adds, norms, RoPE, cache
// writes): one row, as in decode, stays on the calling thread.
constexpr int64_t kRowsGrain = 8;

// Per token row: x += delta (when given), then h = RmsNorm(x) (when h is given), over every
// thread. On the calling thread alone, these loops and the ones in the attention functions left
// the other thread spinning for about 4% of a 512-token prefill. Each row's arithmetic is the
// sequential loop's, so results are unchanged.
void AddThenNormRows(float* x, const float* delta, float* h, int64_t n, int64_t d, const float* w,
                     float eps, ThreadPool& pool) {
  pool.ParallelFor(n, kRowsGrain, [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      float* xr = x + r * d;
      if (delta)
        for (int64_t i = 0; i < d; ++i) xr[i] += delta[r * d + i];
      if (h) RmsNorm(xr, w, d, eps, h + r * d);
    }
  });
}

}  // namespace

std::unique_ptr<Model> Model::Load(const std::string& dir) {
  Config cfg = LoadConfig(dir);
  TensorStore store = TensorStore::OpenDir(dir);
  auto m = std::make_unique<Model>(std::move(cfg), std::move(store));
  m->dir_ = dir;
  return m;
}

Model::Model(Config cfg, TensorStore store) : cfg_(std::move(cfg)), store_(std::move(store)) {
  w_ = BindWeights(cfg_, store_);
  const int rot = cfg_.is_deepseek() ? cfg_.qk_rope_head_dim : cfg_.head_dim;
  rope_freq_ = RopeInvFreq(cfg_, rot);
  attn_scale_ = static_cast<float>(cfg_.AttentionScale());
  KeepFreedBlocksInHeap();  // steps allocate and free megabytes of activations and KV rows
}

size_t Model::Prefault(const std::function<void(double)>& progress) const {
  // One bar for both passes: a re-read (2 s per GB) fills its first half and the pass after it
  // the rest (it took another 1.1 s for 1.1 GB), the fraction shown only growing.
  double shown = 0;
  auto report = [&](double f) {
    shown = std::max(shown, f);
    if (progress) progress(shown);
  };
  size_t reread = 0, mapped = 0, before = 0;
  for (const SafetensorsFile* f : store_.Files()) mapped += f->mapping().size();
  for (const SafetensorsFile* f : store_.Files()) {
    const double size = static_cast<double>(f->mapping().size());
    auto first_half = [&](double g) {
      report(0.5 * (static_cast<double>(before) + g * size) / static_cast<double>(mapped));
    };
    reread += WeightsInAnonymousMemory() ? MoveIntoAnonymousMemory(f->mapping(), first_half)
                                         : PrepareHugePages(f->path(), f->mapping(), first_half);
    before += f->mapping().size();
  }
  const auto names = store_.Names();
  const double total = static_cast<double>(std::max<size_t>(1, store_.TotalBytes()));
  double done = 0;
  std::atomic<uint64_t> sink{0};
  for (const auto& name : names) {
    const TensorView& t = store_.Get(name);
    constexpr int64_t kPage = 4096;
    const int64_t pages = static_cast<int64_t>((t.nbytes + kPage - 1) / kPage);
    pool().ParallelFor(pages, 256, [&](int64_t b, int64_t e, int) {
      uint64_t s = 0;
      for (int64_t p = b; p < e; ++p) s += t.data[p * kPage];
      sink.fetch_add(s, std::memory_order_relaxed);
    });
    done += static_cast<double>(t.nbytes);
    report(done / total);
  }
  return reread;
}

void Model::Step(KVCache& cache, std::span<const SeqChunk> chunks, const StepOptions& opts,
                 StepOutput& out) const {
  const int64_t d = cfg_.hidden_size;
  Scratch s;
  std::set<int> seen;
  for (const SeqChunk& c : chunks) {
    if (!cache.Valid(c.slot)) throw Error("step: no sequence in slot " + std::to_string(c.slot));
    if (!seen.insert(c.slot).second)
      throw Error("step: slot " + std::to_string(c.slot) + " appears twice in one step");
    if (c.tokens.empty()) throw Error("step: empty chunk for slot " + std::to_string(c.slot));
    const int64_t begin = s.n;
    const int64_t p0 = cache.Length(c.slot);
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      const int32_t t = c.tokens[i];
      if (t < 0 || t >= cfg_.vocab_size) {
        throw Error("step: token id " + std::to_string(t) + " is outside the vocabulary (0.." +
                    std::to_string(cfg_.vocab_size - 1) + ")");
      }
      s.slot.push_back(c.slot);
      s.pos.push_back(p0 + static_cast<int64_t>(i));
    }
    s.n += static_cast<int64_t>(c.tokens.size());
    s.chunk_range.emplace_back(begin, s.n);
  }
  for (const SeqChunk& c : chunks)
    cache.Reserve(c.slot, cache.Length(c.slot) + static_cast<int64_t>(c.tokens.size()));

  const int64_t n = s.n;
  s.x.resize(n * d);
  s.h.resize(n * d);
  s.attn.resize(n * d);
  s.ffn.resize(n * d);
  {
    int64_t row = 0;
    for (const SeqChunk& c : chunks)
      for (int32_t t : c.tokens) w_.embed.DequantRow(t, 0, d, s.x.data() + d * row++);
  }
  if (opts.keep_hidden) out.hidden.assign(cfg_.num_hidden_layers, {});

  for (int l = 0; l < cfg_.num_hidden_layers; ++l) {
    DecoderBlock(l, w_.layers[l], cache, s);
    if (opts.keep_hidden) out.hidden[l] = s.x;
  }
  for (size_t i = 0; i < chunks.size(); ++i)
    cache.Commit(chunks[i].slot, cache.Length(chunks[i].slot) +
                                     static_cast<int64_t>(chunks[i].tokens.size()));

  // Rows that get logits, and rows that get a final hidden state (a superset).
  std::vector<int64_t> rows;
  if (opts.all_logits) {
    rows.resize(n);
    std::iota(rows.begin(), rows.end(), 0);
  } else {
    for (auto& r : s.chunk_range) rows.push_back(r.second - 1);
  }
  out.rows = static_cast<int64_t>(rows.size());
  const bool hidden_only_rows = opts.all_final_hidden && !opts.all_logits;
  const int64_t hidden_rows = hidden_only_rows ? n : out.rows;
  out.final_hidden.resize(hidden_rows * d);
  for (int64_t i = 0; i < hidden_rows; ++i) {
    RmsNorm(s.x.data() + (hidden_only_rows ? i : rows[i]) * d, w_.final_norm.data(), d,
            cfg_.rms_norm_eps, out.final_hidden.data() + i * d);
  }
  if (!opts.compute_logits) {
    out.logits.clear();
    return;
  }
  const float* head_in = out.final_hidden.data();
  std::vector<float> gathered;
  if (hidden_only_rows) {
    gathered.resize(rows.size() * d);
    for (size_t i = 0; i < rows.size(); ++i)
      std::copy_n(out.final_hidden.data() + rows[i] * d, d, gathered.data() + i * d);
    head_in = gathered.data();
  }
  out.logits.resize(rows.size() * cfg_.vocab_size);
  MatMul(w_.lm_head, head_in, static_cast<int64_t>(rows.size()), out.logits.data(), pool());
}

void Model::DecoderBlock(int layer, const LayerWeights& L, KVCache& cache, Scratch& s) const {
  const int64_t n = s.n, d = cfg_.hidden_size;
  const float eps = cfg_.rms_norm_eps;
  AddThenNormRows(s.x.data(), nullptr, s.h.data(), n, d, L.input_norm.data(), eps, pool());
  Attention(layer, L, cache, s, s.attn.data());
  AddThenNormRows(s.x.data(), s.attn.data(), s.h.data(), n, d, L.post_norm.data(), eps, pool());
  Ffn(L, s.h.data(), n, s.ffn.data());
  AddThenNormRows(s.x.data(), s.ffn.data(), nullptr, n, d, nullptr, eps, pool());
}

void Model::Attention(int layer, const LayerWeights& L, KVCache& cache, Scratch& s,
                      float* out) const {
  if (cfg_.is_deepseek()) {
    MlaAttention(layer, L, cache, s, out);
  } else {
    GqaAttention(layer, L, cache, s, out);
  }
}

namespace {

// Decode work items (short token, part): a token whose context holds kMlaSplitKeysMin positions
// or more gets kMlaKeyParts parts of its keys, merged after (AttendPart, MergeAttendParts); the
// others `unsplit_parts` parts of their heads. Sizes the part buffers for `rows` attention rows
// of `width` floats per split token and part.
struct DecodeItems {
  std::vector<std::pair<int64_t, int64_t>> items;
  std::vector<int64_t> split_of;  // per short token: its index among the split ones, or -1
  int64_t n_split = 0;
};

DecodeItems PlanDecodeItems(const std::vector<int64_t>& short_tokens,
                            const std::vector<int64_t>& pos, int64_t unsplit_parts, int64_t rows,
                            int64_t width, std::vector<float>& part_out,
                            std::vector<float>& part_max, std::vector<float>& part_sum) {
  DecodeItems plan;
  plan.split_of.assign(short_tokens.size(), -1);
  for (size_t k = 0; k < short_tokens.size(); ++k) {
    const bool split = pos[short_tokens[k]] + 1 >= kMlaSplitKeysMin;
    if (split) plan.split_of[k] = plan.n_split++;
    for (int64_t part = 0; part < (split ? kMlaKeyParts : unsplit_parts); ++part)
      plan.items.emplace_back(static_cast<int64_t>(k), part);
  }
  const int64_t part_rows = plan.n_split * kMlaKeyParts * rows;
  part_out.resize(part_rows * width);
  part_max.resize(part_rows);
  part_sum.resize(part_rows);
  return plan;
}

}  // namespace

void Model::MlaAttention(int layer, const LayerWeights& L, KVCache& cache, Scratch& s,
                         float* out) const {
  const int64_t n = s.n, H = cfg_.num_attention_heads;
  const int64_t dn = cfg_.qk_nope_head_dim, dr = cfg_.qk_rope_head_dim, dv = cfg_.v_head_dim;
  const int64_t dc = cfg_.kv_lora_rank, qk = dn + dr;
  ThreadPool& pool = this->pool();

  // Queries.
  // Queries (compressed first where q_lora_rank > 0), and the compressed latent with the shared
  // rope key, which is written into the cache: one shared product of the block input.
  s.q.resize(n * H * qk);
  s.kva.resize(n * (dc + dr));
  const MatMulJob kv_a{&L.kv_a, s.kva.data(), dc + dr,
                       L.kv_a_bias.empty() ? nullptr : L.kv_a_bias.data()};
  if (cfg_.q_lora_rank > 0) {
    const int64_t dq = cfg_.q_lora_rank;
    s.qa.resize(n * dq);
    const MatMulJob jobs[] = {
        {&L.q_a, s.qa.data(), dq, L.q_a_bias.empty() ? nullptr : L.q_a_bias.data()}, kv_a};
    MatMulShared(jobs, s.h.data(), cfg_.hidden_size, n, pool);
    AddThenNormRows(s.qa.data(), nullptr, s.qa.data(), n, dq, L.q_a_norm.data(),
                    cfg_.rms_norm_eps, pool);
    MatMul(L.q_b, s.qa.data(), n, s.q.data(), pool);
  } else {
    const MatMulJob jobs[] = {{&L.q_proj, s.q.data(), H * qk}, kv_a};
    MatMulShared(jobs, s.h.data(), cfg_.hidden_size, n, pool);
  }
  pool.ParallelFor(n, kRowsGrain, [&](int64_t i0, int64_t i1, int) {
    thread_local std::vector<float> angles;  // one token's, for its key and every head's query
    angles.resize(dr);
    for (int64_t i = i0; i < i1; ++i) {
      float* row = cache.Row(s.slot[i], layer, s.pos[i]);
      const float* a = s.kva.data() + i * (dc + dr);
      RmsNorm(a, L.kv_a_norm.data(), dc, cfg_.rms_norm_eps, row);
      std::copy(a + dc, a + dc + dr, row + dc);
      RopeAngles(dr, s.pos[i], rope_freq_.data(), angles.data());
      RopeInterleaved(row + dc, dr, angles.data());
      for (int64_t h = 0; h < H; ++h)
        RopeInterleaved(s.q.data() + i * H * qk + h * qk + dn, dr, angles.data());
    }
  });

  s.o.resize(n * H * dv);
  const int64_t width = cache.row_width();
  const Matrix& kv_b = L.kv_b;

  if (mla_mode_ == MlaMode::kAbsorbed) {
    // Chunks of many tokens (prefill): through decompressed keys and values where that is less
    // work (MlaChunkExpands), else per head, W_UK and W_UV are widened once, the queries absorbed
    // by one GEMM, and blocks of them attend over the latent rows through AttendBlock.
    std::vector<std::pair<int64_t, int64_t>> long_chunks;  // (chunk index, head)
    std::vector<int64_t> short_tokens;
    for (size_t c = 0; c < s.chunk_range.size(); ++c) {
      auto [begin, end] = s.chunk_range[c];
      const bool long_chunk = end - begin >= kAttendBlockMinTokens;
      if (long_chunk && MlaChunkExpands(cfg_, end - begin, s.pos[end - 1] + 1)) {
        MlaExpandedAttention(layer, L, cache, s, begin, end);
      } else if (long_chunk) {
        for (int64_t h = 0; h < H; ++h) long_chunks.emplace_back(static_cast<int64_t>(c), h);
      } else {
        for (int64_t i = begin; i < end; ++i) short_tokens.push_back(i);
      }
    }
    if (!long_chunks.empty()) {
      pool.ParallelFor(static_cast<int64_t>(long_chunks.size()), 1, [&](int64_t b, int64_t e, int) {
        thread_local std::vector<float> wuk, wuv, qcat, ot;
        thread_local std::vector<int64_t> limit;
        for (int64_t item = b; item < e; ++item) {
          const auto [begin, end] = s.chunk_range[long_chunks[item].first];
          const int64_t h = long_chunks[item].second;
          wuk.resize(dn * dc);
          wuv.resize(dv * dc);
          WidenRows(kv_b, h * (dn + dv), h * (dn + dv) + dn, wuk.data());
          WidenRows(kv_b, h * (dn + dv) + dn, (h + 1) * (dn + dv), wuv.data());
          const int64_t per_block = std::clamp<int64_t>(AttendBlockRows(s.pos[end - 1] + 1), 1,
                                                        kAttendBlockMaxTokens);
          const float* rows0 = cache.Row(s.slot[begin], layer, 0);
          for (int64_t i0 = begin; i0 < end; i0 += per_block) {
            const int64_t m = std::min(end, i0 + per_block) - i0;
            qcat.resize(m * (dc + dr));
            ot.resize(m * dc);
            limit.resize(m);
            const float* qn = s.q.data() + i0 * H * qk + h * qk;
            GemmNNSerial(m, dc, dn, qn, H * qk, wuk.data(), dc, qcat.data(), dc + dr, 0.0f);
            for (int64_t r = 0; r < m; ++r) {
              std::copy_n(qn + r * H * qk + dn, dr, qcat.data() + r * (dc + dr) + dc);
              limit[r] = s.pos[i0 + r] + 1;
            }
            AttendBlock(qcat.data(), m, limit.data(), rows0, rows0, width, dc + dr, dc,
                        attn_scale_, ot.data());
            GemmNTSerial(m, dv, dc, ot.data(), dc, wuv.data(), dc,
                         s.o.data() + i0 * H * dv + h * dv, H * dv, 0.0f);
          }
        }
      });
    }
    // Few tokens (decode): every head of a token attends over the same latent rows, so after
    // absorbing W_UK into each head's query, all heads go through one AttendBlock (two GEMMs
    // over the cache) instead of a dot product per head and position.
    const int64_t n_short = static_cast<int64_t>(short_tokens.size());
    if (n_short > 0) {
      s.qcat.resize(n_short * H * (dc + dr));
      s.ocat.resize(n_short * H * dc);
      pool.ParallelFor(n_short * H, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t item = b; item < e; ++item) {
          const int64_t i = short_tokens[item / H], h = item % H;
          const float* qn = s.q.data() + i * H * qk + h * qk;
          float* qt = s.qcat.data() + item * (dc + dr);
          std::fill(qt, qt + dc, 0.0f);
          kv_b.AxpyRows(h * (dn + dv), h * (dn + dv) + dn, qn, qt);
          std::copy_n(qn + dn, dr, qt + dc);
        }
      });
      // Items: (token, part of the heads), so one decoded token still keeps two threads busy;
      // over a long context (token, part of the keys) instead: with heads split, every thread
      // read the layer's whole latent cache (2.3 MB per layer for V2-Lite at context 1000).
      const int64_t head_parts = std::min<int64_t>(H, pool.size());
      const DecodeItems plan = PlanDecodeItems(short_tokens, s.pos, head_parts, H, dc, s.part_out,
                                                 s.part_max, s.part_sum);
      const auto& items = plan.items;
      const auto& split_of = plan.split_of;
      pool.ParallelFor(static_cast<int64_t>(items.size()), 1, [&](int64_t b, int64_t e, int) {
        thread_local std::vector<int64_t> limit;
        for (int64_t item = b; item < e; ++item) {
          const auto [k, part] = items[item];
          const int64_t i = short_tokens[k];
          const float* rows0 = cache.Row(s.slot[i], layer, 0);
          if (split_of[k] >= 0) {
            const int64_t T = s.pos[i] + 1;
            const int64_t t0 = T * part / kMlaKeyParts, t1 = T * (part + 1) / kMlaKeyParts;
            const int64_t row = (split_of[k] * kMlaKeyParts + part) * H;
            AttendPart(s.qcat.data() + k * H * (dc + dr), H, t1 - t0, rows0 + t0 * width,
                       rows0 + t0 * width, width, dc + dr, dc, attn_scale_,
                       s.part_out.data() + row * dc, s.part_max.data() + row,
                       s.part_sum.data() + row);
            continue;
          }
          const int64_t h0 = H * part / head_parts, h1 = H * (part + 1) / head_parts;
          limit.assign(h1 - h0, s.pos[i] + 1);
          AttendBlock(s.qcat.data() + (k * H + h0) * (dc + dr), h1 - h0, limit.data(), rows0,
                      rows0, width, dc + dr, dc, attn_scale_,
                      s.ocat.data() + (k * H + h0) * dc);
        }
      });
      pool.ParallelFor(n_short * H, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t item = b; item < e; ++item) {
          const int64_t k = item / H, i = short_tokens[k], h = item % H;
          if (split_of[k] >= 0) {  // the head's key parts into its attended latent first
            const int64_t row = split_of[k] * kMlaKeyParts * H;
            MergeAttendParts(kMlaKeyParts, H, dc, s.part_out.data() + row * dc,
                             s.part_max.data() + row, s.part_sum.data() + row, h, h + 1,
                             s.ocat.data() + k * H * dc);
          }
          // o_h = W_UV_h . o~_h
          MatVecRowRange(kv_b, h * (dn + dv) + dn, (h + 1) * (dn + dv), s.ocat.data() + item * dc,
                         s.o.data() + i * H * dv + h * dv);
        }
      });
    }
  } else {
    // Naive: expand keys and values of every cached position of each sequence.
    std::vector<float> kv;
    for (auto [begin, end] : s.chunk_range) {
      const int slot = s.slot[begin];
      const int64_t T = s.pos[end - 1] + 1;
      kv.resize(T * H * (dn + dv));
      MatMul(kv_b, cache.Row(slot, layer, 0), width, T, kv.data(), H * (dn + dv), nullptr, pool);
      pool.ParallelFor((end - begin) * H, 1, [&](int64_t b, int64_t e, int) {
        for (int64_t item = b; item < e; ++item) {
          const int64_t i = begin + item / H, h = item % H;
          const float* qn = s.q.data() + i * H * qk + h * qk;
          const int64_t Ti = s.pos[i] + 1;
          float* scores = Buf(t_buf_c, Ti);
          for (int64_t t = 0; t < Ti; ++t) {
            const float* k = kv.data() + t * H * (dn + dv) + h * (dn + dv);
            scores[t] = attn_scale_ *
                        (Dot(qn, k, dn) + Dot(qn + dn, cache.Row(slot, layer, t) + dc, dr));
          }
          Softmax(scores, Ti);
          float* o = s.o.data() + i * H * dv + h * dv;
          std::fill(o, o + dv, 0.0f);
          for (int64_t t = 0; t < Ti; ++t)
            Axpy(scores[t], kv.data() + t * H * (dn + dv) + h * (dn + dv) + dn, o, dv);
        }
      });
    }
  }
  MatMul(L.o_proj, s.o.data(), n, out, pool, L.o_bias.empty() ? nullptr : L.o_bias.data());
}

bool MlaChunkExpands(const Config& cfg, int64_t n, int64_t T) {
  const double H = static_cast<double>(cfg.num_attention_heads);
  const double dn = static_cast<double>(cfg.qk_nope_head_dim);
  const double dr = static_cast<double>(cfg.qk_rope_head_dim);
  const double dv = static_cast<double>(cfg.v_head_dim), dc = static_cast<double>(cfg.kv_lora_rank);
  const double tokens = static_cast<double>(n);
  const double keys = static_cast<double>(T) - tokens / 2.0;  // per query, on average (causal)
  const double expanded =
      static_cast<double>(T) * dc * H * (dn + dv) + tokens * keys * H * (dn + dr + dv);
  const double absorbed = tokens * H * (dn * dc + dc * dv) + tokens * keys * H * (2 * dc + dr);
  return expanded < absorbed;
}

// Keys and values of the chunk's sequence decompressed by one kv_b product over its T cached
// latent rows (on the weights' own GEMM: int8 for Q8/Q4), rearranged per head as [T][key | value]
// rows, then blocks of each head's queries through AttendBlock. V2-Lite's 512-token prefill spent
// a fifth of its time in the absorbed form's float32 GEMMs over 576-wide latent rows.
void Model::MlaExpandedAttention(int layer, const LayerWeights& L, KVCache& cache, Scratch& s,
                                 int64_t begin, int64_t end) const {
  const int64_t H = cfg_.num_attention_heads, dn = cfg_.qk_nope_head_dim;
  const int64_t dr = cfg_.qk_rope_head_dim, dv = cfg_.v_head_dim, dc = cfg_.kv_lora_rank;
  const int64_t qk = dn + dr, head_row = qk + dv, kv_row = H * (dn + dv);
  const int slot = s.slot[begin];
  const int64_t T = s.pos[end - 1] + 1;
  ThreadPool& pool = this->pool();
  // Kept between layers and steps: fresh vectors would page-fault megabytes per layer.
  thread_local std::vector<float> kv, heads;
  if (kv.size() < static_cast<size_t>(T * kv_row)) kv.resize(T * kv_row);
  if (heads.size() < static_cast<size_t>(H * T * head_row)) heads.resize(H * T * head_row);
  MatMul(L.kv_b, cache.Row(slot, layer, 0), cache.row_width(), T, kv.data(), kv_row, nullptr, pool);
  float* hk = heads.data();
  const float* kvp = kv.data();
  pool.ParallelFor(T, 16, [&, hk, kvp](int64_t t0, int64_t t1, int) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* rope = cache.Row(slot, layer, t) + dc;
      for (int64_t h = 0; h < H; ++h) {
        const float* src = kvp + t * kv_row + h * (dn + dv);
        float* dst = hk + (h * T + t) * head_row;
        std::copy_n(src, dn, dst);
        std::copy_n(rope, dr, dst + dn);
        std::copy_n(src + dn, dv, dst + qk);
      }
    }
  });
  const int64_t per_block = std::clamp<int64_t>(AttendBlockRows(T), 1, kAttendBlockMaxTokens);
  const int64_t blocks = (end - begin + per_block - 1) / per_block;
  pool.ParallelFor(H * blocks, 1, [&, hk](int64_t b, int64_t e, int) {
    thread_local std::vector<int64_t> limit;
    for (int64_t item = b; item < e; ++item) {
      const int64_t h = item / blocks, i0 = begin + (item % blocks) * per_block;
      const int64_t m = std::min(end, i0 + per_block) - i0;
      float* q = Buf(t_buf_a, m * qk);
      float* o = Buf(t_buf_b, m * dv);
      limit.resize(m);
      for (int64_t r = 0; r < m; ++r) {
        std::copy_n(s.q.data() + (i0 + r) * H * qk + h * qk, qk, q + r * qk);
        limit[r] = s.pos[i0 + r] + 1;
      }
      const float* k = hk + h * T * head_row;
      AttendBlock(q, m, limit.data(), k, k + qk, head_row, qk, dv, attn_scale_, o);
      for (int64_t r = 0; r < m; ++r)
        std::copy_n(o + r * dv, dv, s.o.data() + (i0 + r) * H * dv + h * dv);
    }
  });
}

void Model::GqaAttention(int layer, const LayerWeights& L, KVCache& cache, Scratch& s,
                         float* out) const {
  const int64_t n = s.n, H = cfg_.num_attention_heads, Hkv = cfg_.num_key_value_heads;
  const int64_t Dh = cfg_.head_dim, group = H / Hkv, kvw = Hkv * Dh;
  ThreadPool& pool = this->pool();
  s.q.resize(n * H * Dh);
  s.kva.resize(n * 2 * kvw);
  auto bias = [](const std::vector<float>& b) { return b.empty() ? nullptr : b.data(); };
  // K and V of each token land side by side in one [n, 2*kvw] buffer, the cache row layout.
  const MatMulJob qkv[] = {{&L.q, s.q.data(), H * Dh, bias(L.q_bias)},
                           {&L.k, s.kva.data(), 2 * kvw, bias(L.k_bias)},
                           {&L.v, s.kva.data() + kvw, 2 * kvw, bias(L.v_bias)}};
  MatMulShared(qkv, s.h.data(), cfg_.hidden_size, n, pool);
  pool.ParallelFor(n, kRowsGrain, [&](int64_t i0, int64_t i1, int) {
    thread_local std::vector<float> angles;  // one token's, for every head
    angles.resize(Dh);
    for (int64_t i = i0; i < i1; ++i) {
      float* kv = s.kva.data() + i * 2 * kvw;
      RopeAngles(Dh, s.pos[i], rope_freq_.data(), angles.data());
      for (int64_t g = 0; g < Hkv; ++g) RopeHalfSplit(kv + g * Dh, Dh, angles.data());
      for (int64_t h = 0; h < H; ++h)
        RopeHalfSplit(s.q.data() + (i * H + h) * Dh, Dh, angles.data());
      std::copy(kv, kv + 2 * kvw, cache.Row(s.slot[i], layer, s.pos[i]));
    }
  });
  s.o.resize(n * H * Dh);
  // Chunks of many tokens (prefill): per KV head and block of queries, the `group` heads that
  // share it go through AttendBlock's two GEMMs together. Short chunks (decode): one query and
  // head per item, dot products over the cache.
  struct Block {
    int64_t begin, end, g;
  };
  std::vector<Block> blocks;
  std::vector<int64_t> short_tokens;
  for (auto [begin, end] : s.chunk_range) {
    if (end - begin < kAttendBlockMinTokens) {
      for (int64_t i = begin; i < end; ++i) short_tokens.push_back(i);
      continue;
    }
    const int64_t per_block = std::clamp<int64_t>(
        AttendBlockRows(s.pos[end - 1] + 1) / group, 1, kAttendBlockMaxTokens);
    for (int64_t g = 0; g < Hkv; ++g)
      for (int64_t i0 = begin; i0 < end; i0 += per_block)
        blocks.push_back({i0, std::min(end, i0 + per_block), g});
  }
  if (!blocks.empty()) {
    pool.ParallelFor(static_cast<int64_t>(blocks.size()), 1, [&](int64_t b, int64_t e, int) {
      for (int64_t item = b; item < e; ++item) {
        const Block& blk = blocks[item];
        const int64_t rows = (blk.end - blk.begin) * group;
        float* q = Buf(t_buf_a, rows * Dh);
        float* o = Buf(t_buf_b, rows * Dh);
        thread_local std::vector<int64_t> limit;
        limit.resize(rows);
        for (int64_t i = blk.begin; i < blk.end; ++i) {
          const int64_t r = (i - blk.begin) * group;
          std::copy_n(s.q.data() + (i * H + blk.g * group) * Dh, group * Dh, q + r * Dh);
          std::fill_n(limit.begin() + r, group, s.pos[i] + 1);
        }
        const float* k = cache.Row(s.slot[blk.begin], layer, 0) + blk.g * Dh;
        AttendBlock(q, rows, limit.data(), k, k + kvw, cache.row_width(), Dh, Dh, attn_scale_, o);
        for (int64_t i = blk.begin; i < blk.end; ++i)
          std::copy_n(o + (i - blk.begin) * group * Dh, group * Dh,
                      s.o.data() + (i * H + blk.g * group) * Dh);
      }
    });
  }
  // Few tokens (decode): per token and KV head, its `group` query heads (contiguous in s.q and
  // s.o) through one AttendBlock. Over a long context, per token and part of its keys instead,
  // every KV head each (AttendPart, merged after): a head's keys are slices of the cache rows,
  // and with a thread per head each read the other heads' bytes too (Qwen-1.5B q4 at context
  // 4000: a decode step 2x the step at context 16, attention reading its KV at ~14 GB/s).
  const int64_t n_short = static_cast<int64_t>(short_tokens.size());
  const DecodeItems plan = PlanDecodeItems(short_tokens, s.pos, Hkv, H, Dh, s.part_out,
                                               s.part_max, s.part_sum);
  const auto& items = plan.items;  // (short token, KV head or key part)
  const auto& split_of = plan.split_of;
  pool.ParallelFor(static_cast<int64_t>(items.size()), 1, [&](int64_t b, int64_t e, int) {
    thread_local std::vector<int64_t> limit;
    for (int64_t item = b; item < e; ++item) {
      const auto [k, part] = items[item];
      const int64_t i = short_tokens[k];
      const float* rows0 = cache.Row(s.slot[i], layer, 0);
      const int64_t width = cache.row_width();
      if (split_of[k] >= 0) {
        const int64_t T = s.pos[i] + 1;
        const int64_t t0 = T * part / kMlaKeyParts, t1 = T * (part + 1) / kMlaKeyParts;
        const int64_t row = (split_of[k] * kMlaKeyParts + part) * H;
        for (int64_t g = 0; g < Hkv; ++g) {
          const float* key = rows0 + t0 * width + g * Dh;
          const int64_t r = row + g * group;
          AttendPart(s.q.data() + (i * H + g * group) * Dh, group, t1 - t0, key, key + kvw, width,
                     Dh, Dh, attn_scale_, s.part_out.data() + r * Dh, s.part_max.data() + r,
                     s.part_sum.data() + r);
        }
        continue;
      }
      const int64_t g = part;
      limit.assign(group, s.pos[i] + 1);
      const float* key = rows0 + g * Dh;
      AttendBlock(s.q.data() + (i * H + g * group) * Dh, group, limit.data(), key, key + kvw,
                  width, Dh, Dh, attn_scale_, s.o.data() + (i * H + g * group) * Dh);
    }
  });
  if (plan.n_split > 0) {
    pool.ParallelFor(n_short * H, 1, [&](int64_t b, int64_t e, int) {
      for (int64_t item = b; item < e; ++item) {
        const int64_t k = item / H, h = item % H;
        if (split_of[k] < 0) continue;
        const int64_t row = split_of[k] * kMlaKeyParts * H;
        MergeAttendParts(kMlaKeyParts, H, Dh, s.part_out.data() + row * Dh,
                         s.part_max.data() + row, s.part_sum.data() + row, h, h + 1,
                         s.o.data() + short_tokens[k] * H * Dh);
      }
    });
  }
  MatMul(L.o_proj, s.o.data(), n, out, pool, bias(L.o_bias));
}

void Model::Ffn(const LayerWeights& L, const float* x, int64_t n, float* out) const {
  if (L.moe) {
    Moe(L, x, n, out);
  } else {
    Mlp(L.mlp, x, n, out);
  }
}

void Model::Mlp(const MlpWeights& m, const float* x, int64_t n, float* out) const {
  SwiGluMlp(m.gate, m.up, m.down, x, m.gate.cols, n, out, m.down.rows, pool());
}

void Model::Moe(const LayerWeights& L, const float* x, int64_t n, float* out) const {
  const int64_t d = cfg_.hidden_size, E = cfg_.n_routed_experts, k = cfg_.num_experts_per_tok;
  std::vector<float> z(n * E);
  {
    const ExactBf16Activations exact;  // expert choices stay those of the float32 activations
    MatMul(L.router, x, n, z.data(), pool());
  }

  // Routing: per expert, the tokens it serves and their weights.
  std::vector<std::vector<std::pair<int64_t, float>>> assigned(E);
  RoutingScratch scratch;
  std::vector<int64_t> chosen(k);
  std::vector<float> weight(k);
  for (int64_t i = 0; i < n; ++i) {
    float* sc = z.data() + i * E;
    RouterScores(cfg_, sc, E);
    RouteToken(cfg_, sc, L.router_bias.empty() ? nullptr : L.router_bias.data(), chosen.data(),
               weight.data(), scratch);
    for (int64_t j = 0; j < k; ++j) assigned[chosen[j]].emplace_back(i, weight[j]);
  }

  int64_t most_tokens = 0, active = 0;
  for (const auto& a : assigned) {
    most_tokens = std::max<int64_t>(most_tokens, a.size());
    active += !a.empty();
  }
  // Whole experts per thread for decode-sized batches, and for prefills with enough experts to
  // keep every thread busy while their outputs (kept apart until the ordered sum) stay within
  // kMoeWholeExpertsMaxBytes: a V2-Lite prefill spent 9% of its time at the end of per-expert
  // products split over the threads (1408-row matrices, ~50 tokens each).
  const bool fits =
      static_cast<double>((n * k + n) * d) * sizeof(float) <= kMoeWholeExpertsMaxBytes;
  if (most_tokens < kGemmMinTokens || (active >= 4 * pool().size() && fits)) {
    MoeExpertsInParallel(L, x, n, assigned, out);
    return;
  }

  std::fill(out, out + n * d, 0.0f);
  std::vector<float> xs, ys;
  for (int64_t e = 0; e < E; ++e) {
    const auto& a = assigned[e];
    if (a.empty()) continue;
    const int64_t m = static_cast<int64_t>(a.size());
    xs.resize(m * d);
    ys.resize(m * d);
    for (int64_t r = 0; r < m; ++r) std::copy(x + a[r].first * d, x + (a[r].first + 1) * d, xs.data() + r * d);
    Mlp(L.experts[e], xs.data(), m, ys.data());
    for (int64_t r = 0; r < m; ++r) Axpy(a[r].second, ys.data() + r * d, out + a[r].first * d, d);
  }
  if (!L.shared.gate.empty()) {
    std::vector<float> sh(n * d);
    Mlp(L.shared, x, n, sh.data());
    for (int64_t i = 0; i < n * d; ++i) out[i] += sh[i];
  }
}

// Decode (and small batches): each expert serves a handful of tokens, so a product split over
// the threads is a few microseconds of work per synchronization and the threads spent a third of
// a V2-Lite decode waiting. Here each thread runs whole experts (the shared one as one more item)
// into its own output rows, and the weighted sum follows in the same order as the sequential
// path, so the result is identical. Items are handed out largest first (tokens x intermediate
// size), so the pool's last, small chunks balance the threads.
void Model::MoeExpertsInParallel(const LayerWeights& L, const float* x, int64_t n,
                                 const std::vector<std::vector<std::pair<int64_t, float>>>& assigned,
                                 float* out) const {
  const int64_t d = cfg_.hidden_size;
  std::vector<int64_t> items, offset;
  int64_t total = 0;
  const bool shared = !L.shared.gate.empty();
  if (shared) {
    items.push_back(-1);
    offset.push_back(total);
    total += n * d;
  }
  for (size_t e = 0; e < assigned.size(); ++e) {
    if (assigned[e].empty()) continue;
    items.push_back(static_cast<int64_t>(e));
    offset.push_back(total);
    total += static_cast<int64_t>(assigned[e].size()) * d;
  }
  auto work = [&](int64_t e) {
    return e < 0 ? n * L.shared.gate.rows
                 : static_cast<int64_t>(assigned[e].size()) * L.experts[e].gate.rows;
  };
  std::vector<int64_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return work(items[a]) > work(items[b]); });
  thread_local std::vector<float> ys;
  if (ys.size() < static_cast<size_t>(total)) ys.resize(total);
  float* y = ys.data();
  pool().ParallelFor(static_cast<int64_t>(items.size()), 1, [&](int64_t b, int64_t e, int) {
    thread_local std::vector<float> xs;
    for (int64_t k = b; k < e; ++k) {
      const int64_t item = order[k];
      if (items[item] < 0) {
        Mlp(L.shared, x, n, y + offset[item]);
        continue;
      }
      const auto& a = assigned[items[item]];
      const int64_t m = static_cast<int64_t>(a.size());
      xs.resize(m * d);
      for (int64_t r = 0; r < m; ++r) std::copy_n(x + a[r].first * d, d, xs.data() + r * d);
      Mlp(L.experts[items[item]], xs.data(), m, y + offset[item]);
    }
  });
  std::fill(out, out + n * d, 0.0f);
  for (size_t item = 0; item < items.size(); ++item) {
    if (items[item] < 0) continue;
    const auto& a = assigned[items[item]];
    for (size_t r = 0; r < a.size(); ++r)
      Axpy(a[r].second, y + offset[item] + r * d, out + a[r].first * d, d);
  }
  if (shared) {
    const float* sh = y + offset.front();
    for (int64_t i = 0; i < n * d; ++i) out[i] += sh[i];
  }
}

}  // namespace r1
