// Attention of the training pass over whole causal sequences: MLA in the naive form (keys and
// values expanded per head, model-spec §3.6.2) and GQA, with their backward.
#include <algorithm>
#include <cmath>

#include "r1/kernels/gemm.h"
#include "r1/kernels/ops.h"
#include "r1/train/grad_ops.h"
#include "r1/train/train_layer.h"

namespace r1 {
namespace {

// Scores [T, T] (row t = query position t) -> causal softmax probabilities, zero above the
// diagonal.
void CausalSoftmax(float* p, int64_t T, float scale) {
  for (int64_t t = 0; t < T; ++t) {
    float* row = p + t * T;
    for (int64_t j = 0; j <= t; ++j) row[j] *= scale;
    Softmax(row, t + 1);
    std::fill(row + t + 1, row + T, 0.0f);
  }
}

// Given P and dP = dO V^T (both [T, T]), overwrites dP with dS = d loss / d raw scores (the
// scale folded in): dS = scale * P * (dP - rowsum(P * dP)).
void CausalSoftmaxBackward(const float* p, float* dp, int64_t T, float scale) {
  for (int64_t t = 0; t < T; ++t) {
    const float* pr = p + t * T;
    float* d = dp + t * T;
    float c = 0;
    for (int64_t j = 0; j <= t; ++j) c += pr[j] * d[j];
    for (int64_t j = 0; j <= t; ++j) d[j] = scale * pr[j] * (d[j] - c);
    std::fill(d + t + 1, d + T, 0.0f);
  }
}

// Rotates (sign +1) or un-rotates (-1, the backward of a rotation) `heads` slices of width `w`
// at offset `off` in each row of x [n, row_width]; position = row % T.
void RopeRows(float* x, int64_t n, int64_t T, int64_t row_width, int64_t heads,
              int64_t head_stride, int64_t off, int64_t w, const float* freq, bool interleaved,
              int sign, ThreadPool& pool) {
  pool.ParallelFor(n, 64, [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) {
      const int64_t pos = sign * (i % T);
      for (int64_t h = 0; h < heads; ++h) {
        float* p = x + i * row_width + h * head_stride + off;
        if (interleaved) {
          RopeInterleaved(p, w, pos, freq);
        } else {
          RopeHalfSplit(p, w, pos, freq);
        }
      }
    }
  });
}

}  // namespace

void TrainModel::Layer::MlaForward(const float* h, const SeqShape& s, const float* rope_freq,
                                   float scale, float* out, ThreadPool& pool) {
  const int64_t n = s.n(), T = s.T, H = cfg.num_attention_heads;
  const int64_t dn = cfg.qk_nope_head_dim, dr = cfg.qk_rope_head_dim, dv = cfg.v_head_dim;
  const int64_t dc = cfg.kv_lora_rank, qk = dn + dr, kvw = H * (dn + dv);
  q_.resize(n * H * qk);
  if (!q_a.empty()) {
    const int64_t dq = q_a.out;
    qa_.resize(n * dq);
    qa_n_.resize(n * dq);
    qa_rstd_.resize(n);
    LinearForward(q_a, h, n, qa_.data(), pool);
    RmsNormForward(qa_.data(), dq, q_a_norm->value.data(), n, dq, cfg.rms_norm_eps,
                   qa_n_.data(), qa_rstd_.data(), pool);
    LinearForward(q_b, qa_n_.data(), n, q_.data(), pool);
  } else {
    LinearForward(q_proj, h, n, q_.data(), pool);
  }
  kva_.resize(n * (dc + dr));
  LinearForward(kv_a, h, n, kva_.data(), pool);
  ckv_.resize(n * dc);
  ckv_rstd_.resize(n);
  RmsNormForward(kva_.data(), dc + dr, kv_a_norm->value.data(), n, dc, cfg.rms_norm_eps,
                 ckv_.data(), ckv_rstd_.data(), pool);
  kr_.resize(n * dr);
  for (int64_t i = 0; i < n; ++i)
    std::copy(kva_.data() + i * (dc + dr) + dc, kva_.data() + (i + 1) * (dc + dr), kr_.data() + i * dr);
  RopeRows(kr_.data(), n, T, dr, 1, 0, 0, dr, rope_freq, true, 1, pool);
  RopeRows(q_.data(), n, T, H * qk, H, qk, dn, dr, rope_freq, true, 1, pool);
  kv_.resize(n * kvw);
  LinearForward(kv_b, ckv_.data(), n, kv_.data(), pool);

  probs_.resize(s.B * H * T * T);
  o_.resize(n * H * dv);
  pool.ParallelFor(s.B * H, 1, [&](int64_t b0, int64_t e0, int) {
    for (int64_t item = b0; item < e0; ++item) {
      const int64_t b = item / H, hd = item % H;
      const float* qn = q_.data() + b * T * H * qk + hd * qk;
      const float* kn = kv_.data() + b * T * kvw + hd * (dn + dv);
      const float* kr = kr_.data() + b * T * dr;
      float* p = probs_.data() + item * T * T;
      GemmNTSerial(T, T, dn, qn, H * qk, kn, kvw, p, T, 0.0f);
      GemmNTSerial(T, T, dr, qn + dn, H * qk, kr, dr, p, T, 1.0f);
      CausalSoftmax(p, T, scale);
      GemmNNSerial(T, dv, T, p, T, kn + dn, kvw, o_.data() + b * T * H * dv + hd * dv, H * dv,
                   0.0f);
    }
  });
  LinearForward(o_proj, o_.data(), n, out, pool);
}

void TrainModel::Layer::MlaBackward(const float* h, const float* dout, const SeqShape& s,
                                    const float* rope_freq, float scale, float* dh,
                                    ThreadPool& pool) {
  const int64_t n = s.n(), T = s.T, H = cfg.num_attention_heads;
  const int64_t dn = cfg.qk_nope_head_dim, dr = cfg.qk_rope_head_dim, dv = cfg.v_head_dim;
  const int64_t dc = cfg.kv_lora_rank, qk = dn + dr, kvw = H * (dn + dv);
  std::vector<float> d_o(n * H * dv, 0.0f);
  LinearBackward(o_proj, o_.data(), dout, n, d_o.data(), pool);

  std::vector<float> dq(n * H * qk), dkv(n * kvw), dkr_heads(H * n * dr);
  pool.ParallelFor(s.B * H, 1, [&](int64_t b0, int64_t e0, int) {
    std::vector<float> ds(T * T);
    for (int64_t item = b0; item < e0; ++item) {
      const int64_t b = item / H, hd = item % H;
      const float* qn = q_.data() + b * T * H * qk + hd * qk;
      const float* kn = kv_.data() + b * T * kvw + hd * (dn + dv);
      const float* kr = kr_.data() + b * T * dr;
      const float* p = probs_.data() + item * T * T;
      const float* dO = d_o.data() + b * T * H * dv + hd * dv;
      float* dqn = dq.data() + b * T * H * qk + hd * qk;
      float* dkn = dkv.data() + b * T * kvw + hd * (dn + dv);
      GemmNTSerial(T, T, dv, dO, H * dv, kn + dn, kvw, ds.data(), T, 0.0f);
      CausalSoftmaxBackward(p, ds.data(), T, scale);
      GemmNNSerial(T, dn, T, ds.data(), T, kn, kvw, dqn, H * qk, 0.0f);
      GemmNNSerial(T, dr, T, ds.data(), T, kr, dr, dqn + dn, H * qk, 0.0f);
      GemmTNSerial(T, dn, T, ds.data(), T, qn, H * qk, dkn, kvw, 0.0f);
      GemmTNSerial(T, dr, T, ds.data(), T, qn + dn, H * qk, dkr_heads.data() + hd * n * dr + b * T * dr,
                   dr, 0.0f);
      GemmTNSerial(T, dv, T, p, T, dO, H * dv, dkn + dn, kvw, 0.0f);
    }
  });

  std::vector<float> dkva(n * (dc + dr), 0.0f);
  for (int64_t hd = 0; hd < H; ++hd) {
    const float* src = dkr_heads.data() + hd * n * dr;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < dr; ++j) dkva[i * (dc + dr) + dc + j] += src[i * dr + j];
  }
  RopeRows(dkva.data(), n, T, dc + dr, 1, 0, dc, dr, rope_freq, true, -1, pool);
  RopeRows(dq.data(), n, T, H * qk, H, qk, dn, dr, rope_freq, true, -1, pool);
  std::vector<float> dckv(n * dc, 0.0f);
  LinearBackward(kv_b, ckv_.data(), dkv.data(), n, dckv.data(), pool);
  RmsNormBackward(kva_.data(), dc + dr, kv_a_norm->value.data(), ckv_rstd_.data(), dckv.data(),
                  n, dc, dkva.data(), kv_a_norm->grad.data(), pool);
  LinearBackward(kv_a, h, dkva.data(), n, dh, pool);
  if (!q_a.empty()) {
    const int64_t dq_rank = q_a.out;
    std::vector<float> dqa_n(n * dq_rank, 0.0f), dqa(n * dq_rank, 0.0f);
    LinearBackward(q_b, qa_n_.data(), dq.data(), n, dqa_n.data(), pool);
    RmsNormBackward(qa_.data(), dq_rank, q_a_norm->value.data(), qa_rstd_.data(), dqa_n.data(), n,
                    dq_rank, dqa.data(), q_a_norm->grad.data(), pool);
    LinearBackward(q_a, h, dqa.data(), n, dh, pool);
  } else {
    LinearBackward(q_proj, h, dq.data(), n, dh, pool);
  }
}

void TrainModel::Layer::GqaForward(const float* h, const SeqShape& s, const float* rope_freq,
                                   float scale, float* out, ThreadPool& pool) {
  const int64_t n = s.n(), T = s.T, H = cfg.num_attention_heads,
                Hkv = cfg.num_key_value_heads, Dh = cfg.head_dim, group = H / Hkv,
                kvw = Hkv * Dh;
  q_.resize(n * H * Dh);
  kva_.resize(n * kvw);  // keys
  kv_.resize(n * kvw);   // values
  LinearForward(q, h, n, q_.data(), pool);
  LinearForward(k, h, n, kva_.data(), pool);
  LinearForward(v, h, n, kv_.data(), pool);
  RopeRows(q_.data(), n, T, H * Dh, H, Dh, 0, Dh, rope_freq, false, 1, pool);
  RopeRows(kva_.data(), n, T, kvw, Hkv, Dh, 0, Dh, rope_freq, false, 1, pool);
  probs_.resize(s.B * H * T * T);
  o_.resize(n * H * Dh);
  pool.ParallelFor(s.B * H, 1, [&](int64_t b0, int64_t e0, int) {
    for (int64_t item = b0; item < e0; ++item) {
      const int64_t b = item / H, hd = item % H, g = hd / group;
      float* p = probs_.data() + item * T * T;
      GemmNTSerial(T, T, Dh, q_.data() + b * T * H * Dh + hd * Dh, H * Dh,
                   kva_.data() + b * T * kvw + g * Dh, kvw, p, T, 0.0f);
      CausalSoftmax(p, T, scale);
      GemmNNSerial(T, Dh, T, p, T, kv_.data() + b * T * kvw + g * Dh, kvw,
                   o_.data() + b * T * H * Dh + hd * Dh, H * Dh, 0.0f);
    }
  });
  LinearForward(o_proj, o_.data(), n, out, pool);
}

void TrainModel::Layer::GqaBackward(const float* h, const float* dout, const SeqShape& s,
                                    const float* rope_freq, float scale, float* dh,
                                    ThreadPool& pool) {
  const int64_t n = s.n(), T = s.T, H = cfg.num_attention_heads,
                Hkv = cfg.num_key_value_heads, Dh = cfg.head_dim, group = H / Hkv,
                kvw = Hkv * Dh;
  std::vector<float> d_o(n * H * Dh, 0.0f);
  LinearBackward(o_proj, o_.data(), dout, n, d_o.data(), pool);
  // Per query head, then summed over each key/value group in a fixed order.
  std::vector<float> dq(n * H * Dh), dk_heads(H * n * Dh), dv_heads(H * n * Dh);
  pool.ParallelFor(s.B * H, 1, [&](int64_t b0, int64_t e0, int) {
    std::vector<float> ds(T * T);
    for (int64_t item = b0; item < e0; ++item) {
      const int64_t b = item / H, hd = item % H, g = hd / group;
      const float* p = probs_.data() + item * T * T;
      const float* qh = q_.data() + b * T * H * Dh + hd * Dh;
      const float* kh = kva_.data() + b * T * kvw + g * Dh;
      const float* vh = kv_.data() + b * T * kvw + g * Dh;
      const float* dO = d_o.data() + b * T * H * Dh + hd * Dh;
      GemmNTSerial(T, T, Dh, dO, H * Dh, vh, kvw, ds.data(), T, 0.0f);
      CausalSoftmaxBackward(p, ds.data(), T, scale);
      GemmNNSerial(T, Dh, T, ds.data(), T, kh, kvw, dq.data() + b * T * H * Dh + hd * Dh, H * Dh,
                   0.0f);
      GemmTNSerial(T, Dh, T, ds.data(), T, qh, H * Dh, dk_heads.data() + hd * n * Dh + b * T * Dh,
                   Dh, 0.0f);
      GemmTNSerial(T, Dh, T, p, T, dO, H * Dh, dv_heads.data() + hd * n * Dh + b * T * Dh, Dh,
                   0.0f);
    }
  });
  std::vector<float> dk(n * kvw, 0.0f), dvv(n * kvw, 0.0f);
  for (int64_t hd = 0; hd < H; ++hd) {
    const int64_t g = hd / group;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < Dh; ++j) {
        dk[i * kvw + g * Dh + j] += dk_heads[hd * n * Dh + i * Dh + j];
        dvv[i * kvw + g * Dh + j] += dv_heads[hd * n * Dh + i * Dh + j];
      }
  }
  RopeRows(dq.data(), n, T, H * Dh, H, Dh, 0, Dh, rope_freq, false, -1, pool);
  RopeRows(dk.data(), n, T, kvw, Hkv, Dh, 0, Dh, rope_freq, false, -1, pool);
  LinearBackward(q, h, dq.data(), n, dh, pool);
  LinearBackward(k, h, dk.data(), n, dh, pool);
  LinearBackward(v, h, dvv.data(), n, dh, pool);
}

}  // namespace r1
