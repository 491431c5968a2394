"""Write a random-weight GGUF with the exact shapes of DeepSeek-V2-Lite (llama.cpp architecture
"deepseek2"), for timing llama.cpp (through node-llama-cpp's prebuilt binaries) against r1cpp on
the MLA + MoE shape. Same style and encoders as bench/make_gguf_qwen2.py.

usage: /usr/bin/python3 bench/make_gguf_deepseek2.py QWEN_TOKENIZER_JSON OUT.gguf bf16|q8_0|q4_0 [layers]
  layers defaults to 27; layer 0 is the dense MLP layer for any count >= 1, the rest are MoE.

GGUF v3 written from the public format description; weights are random (speed only). Metadata
keys, tensor names and ggml dimension orders follow what llama.cpp's deepseek2 loader reads
(src/models/deepseek2.cpp load_arch_hparams / load_arch_tensors, src/llama-model.cpp
load_hparams, src/llama-arch.cpp names) and what its converter writes for DeepSeek-V2-Lite
(conversion/deepseek.py DeepseekV2Model): MLA as MQA with head_count_kv 1, key_length
kv_lora_rank + rope dim, value_length kv_lora_rank, key/value_length_mla the decompressed head
sizes, and kv_b split into attn_k_b (transposed, ggml {nope, kv_lora, heads}) and attn_v_b
(ggml {kv_lora, v_head, heads}), so llama.cpp runs MLA with the absorbed latent (576-wide) cache.

The tokenizer is the Qwen one cut to ids < 102400 (no DeepSeek tokenizer offline): merges are kept
only when both parts and the result survive, ids 100000/100001 become DeepSeek's BOS/EOS control
tokens (their ids in DeepSeek-V2), and any id left without a token is padded as [PADn].
Tensor data is streamed tensor by tensor in chunks, so memory stays bounded (the full q4_0 file is
about 8.8 GB, the biggest tensor 64 x 1408 x 2048 values).
Token ids fed to llama.cpp must stay below 102400 (it rejects larger ids: "invalid token").
"""
import json
import struct
import sys
import time

import numpy as np

from gguf_write import T_BF16, T_F16, T_F32, T_Q4_0, T_Q8_0, arr, kv, s

if len(sys.argv) < 4 or sys.argv[3] not in ("bf16", "q8_0", "q4_0"):
    sys.exit(__doc__.split("\n\n")[1])
tok_path, out, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
L = int(sys.argv[4]) if len(sys.argv) > 4 else 27
assert L >= 1

# DeepSeek-V2-Lite
D, V = 2048, 102400
FF = 10944                        # dense MLP (layer 0)
N_EXP, N_USED, N_SHARED, FF_EXP = 64, 6, 2, 1408
N_DENSE = 1                       # first_k_dense_replace
H = 16
KV_LORA, NOPE, ROPE, VHD = 512, 128, 64, 128
QK = NOPE + ROPE                  # 192
CTX = 163840                      # max_position_embeddings
YARN_FACTOR, YARN_ORIG_CTX, MSCALE_ALL_DIM = 40.0, 4096, 0.707
BOS, EOS = 100000, 100001
rng = np.random.default_rng(0)

CHUNK = 1 << 22                   # values generated/encoded per step (a multiple of 32)

# ---- tokenizer: the Qwen BPE vocabulary cut to the first V ids ----
tj = json.load(open(tok_path))
tokens = [None] * V
types = [1] * V
for t, i in tj["model"]["vocab"].items():
    if i < V:
        tokens[i] = t
for a in tj["added_tokens"]:
    if a["id"] < V:
        tokens[a["id"]] = a["content"]
        types[a["id"]] = 3
for i, t in ((BOS, "<｜begin▁of▁sentence｜>"), (EOS, "<｜end▁of▁sentence｜>")):
    tokens[i], types[i] = t, 3
for i in range(V):
    if tokens[i] is None:
        tokens[i] = f"[PAD{i}]"
        types[i] = 4
kept = {t for t, ty in zip(tokens, types) if ty == 1}
merges = []
for m in tj["model"]["merges"]:
    a, b = m.split(" ", 1) if isinstance(m, str) else m
    if a in kept and b in kept and a + b in kept:
        merges.append(a + " " + b)

A = "deepseek2."
meta = [
    kv("general.architecture", 8, "deepseek2"), kv("general.name", 8, "random-deepseek-v2-lite-shape"),
    kv("general.alignment", 4, 32),
    kv(A + "block_count", 4, L), kv(A + "context_length", 4, CTX), kv(A + "embedding_length", 4, D),
    kv(A + "feed_forward_length", 4, FF), kv(A + "attention.head_count", 4, H),
    # MLA runs as MQA over the compressed latent: one kv head of kv_lora_rank + rope dims
    kv(A + "attention.head_count_kv", 4, 1),
    kv(A + "rope.freq_base", 6, 10000.0), kv(A + "attention.layer_norm_rms_epsilon", 6, 1e-6),
    kv(A + "expert_count", 4, N_EXP), kv(A + "expert_used_count", 4, N_USED),
    kv(A + "expert_group_count", 4, 1), kv(A + "expert_group_used_count", 4, 1),
    kv(A + "expert_gating_func", 4, 1),  # 1 = softmax
    kv(A + "leading_dense_block_count", 4, N_DENSE), kv(A + "vocab_size", 4, V),
    # q_lora_rank 0 = plain attn_q; llama.cpp only skips this key for 26/27-layer ("lite") files
    kv(A + "attention.q_lora_rank", 4, 0),
    kv(A + "attention.kv_lora_rank", 4, KV_LORA),
    kv(A + "attention.key_length", 4, KV_LORA + ROPE), kv(A + "attention.value_length", 4, KV_LORA),
    kv(A + "attention.key_length_mla", 4, QK), kv(A + "attention.value_length_mla", 4, VHD),
    kv(A + "expert_feed_forward_length", 4, FF_EXP), kv(A + "expert_shared_count", 4, N_SHARED),
    kv(A + "expert_weights_scale", 6, 1.0), kv(A + "expert_weights_norm", 7, False),
    kv(A + "rope.dimension_count", 4, ROPE),
    kv(A + "rope.scaling.type", 8, "yarn"), kv(A + "rope.scaling.factor", 6, YARN_FACTOR),
    kv(A + "rope.scaling.original_context_length", 4, YARN_ORIG_CTX),
    kv(A + "rope.scaling.yarn_beta_fast", 6, 32.0), kv(A + "rope.scaling.yarn_beta_slow", 6, 1.0),
    # the converter stores 0.1 * mscale_all_dim here and llama.cpp divides it back out
    kv(A + "rope.scaling.yarn_log_multiplier", 6, 0.1 * MSCALE_ALL_DIM),
    kv("tokenizer.ggml.model", 8, "gpt2"), kv("tokenizer.ggml.pre", 8, "qwen2"),
    arr("tokenizer.ggml.tokens", 8, tokens), arr("tokenizer.ggml.token_type", 5, types),
    arr("tokenizer.ggml.merges", 8, merges),
    kv("tokenizer.ggml.bos_token_id", 4, BOS), kv("tokenizer.ggml.eos_token_id", 4, EOS),
    kv("tokenizer.ggml.add_bos_token", 7, True),
]

# (name, shape in PyTorch order = outermost first, kind); kind: "mat" (requested format),
# "f32" (random F32 matrix: the router), "norm" (F32 around 1)
tensors = [("token_embd.weight", (V, D), "mat"), ("output_norm.weight", (D,), "norm"),
           ("output.weight", (V, D), "mat")]
for i in range(L):
    p = f"blk.{i}."
    tensors += [(p + "attn_norm.weight", (D,), "norm"),
                (p + "attn_q.weight", (H * QK, D), "mat"),
                (p + "attn_kv_a_mqa.weight", (KV_LORA + ROPE, D), "mat"),
                (p + "attn_kv_a_norm.weight", (KV_LORA,), "norm"),
                # kv_b_proj [H*(NOPE+VHD), KV_LORA] split per head; k_b transposed to [H, KV_LORA, NOPE]
                (p + "attn_k_b.weight", (H, KV_LORA, NOPE), "mat"),
                (p + "attn_v_b.weight", (H, VHD, KV_LORA), "mat"),
                (p + "attn_output.weight", (D, H * VHD), "mat"),
                (p + "ffn_norm.weight", (D,), "norm")]
    if i < N_DENSE:
        tensors += [(p + "ffn_gate.weight", (FF, D), "mat"), (p + "ffn_up.weight", (FF, D), "mat"),
                    (p + "ffn_down.weight", (D, FF), "mat")]
    else:
        SH = FF_EXP * N_SHARED
        tensors += [(p + "ffn_gate_inp.weight", (N_EXP, D), "f32"),
                    (p + "ffn_gate_exps.weight", (N_EXP, FF_EXP, D), "mat"),
                    (p + "ffn_up_exps.weight", (N_EXP, FF_EXP, D), "mat"),
                    (p + "ffn_down_exps.weight", (N_EXP, D, FF_EXP), "mat"),
                    (p + "ffn_gate_shexp.weight", (SH, D), "mat"), (p + "ffn_up_shexp.weight", (SH, D), "mat"),
                    (p + "ffn_down_shexp.weight", (D, SH), "mat")]

QUANT = {"bf16": T_BF16, "q8_0": T_Q8_0, "q4_0": T_Q4_0}[fmt]


def ttype(shape, kind):
    if kind != "mat":
        return T_F32
    if QUANT in (T_Q8_0, T_Q4_0) and shape[-1] % 32:
        return T_F16  # rows must hold whole 32-value blocks
    return QUANT


def nbytes(typ, n):
    return {T_F32: 4 * n, T_F16: 2 * n, T_BF16: 2 * n, T_Q8_0: n // 32 * 34, T_Q4_0: n // 32 * 18}[typ]


def encode(typ, n):
    """n values (standard normal x 0.02) of one tensor, or of a chunk of one, in type typ.
    q8_0/q4_0 are the encodings of bench/make_gguf_qwen2.py (d = amax/127, d = amax/-8), done in
    place on the unscaled normals (the codes do not depend on the 0.02, only d does)."""
    w = rng.standard_normal(n, dtype=np.float32)
    if typ in (T_F32, T_F16, T_BF16):
        w *= 0.02
        if typ == T_F32:
            return w.tobytes()
        if typ == T_F16:
            return w.astype(np.float16).tobytes()
        return (w.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    blocks = w.reshape(-1, 32)
    amax = np.maximum(np.abs(blocks).max(1, keepdims=True), 1e-30)
    if typ == T_Q8_0:
        blocks *= 127.0 / amax
        q = np.rint(blocks, out=blocks).astype(np.int8)
        rec = np.empty(len(blocks), dtype=[("d", "<f2"), ("q", "i1", 32)])
        rec["d"], rec["q"] = amax[:, 0] * (0.02 / 127.0), q
        return rec.tobytes()
    blocks *= -8.0 / amax  # d = amax / -8: codes x/d + 8 in [0, 16], 16 clamped to 15 as in ggml
    blocks += 8.5
    np.clip(blocks, 0.0, 15.5, out=blocks)
    q = blocks.astype(np.uint8)  # truncation of x/d + 8.5: round half up
    rec = np.empty(len(blocks), dtype=[("d", "<f2"), ("q", "u1", 16)])
    rec["d"], rec["q"] = amax[:, 0] * (-0.02 / 8.0), q[:, :16] | (q[:, 16:] << 4)
    return rec.tobytes()


infos, plan, off = [], [], 0
for name, shape, kind in tensors:
    typ, n = ttype(shape, kind), int(np.prod(shape))
    size = nbytes(typ, n)
    dims = list(reversed(shape))  # ggml order: innermost first
    infos.append(s(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
                 + struct.pack("<IQ", typ, off))
    plan.append((name, typ, n, kind, size))
    off += size + (-size) % 32

t0 = time.time()
with open(out, "wb") as f:
    f.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)))
    for m in meta:
        f.write(m)
    for i in infos:
        f.write(i)
    f.write(b"\0" * ((-f.tell()) % 32))
    base = f.tell()
    for name, typ, n, kind, size in plan:
        start = f.tell()
        if kind == "norm":
            f.write((1.0 + 0.01 * rng.standard_normal(n)).astype(np.float32).tobytes())
        else:
            for c in range(0, n, CHUNK):
                f.write(encode(typ, min(CHUNK, n - c)))
        assert f.tell() - start == size, name
        f.write(b"\0" * ((-size) % 32))
    assert f.tell() - base == off
print(out, fmt, f"{L} layers, {len(tensors)} tensors, {off / 1e9:.2f} GB of tensor data,"
      f" {len(merges)} merges, written in {time.time() - t0:.1f} s")
