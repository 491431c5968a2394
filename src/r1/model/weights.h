// Named weights of a model, bound to architecture slots and checked against the config.
// Matrices point into the memory-mapped checkpoint (or, for training, into float32 buffers the
// trainer owns); only small vectors (norms, biases) are converted to owned float32 copies.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "r1/io/safetensors.h"
#include "r1/kernels/matrix.h"
#include "r1/model/config.h"

namespace r1 {

struct MlpWeights {
  Matrix gate, up, down;
};

struct LayerWeights {
  std::vector<float> input_norm, post_norm;

  // MLA (DeepSeek).
  Matrix q_a, q_b, q_proj, kv_a, kv_b, o_proj;
  std::vector<float> q_a_norm, kv_a_norm;
  std::vector<float> q_a_bias, kv_a_bias;  // only with attention_bias

  // GQA (Qwen2, Llama); o_proj above is shared with MLA.
  Matrix q, k, v;
  std::vector<float> q_bias, k_bias, v_bias, o_bias;

  // FFN: a dense MLP, or routed experts + shared experts.
  bool moe = false;
  MlpWeights mlp;
  Matrix router;
  std::vector<float> router_bias;  // e_score_correction_bias; empty if absent
  std::vector<MlpWeights> experts;
  MlpWeights shared;  // empty matrices when n_shared_experts == 0
};

// A multi-token-prediction module (DeepSeek-V3, layer index num_hidden_layers + k).
struct MtpWeights {
  LayerWeights block;
  std::vector<float> enorm, hnorm, head_norm;
  Matrix eh_proj, embed, head;
};

struct Weights {
  Matrix embed;
  Matrix lm_head;  // the embedding itself for tied models
  std::vector<float> final_norm;
  std::vector<LayerWeights> layers;
  std::vector<MtpWeights> mtp;  // loaded when present, unused by plain decoding
  // Float32 copies of FP8 scales stored in another dtype.
  std::vector<std::shared_ptr<std::vector<float>>> owned_scales;
};

// Binds every tensor the config calls for. Throws r1::Error naming the first missing or
// mis-shaped tensor. `store` must outlive the result.
Weights BindWeights(const Config& cfg, const TensorStore& store);

// The (name, shape) of every tensor a model of this config has, in checkpoint order; FP8 scale
// companions are not included. Used by `r1 init` and by parameter counting.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  bool is_matrix;  // a Linear/embedding weight (FP8-able), as opposed to a norm or bias
};
std::vector<TensorSpec> ExpectedTensors(const Config& cfg, bool include_mtp = true);

// Every tensor of a checkpoint as float32 (BF16/F16 widened, FP8 times its block scales), in
// checkpoint order, validated like BindWeights. Optional tensors that are absent (the routing
// bias outside noaux_tc, MTP copies of the embedding and head) are left out. For the trainer,
// which keeps float32 master weights.
struct DenseTensor {
  std::string name;
  std::vector<int64_t> shape;
  bool is_matrix;
  std::vector<float> data;
};
std::vector<DenseTensor> LoadDenseTensors(const Config& cfg, const TensorStore& store,
                                          bool include_mtp);

// Every tensor BindWeights would bind, in checkpoint order, as stored: matrices as views into the
// store (with their FP8 or Q8/Q4 scales), vectors by name only. Absent optional tensors are left
// out. For `r1 quantize`, which re-encodes matrices and copies the rest. FP8 scales stored in
// another dtype are converted into `owned_scales`, which must outlive the views.
struct StoredTensor {
  std::string name;
  bool is_matrix;
  Matrix matrix;  // empty for vectors
};
std::vector<StoredTensor> ListStoredTensors(
    const Config& cfg, const TensorStore& store,
    std::vector<std::shared_ptr<std::vector<float>>>& owned_scales);

}  // namespace r1
