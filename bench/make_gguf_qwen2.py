"""Write a random-weight GGUF with the exact shapes of DeepSeek-R1-Distill-Qwen-1.5B (Qwen2
architecture), for timing llama.cpp (through node-llama-cpp's prebuilt binaries) on this machine.
From ../shared/perf/make_gguf_qwen2.py (the perf anchors), used by bench/vs_llamacpp.sh; the
GGUF key/value helpers are in gguf_write.py.

usage: /usr/bin/python3 bench/make_gguf_qwen2.py QWEN_TOKENIZER_JSON OUT.gguf bf16|q8_0|q4_0 [layers]
GGUF v3 written from the public format description; weights are random (speed only).
"""
import json
import struct
import sys

import numpy as np

from gguf_write import T_BF16, T_F16, T_F32, T_Q4_0, T_Q8_0, arr, kv, s

tok_path, out, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
L = int(sys.argv[4]) if len(sys.argv) > 4 else 28
D, H, KV, FF, V = 1536, 12, 2, 8960, 151936
HD = D // H
rng = np.random.default_rng(0)

tj = json.load(open(tok_path))
vocab = tj["model"]["vocab"]
added = {a["content"]: a["id"] for a in tj["added_tokens"]}
tokens = [None] * V
types = [1] * V
for t, i in vocab.items():
    tokens[i] = t
for t, i in added.items():
    if i < V:
        tokens[i] = t
        types[i] = 3
for i in range(V):
    if tokens[i] is None:
        tokens[i] = f"[PAD{i}]"
        types[i] = 4
merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"]["merges"]]

meta = [
    kv("general.architecture", 8, "qwen2"), kv("general.name", 8, "random-r1-distill-qwen-1.5b-shape"),
    kv("general.alignment", 4, 32),
    kv("qwen2.context_length", 4, 4096), kv("qwen2.embedding_length", 4, D), kv("qwen2.block_count", 4, L),
    kv("qwen2.feed_forward_length", 4, FF), kv("qwen2.attention.head_count", 4, H),
    kv("qwen2.attention.head_count_kv", 4, KV), kv("qwen2.rope.freq_base", 6, 10000.0),
    kv("qwen2.attention.layer_norm_rms_epsilon", 6, 1e-6),
    kv("tokenizer.ggml.model", 8, "gpt2"), kv("tokenizer.ggml.pre", 8, "qwen2"),
    arr("tokenizer.ggml.tokens", 8, tokens), arr("tokenizer.ggml.token_type", 5, types),
    arr("tokenizer.ggml.merges", 8, merges),
    kv("tokenizer.ggml.bos_token_id", 4, 151643), kv("tokenizer.ggml.eos_token_id", 4, 151643),
    kv("tokenizer.ggml.add_bos_token", 7, False),
]

# (name, [out, in] shape, is_matrix)
tensors = [("token_embd.weight", (V, D), True), ("output_norm.weight", (D,), False)]
for i in range(L):
    p = f"blk.{i}."
    tensors += [(p + "attn_norm.weight", (D,), False), (p + "ffn_norm.weight", (D,), False),
                (p + "attn_q.weight", (D, D), True), (p + "attn_q.bias", (D,), False),
                (p + "attn_k.weight", (KV * HD, D), True), (p + "attn_k.bias", (KV * HD,), False),
                (p + "attn_v.weight", (KV * HD, D), True), (p + "attn_v.bias", (KV * HD,), False),
                (p + "attn_output.weight", (D, D), True),
                (p + "ffn_gate.weight", (FF, D), True), (p + "ffn_up.weight", (FF, D), True),
                (p + "ffn_down.weight", (D, FF), True)]


def encode(shape, matrix):
    n = int(np.prod(shape))
    if not matrix:
        return T_F32, (1.0 + 0.01 * rng.standard_normal(n)).astype(np.float32).tobytes()
    w = (rng.standard_normal(n, dtype=np.float32) * 0.02)
    if fmt == "bf16":
        return T_BF16, (w.view(np.uint32) >> 16).astype(np.uint16).tobytes()
    blocks = w.reshape(-1, 32)
    amax = np.abs(blocks).max(1, keepdims=True)
    if fmt == "q8_0":
        d = amax / 127.0
        q = np.round(blocks / np.where(d == 0, 1, d)).astype(np.int8)
        rec = np.zeros(len(blocks), dtype=[("d", "<f2"), ("q", "i1", 32)])
        rec["d"], rec["q"] = d[:, 0], q
        return T_Q8_0, rec.tobytes()
    d = amax / -8.0
    q = np.clip(np.round(blocks / np.where(d == 0, 1, d)) + 8, 0, 15).astype(np.uint8)
    rec = np.zeros(len(blocks), dtype=[("d", "<f2"), ("q", "u1", 16)])
    rec["d"], rec["q"] = d[:, 0], q[:, :16] | (q[:, 16:] << 4)
    return T_Q4_0, rec.tobytes()


infos, blobs, off = [], [], 0
for name, shape, matrix in tensors:
    typ, data = encode(shape, matrix)
    dims = list(reversed(shape))  # ggml order: innermost first
    infos.append(s(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
                 + struct.pack("<IQ", typ, off))
    pad = (-len(data)) % 32
    blobs.append(data + b"\0" * pad)
    off += len(data) + pad

with open(out, "wb") as f:
    f.write(b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(meta)))
    for m in meta:
        f.write(m)
    for i in infos:
        f.write(i)
    f.write(b"\0" * ((-f.tell()) % 32))
    for b in blobs:
        f.write(b)
print(out, fmt, f"{off / 1e9:.2f} GB of tensor data")
