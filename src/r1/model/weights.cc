#include "r1/model/weights.h"

#include <cstring>

#include "r1/core/error.h"

namespace r1 {
namespace {

// One walk over a model's tensors serves binding, `r1 init` and parameter counting, so the list
// of names and shapes exists in exactly one place.
class TensorVisitor {
 public:
  virtual ~TensorVisitor() = default;
  virtual void Mat(Matrix* slot, const std::string& name, int64_t rows, int64_t cols,
                   bool optional) = 0;
  virtual void Vec(std::vector<float>* slot, const std::string& name, int64_t n,
                   bool optional) = 0;
  // Whether an optional group (e.g. an MTP module) is present.
  virtual bool Has(const std::string& name) = 0;
};

void VisitMlp(const std::string& p, int64_t d, int64_t f, MlpWeights* m, TensorVisitor& v) {
  v.Mat(m ? &m->gate : nullptr, p + "gate_proj.weight", f, d, false);
  v.Mat(m ? &m->up : nullptr, p + "up_proj.weight", f, d, false);
  v.Mat(m ? &m->down : nullptr, p + "down_proj.weight", d, f, false);
}

void VisitLayer(const Config& c, int index, LayerWeights* L, TensorVisitor& v) {
  const std::string p = "model.layers." + std::to_string(index) + ".";
  const int64_t d = c.hidden_size;
  const int64_t H = c.num_attention_heads;
  v.Vec(L ? &L->input_norm : nullptr, p + "input_layernorm.weight", d, false);
  if (c.is_deepseek()) {
    const std::string a = p + "self_attn.";
    const int64_t qk = c.qk_head_dim();
    if (c.q_lora_rank > 0) {
      v.Mat(L ? &L->q_a : nullptr, a + "q_a_proj.weight", c.q_lora_rank, d, false);
      if (c.attention_bias) v.Vec(L ? &L->q_a_bias : nullptr, a + "q_a_proj.bias", c.q_lora_rank, false);
      v.Vec(L ? &L->q_a_norm : nullptr, a + "q_a_layernorm.weight", c.q_lora_rank, false);
      v.Mat(L ? &L->q_b : nullptr, a + "q_b_proj.weight", H * qk, c.q_lora_rank, false);
    } else {
      v.Mat(L ? &L->q_proj : nullptr, a + "q_proj.weight", H * qk, d, false);
    }
    v.Mat(L ? &L->kv_a : nullptr, a + "kv_a_proj_with_mqa.weight",
          c.kv_lora_rank + c.qk_rope_head_dim, d, false);
    if (c.attention_bias)
      v.Vec(L ? &L->kv_a_bias : nullptr, a + "kv_a_proj_with_mqa.bias",
            c.kv_lora_rank + c.qk_rope_head_dim, false);
    v.Vec(L ? &L->kv_a_norm : nullptr, a + "kv_a_layernorm.weight", c.kv_lora_rank, false);
    v.Mat(L ? &L->kv_b : nullptr, a + "kv_b_proj.weight",
          H * (c.qk_nope_head_dim + c.v_head_dim), c.kv_lora_rank, false);
    v.Mat(L ? &L->o_proj : nullptr, a + "o_proj.weight", d, H * c.v_head_dim, false);
    if (c.attention_bias) v.Vec(L ? &L->o_bias : nullptr, a + "o_proj.bias", d, false);
  } else {
    const std::string a = p + "self_attn.";
    const int64_t Dh = c.head_dim, Hkv = c.num_key_value_heads;
    const bool qkv_bias = c.arch == Arch::kQwen2 || c.attention_bias;
    v.Mat(L ? &L->q : nullptr, a + "q_proj.weight", H * Dh, d, false);
    v.Mat(L ? &L->k : nullptr, a + "k_proj.weight", Hkv * Dh, d, false);
    v.Mat(L ? &L->v : nullptr, a + "v_proj.weight", Hkv * Dh, d, false);
    if (qkv_bias) {
      v.Vec(L ? &L->q_bias : nullptr, a + "q_proj.bias", H * Dh, false);
      v.Vec(L ? &L->k_bias : nullptr, a + "k_proj.bias", Hkv * Dh, false);
      v.Vec(L ? &L->v_bias : nullptr, a + "v_proj.bias", Hkv * Dh, false);
    }
    v.Mat(L ? &L->o_proj : nullptr, a + "o_proj.weight", d, H * Dh, false);
    if (c.arch == Arch::kLlama && c.attention_bias)
      v.Vec(L ? &L->o_bias : nullptr, a + "o_proj.bias", d, false);
  }
  v.Vec(L ? &L->post_norm : nullptr, p + "post_attention_layernorm.weight", d, false);
  const bool moe = c.is_moe_layer(index);
  if (L) L->moe = moe;
  if (!moe) {
    VisitMlp(p + "mlp.", d, c.intermediate_size, L ? &L->mlp : nullptr, v);
    return;
  }
  const int64_t E = c.n_routed_experts;
  v.Mat(L ? &L->router : nullptr, p + "mlp.gate.weight", E, d, false);
  v.Vec(L ? &L->router_bias : nullptr, p + "mlp.gate.e_score_correction_bias", E,
        c.topk_method != "noaux_tc");
  if (L) L->experts.resize(E);
  for (int64_t e = 0; e < E; ++e) {
    VisitMlp(p + "mlp.experts." + std::to_string(e) + ".", d, c.moe_intermediate_size,
             L ? &L->experts[e] : nullptr, v);
  }
  if (c.n_shared_experts > 0) {
    VisitMlp(p + "mlp.shared_experts.", d, c.n_shared_experts * c.moe_intermediate_size,
             L ? &L->shared : nullptr, v);
  }
}

void VisitAll(const Config& c, Weights* w, bool include_mtp, TensorVisitor& v) {
  const int64_t V = c.vocab_size, d = c.hidden_size;
  v.Mat(w ? &w->embed : nullptr, "model.embed_tokens.weight", V, d, false);
  if (w) w->layers.resize(c.num_hidden_layers);
  for (int i = 0; i < c.num_hidden_layers; ++i) VisitLayer(c, i, w ? &w->layers[i] : nullptr, v);
  v.Vec(w ? &w->final_norm : nullptr, "model.norm.weight", d, false);
  if (!c.tie_word_embeddings) v.Mat(w ? &w->lm_head : nullptr, "lm_head.weight", V, d, false);
  if (!include_mtp || !c.is_deepseek()) return;
  for (int k = 0; k < c.num_nextn_predict_layers; ++k) {
    const int index = c.num_hidden_layers + k;
    const std::string p = "model.layers." + std::to_string(index) + ".";
    if (!v.Has(p + "eh_proj.weight")) break;  // configs often announce MTP that was stripped
    MtpWeights* m = nullptr;
    if (w) {
      w->mtp.emplace_back();
      m = &w->mtp.back();
    }
    v.Mat(m ? &m->embed : nullptr, p + "embed_tokens.weight", V, d, true);
    v.Vec(m ? &m->enorm : nullptr, p + "enorm.weight", d, false);
    v.Vec(m ? &m->hnorm : nullptr, p + "hnorm.weight", d, false);
    v.Mat(m ? &m->eh_proj : nullptr, p + "eh_proj.weight", d, 2 * d, false);
    VisitLayer(c, index, m ? &m->block : nullptr, v);
    v.Vec(m ? &m->head_norm : nullptr, p + "shared_head.norm.weight", d, false);
    v.Mat(m ? &m->head : nullptr, p + "shared_head.head.weight", V, d, true);
  }
}

class Binder : public TensorVisitor {
 public:
  Binder(const Config& c, const TensorStore& s) : cfg_(c), store_(s) {}

  void Mat(Matrix* slot, const std::string& name, int64_t rows, int64_t cols,
           bool optional) override {
    const TensorView* t = store_.Find(name);
    if (!t) {
      if (optional) return;
      throw Error(store_.source() + ": missing weight '" + name + "'");
    }
    if (t->dtype == DType::kI8 || t->dtype == DType::kU8) {
      // Q8/Q4 hold codes and scales in tiles of 4 rows (matrix.h), one byte row per tile group.
      if (store_.Find(name + "_scale"))
        throw Error(t->file + ": weight '" + name +
                    "' is in the Q8/Q4 layout of r1cpp before 2026-12-06 (codes and a separate "
                    "'_scale' tensor); quantize the original checkpoint again with `r1 quantize`");
      CheckShape(*t, {QuantGroups(rows), QuantGroupBytes(t->dtype, cols)});
    } else {
      CheckShape(*t, {rows, cols});
    }
    if (t->dtype != DType::kF32 && t->dtype != DType::kBF16 && t->dtype != DType::kF16 &&
        t->dtype != DType::kF8E4M3 && t->dtype != DType::kI8 && t->dtype != DType::kU8) {
      throw Error(t->file + ": weight '" + name + "' has dtype " +
                  std::string(DTypeName(t->dtype)) +
                  ", expected F32, BF16, F16, F8_E4M3, I8 (Q8) or U8 (Q4)");
    }
    Matrix m;
    m.name = name;
    m.dtype = t->dtype;
    m.data = t->data;
    m.rows = rows;
    m.cols = cols;
    if (t->dtype == DType::kF8E4M3) {
      m.block_rows = cfg_.fp8_block[0];
      m.block_cols = cfg_.fp8_block[1];
      const std::string sname = name + "_scale_inv";
      const TensorView* s = store_.Find(sname);
      if (!s) throw Error(store_.source() + ": FP8 weight '" + name + "' has no '" + sname + "'");
      CheckShape(*s, {(rows + m.block_rows - 1) / m.block_rows,
                      (cols + m.block_cols - 1) / m.block_cols});
      if (s->dtype == DType::kF32) {
        m.scale = reinterpret_cast<const float*>(s->data);
      } else {
        owned_scales_.push_back(ToFloat(*s));
        m.scale = owned_scales_.back()->data();
      }
    }
    if (slot) *slot = m;
  }

  void Vec(std::vector<float>* slot, const std::string& name, int64_t n, bool optional) override {
    const TensorView* t = store_.Find(name);
    if (!t) {
      if (optional) return;
      throw Error(store_.source() + ": missing weight '" + name + "'");
    }
    CheckShape(*t, {n});
    if (slot) *slot = *ToFloat(*t);
  }

  bool Has(const std::string& name) override { return store_.Find(name) != nullptr; }

  std::vector<std::shared_ptr<std::vector<float>>> owned_scales_;

 private:
  void CheckShape(const TensorView& t, const std::vector<int64_t>& want) const {
    if (t.shape != want) {
      std::string w = "[";
      for (size_t i = 0; i < want.size(); ++i) w += (i ? ", " : "") + std::to_string(want[i]);
      w += "]";
      throw Error(t.file + ": weight '" + t.name + "' has shape " + t.ShapeString() +
                  ", expected " + w + " from config.json");
    }
  }

  static std::shared_ptr<std::vector<float>> ToFloat(const TensorView& t) {
    auto out = std::make_shared<std::vector<float>>(t.numel());
    for (int64_t i = 0; i < t.numel(); ++i) {
      switch (t.dtype) {
        case DType::kF32: {
          float f;
          std::memcpy(&f, t.data + 4 * i, 4);
          (*out)[i] = f;
          break;
        }
        case DType::kBF16: {
          uint16_t h;
          std::memcpy(&h, t.data + 2 * i, 2);
          (*out)[i] = Bf16ToF32(h);
          break;
        }
        case DType::kF16: {
          uint16_t h;
          std::memcpy(&h, t.data + 2 * i, 2);
          (*out)[i] = F16ToF32(h);
          break;
        }
        default:
          throw Error(t.file + ": tensor '" + t.name + "' has dtype " +
                      std::string(DTypeName(t.dtype)) + ", expected a float type");
      }
    }
    return out;
  }

  const Config& cfg_;
  const TensorStore& store_;
};

class SpecCollector : public TensorVisitor {
 public:
  void Mat(Matrix*, const std::string& name, int64_t rows, int64_t cols, bool) override {
    specs.push_back({name, {rows, cols}, true});
  }
  void Vec(std::vector<float>*, const std::string& name, int64_t n, bool optional) override {
    // Optional vectors (the routing bias without noaux_tc) are not written by `r1 init`.
    if (!optional) specs.push_back({name, {n}, false});
  }
  bool Has(const std::string&) override { return true; }
  std::vector<TensorSpec> specs;
};

// Binds like Binder, then hands every tensor over as float32.
class DenseCollector : public Binder {
 public:
  using Binder::Binder;
  void Mat(Matrix*, const std::string& name, int64_t rows, int64_t cols, bool optional) override {
    Matrix m;
    m.data = nullptr;
    Binder::Mat(&m, name, rows, cols, optional);
    if (m.empty()) return;
    DenseTensor t{name, {rows, cols}, true, std::vector<float>(rows * cols)};
    for (int64_t r = 0; r < rows; ++r) m.DequantRow(r, 0, cols, t.data.data() + r * cols);
    out.push_back(std::move(t));
  }
  void Vec(std::vector<float>*, const std::string& name, int64_t n, bool optional) override {
    std::vector<float> v;
    Binder::Vec(&v, name, n, optional);
    if (v.empty()) return;
    out.push_back({name, {n}, false, std::move(v)});
  }
  std::vector<DenseTensor> out;
};

// Binds like Binder, then lists each tensor without converting it.
class StoredCollector : public Binder {
 public:
  using Binder::Binder;
  void Mat(Matrix*, const std::string& name, int64_t rows, int64_t cols, bool optional) override {
    Matrix m;
    Binder::Mat(&m, name, rows, cols, optional);
    if (!m.empty()) out.push_back({name, true, m});
  }
  void Vec(std::vector<float>*, const std::string& name, int64_t n, bool optional) override {
    std::vector<float> v;
    Binder::Vec(&v, name, n, optional);
    if (!v.empty()) out.push_back({name, false, Matrix{}});
  }
  std::vector<StoredTensor> out;
};

}  // namespace

std::vector<StoredTensor> ListStoredTensors(
    const Config& cfg, const TensorStore& store,
    std::vector<std::shared_ptr<std::vector<float>>>& owned_scales) {
  StoredCollector c(cfg, store);
  Weights scratch;
  VisitAll(cfg, &scratch, /*include_mtp=*/true, c);
  for (auto& s : c.owned_scales_) owned_scales.push_back(s);
  return std::move(c.out);
}

std::vector<DenseTensor> LoadDenseTensors(const Config& cfg, const TensorStore& store,
                                          bool include_mtp) {
  DenseCollector c(cfg, store);
  Weights scratch;
  VisitAll(cfg, &scratch, include_mtp, c);
  return std::move(c.out);
}

Weights BindWeights(const Config& cfg, const TensorStore& store) {
  Weights w;
  Binder b(cfg, store);
  VisitAll(cfg, &w, /*include_mtp=*/true, b);
  w.owned_scales = std::move(b.owned_scales_);
  if (cfg.tie_word_embeddings) w.lm_head = w.embed;
  for (auto& m : w.mtp) {
    if (m.embed.empty()) m.embed = w.embed;
    if (m.head.empty()) m.head = w.lm_head;
  }
  return w;
}

std::vector<TensorSpec> ExpectedTensors(const Config& cfg, bool include_mtp) {
  SpecCollector s;
  VisitAll(cfg, nullptr, include_mtp, s);
  return s.specs;
}

}  // namespace r1
