#include "r1/train/params.h"

#include <algorithm>

#include "r1/core/error.h"
#include "r1/model/weights.h"

namespace r1 {

ParamSet ParamSet::FromStore(const Config& cfg, const TensorStore& store) {
  ParamSet ps;
  std::vector<DenseTensor> tensors = LoadDenseTensors(cfg, store, /*include_mtp=*/true);
  const std::string head = cfg.tie_word_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
  for (int k = 0; k < cfg.num_nextn_predict_layers; ++k) {
    const std::string p = "model.layers." + std::to_string(cfg.num_hidden_layers + k) + ".";
    if (!store.Find(p + "eh_proj.weight")) break;
    ++ps.mtp_modules_;
    ps.tied_copies_.emplace_back(p + "embed_tokens.weight", "model.embed_tokens.weight");
    ps.tied_copies_.emplace_back(p + "shared_head.head.weight", head);
  }
  for (DenseTensor& t : tensors) {
    const bool copy = std::any_of(ps.tied_copies_.begin(), ps.tied_copies_.end(),
                                  [&](const auto& c) { return c.first == t.name; });
    if (copy) continue;
    Param p;
    p.name = t.name;
    p.shape = t.shape;
    p.value = std::move(t.data);
    p.grad.assign(p.value.size(), 0.0f);
    p.decay = t.shape.size() == 2;
    p.trainable = t.name.find("e_score_correction_bias") == std::string::npos;
    ps.params_.push_back(std::move(p));
  }
  ps.Index();
  return ps;
}

ParamSet ParamSet::FromDir(const std::string& dir, Config* cfg_out) {
  Config cfg = LoadConfig(dir);
  TensorStore store = TensorStore::OpenDir(dir);
  ParamSet ps = FromStore(cfg, store);
  if (cfg_out) *cfg_out = std::move(cfg);
  return ps;
}

void ParamSet::Index() {
  index_.clear();
  for (size_t i = 0; i < params_.size(); ++i) index_[params_[i].name] = i;
}

Param* ParamSet::Find(const std::string& name) {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &params_[it->second];
}
const Param* ParamSet::Find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &params_[it->second];
}
Param& ParamSet::Get(const std::string& name) {
  Param* p = Find(name);
  if (!p) throw Error("trainer: no parameter '" + name + "'");
  return *p;
}
const Param& ParamSet::Get(const std::string& name) const {
  const Param* p = Find(name);
  if (!p) throw Error("trainer: no parameter '" + name + "'");
  return *p;
}

void ParamSet::ZeroGrad() {
  for (Param& p : params_) std::fill(p.grad.begin(), p.grad.end(), 0.0f);
}

int64_t ParamSet::NumElements() const {
  int64_t n = 0;
  for (const Param& p : params_) n += p.numel();
  return n;
}

TensorStore ParamSet::View(const std::string& source) const {
  std::vector<TensorView> views;
  auto view = [](const std::string& name, const Param& p) {
    TensorView v;
    v.name = name;
    v.dtype = DType::kF32;
    v.shape = p.shape;
    v.data = reinterpret_cast<const uint8_t*>(p.value.data());
    v.nbytes = p.value.size() * sizeof(float);
    v.file = "(memory)";
    return v;
  };
  for (const Param& p : params_) views.push_back(view(p.name, p));
  for (const auto& [copy, main] : tied_copies_) views.push_back(view(copy, Get(main)));
  return TensorStore::FromViews(source, std::move(views));
}

}  // namespace r1
