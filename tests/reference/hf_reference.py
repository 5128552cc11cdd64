#!/usr/bin/env python3
"""r1kit's own PyTorch reference for Hugging Face causal-LM checkpoints.

Why it exists: the model tests (tests/hf-models.test.ts, tests/deepseek-hf.test.ts) must show that r1kit
reads, runs and writes real Hugging Face checkpoints the way transformers does. This file is a second,
independent implementation of the forward passes, written from the architecture definitions in
transformers (models/llama, qwen2, qwen3, deepseek_v3 and modeling_rope_utils), in plain PyTorch and in
float32. It shares no code with r1kit's TypeScript model, nor with transformers.

It also writes the fixtures (fixtures/<suite>.json) that let `npm test` check r1kit without Python: for
each checkpoint of cases.json, the tensor list it draws (names, shapes, scales; the values come from a
counter-based generator simple enough to repeat byte for byte in TypeScript: tests/reference/checkpoint.ts),
a SHA-256 of the stored tensors, and a summary of the logits (every position's logsumexp and mean, and a
grid of single logits).

Needs Debian's python3-torch (1.13) and numpy; safetensors files are read and written here.

  python3 tests/reference/hf_reference.py make --family llama|qwen2|qwen3|deepseek_v3 --out DIR
          [--dtype f32|bf16|f16] [--shards N] [--seed S] [--set key=JSON ...]
  python3 tests/reference/hf_reference.py logits  --model DIR --ids '1,2,3;4,5' --out FILE [--no-mtp]
  python3 tests/reference/hf_reference.py compare --model DIR --ids '1,2,3;4,5' --logits FILE [--tol 1e-4]
  python3 tests/reference/hf_reference.py greedy  --model DIR --ids '1,2,3' --max-new-tokens N [--eos 7,8]
  python3 tests/reference/hf_reference.py fixtures          # rewrites tests/reference/fixtures/*.json
  python3 tests/reference/hf_reference.py batch --jobs FILE  # FILE: a JSON list of argument lists, run in
                                                             # this one process (torch loads once)

Each command prints one JSON line. A logits file is {"ids": [[..]], "logits": [B][T][V]} plus, for a
deepseek_v3 model with an MTP layer, "mtp_logits": [B][T-1][V] (row i predicts token i+2).
"""
import argparse
import hashlib
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np
import torch

torch.set_grad_enabled(False)
HERE = os.path.dirname(os.path.abspath(__file__))

# ----------------------------------------------------------------------------------------------
# The shared generator: value j of a tensor is a function of (seed, tensor name, j) only, so the
# TypeScript side can write the same checkpoint without Python. Uniform, unit variance.
MASK = 0xFFFFFFFF
GOLDEN = 0x9E3779B9


def fnv1a32(text):
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & MASK
    return h


def mix32(x):  # murmur3's finaliser on uint64 arrays holding 32-bit values
    x = ((x ^ (x >> np.uint64(16))) * np.uint64(0x85EBCA6B)) & np.uint64(MASK)
    x = ((x ^ (x >> np.uint64(13))) * np.uint64(0xC2B2AE35)) & np.uint64(MASK)
    return x ^ (x >> np.uint64(16))


def raw_stream(key, n):
    j = np.arange(n, dtype=np.uint64)
    return mix32((np.uint64(key) + j * np.uint64(GOLDEN)) & np.uint64(MASK))


def unit_stream(name, seed, n):
    """n float64 values, uniform on [-sqrt 3, sqrt 3)."""
    u = raw_stream(fnv1a32(f"{seed}:{name}"), n).astype(np.float64) / 4294967296.0
    return (2.0 * u - 1.0) * math.sqrt(3.0)


def draw_ids(seed, lengths, vocab):
    return [[int(x) % vocab for x in raw_stream(fnv1a32(f"{seed}:ids:{r}"), n)] for r, n in enumerate(lengths)]


# ----------------------------------------------------------------------------------------------
# Tiny configurations (fields as the released configs spell them).
def tiny_config(family):
    common = dict(vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=128, hidden_act="silu", max_position_embeddings=512,
                  rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2, initializer_range=0.02, use_cache=True)
    if family == "llama":  # llama 3.2 style: llama3 scaling with an original context short enough to act
        return dict(common, architectures=["LlamaForCausalLM"], model_type="llama", head_dim=16, rms_norm_eps=1e-5,
                    rope_theta=500000.0, attention_bias=False, mlp_bias=False, tie_word_embeddings=True,
                    rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                      original_max_position_embeddings=64))
    if family == "qwen2":  # 3 layers, 6 query heads sharing 2 key/value heads, q/k/v biases, untied head
        return dict(common, architectures=["Qwen2ForCausalLM"], model_type="qwen2", hidden_size=96, num_hidden_layers=3,
                    num_attention_heads=6, intermediate_size=160, rope_theta=1000000.0, tie_word_embeddings=False,
                    use_sliding_window=False, sliding_window=4096, max_window_layers=3)
    if family == "qwen3":  # per-head q/k norms; 4 heads of 32 = 128 != hidden 64
        return dict(common, architectures=["Qwen3ForCausalLM"], model_type="qwen3", head_dim=32, rope_theta=1000000.0,
                    attention_bias=False, tie_word_embeddings=True, use_sliding_window=False, sliding_window=None,
                    max_window_layers=2)
    if family == "deepseek_v3":  # layer 0 dense, layer 1 MoE, layer 2 the MTP module; yarn with both mscales
        return dict(common, architectures=["DeepseekV3ForCausalLM"], model_type="deepseek_v3", num_key_value_heads=4,
                    bos_token_id=0, eos_token_id=1, q_lora_rank=32, kv_lora_rank=32, qk_nope_head_dim=16,
                    qk_rope_head_dim=8, v_head_dim=16, n_routed_experts=16, n_shared_experts=1, moe_intermediate_size=32,
                    num_experts_per_tok=4, n_group=4, topk_group=2, first_k_dense_replace=1, moe_layer_freq=1,
                    norm_topk_prob=True, routed_scaling_factor=2.5, scoring_func="sigmoid", topk_method="noaux_tc",
                    num_nextn_predict_layers=1, rope_theta=10000.0, attention_bias=False, tie_word_embeddings=False,
                    rope_interleave=True,
                    rope_scaling=dict(type="yarn", factor=4.0, original_max_position_embeddings=128, beta_fast=32,
                                      beta_slow=1, mscale=1.0, mscale_all_dim=0.8))
    raise SystemExit(f"hf_reference.py: unknown family {family!r}; known: llama, qwen2, qwen3, deepseek_v3")


def head_dim(cfg):
    if cfg["model_type"] == "qwen3":
        return cfg.get("head_dim") or 128
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def biases(cfg):
    """(q/k/v bias, o bias, mlp bias) of the dense families."""
    fam = cfg["model_type"]
    if fam == "qwen2":
        return True, False, False
    ab = bool(cfg.get("attention_bias", False))
    return ab, ab, fam == "llama" and bool(cfg.get("mlp_bias", False))


def tensor_plan(cfg):
    """Every tensor of the checkpoint in file order: (name, shape, offset, scale); the values are
    offset + scale * unit_stream(name). Matrices get unit-variance outputs (scale 1/sqrt(fan in)), norm
    gains 1 +- 0.1 so a missing or misplaced norm shows, biases 0.1."""
    plan, C, fam = [], cfg["hidden_size"], cfg["model_type"]

    def linear(name, out, inp, bias=False):
        plan.append((name + ".weight", [out, inp], 0.0, 1.0 / math.sqrt(inp)))
        if bias:
            plan.append((name + ".bias", [out], 0.0, 0.1))

    def norm(name, n):
        plan.append((name + ".weight", [n], 1.0, 0.1))

    def swiglu(prefix, inner, bias=False):
        linear(prefix + "gate_proj", inner, C, bias)
        linear(prefix + "up_proj", inner, C, bias)
        linear(prefix + "down_proj", C, inner, bias)

    plan.append(("model.embed_tokens.weight", [cfg["vocab_size"], C], 0.0, 0.5))
    layers = cfg["num_hidden_layers"] + (cfg.get("num_nextn_predict_layers") or 0 if fam == "deepseek_v3" else 0)
    for i in range(layers):
        p = f"model.layers.{i}."
        a = p + "self_attn."
        norm(p + "input_layernorm", C)
        if fam == "deepseek_v3":
            H, r, dr = cfg["num_attention_heads"], cfg["kv_lora_rank"], cfg["qk_rope_head_dim"]
            dq, dv, qr = cfg["qk_nope_head_dim"] + dr, cfg["v_head_dim"], cfg.get("q_lora_rank")
            ab = bool(cfg.get("attention_bias", False))
            if qr:
                linear(a + "q_a_proj", qr, C, ab)
                norm(a + "q_a_layernorm", qr)
                linear(a + "q_b_proj", H * dq, qr)
            else:
                linear(a + "q_proj", H * dq, C)
            linear(a + "kv_a_proj_with_mqa", r + dr, C, ab)
            norm(a + "kv_a_layernorm", r)
            linear(a + "kv_b_proj", H * (cfg["qk_nope_head_dim"] + dv), r)
            linear(a + "o_proj", C, H * dv, ab)
            norm(p + "post_attention_layernorm", C)
            if i < cfg["first_k_dense_replace"]:
                swiglu(p + "mlp.", cfg["intermediate_size"])
            else:
                E, F = cfg["n_routed_experts"], cfg["moe_intermediate_size"]
                linear(p + "mlp.gate", E, C)
                plan.append((p + "mlp.gate.e_score_correction_bias", [E], 0.0, 0.05))
                for e in range(E):
                    swiglu(f"{p}mlp.experts.{e}.", F)
                swiglu(p + "mlp.shared_experts.", F * cfg["n_shared_experts"])
            if i == cfg["num_hidden_layers"]:  # the MTP module's own tensors
                norm(p + "enorm", C)
                norm(p + "hnorm", C)
                linear(p + "eh_proj", C, 2 * C)
                norm(p + "shared_head.norm", C)
                linear(p + "shared_head.head", cfg["vocab_size"], C)
        else:
            H, D = cfg["num_attention_heads"], head_dim(cfg)
            KV = cfg.get("num_key_value_heads") or H
            qkv_b, o_b, mlp_b = biases(cfg)
            linear(a + "q_proj", H * D, C, qkv_b)
            linear(a + "k_proj", KV * D, C, qkv_b)
            linear(a + "v_proj", KV * D, C, qkv_b)
            linear(a + "o_proj", C, H * D, o_b)
            if fam == "qwen3":
                norm(a + "q_norm", D)
                norm(a + "k_norm", D)
            norm(p + "post_attention_layernorm", C)
            swiglu(p + "mlp.", cfg["intermediate_size"], mlp_b)
    norm("model.norm", C)
    if not cfg.get("tie_word_embeddings", False):
        linear("lm_head", cfg["vocab_size"], C)
    return plan


# ----------------------------------------------------------------------------------------------
# safetensors: 8-byte little-endian header length, JSON header, raw little-endian data.
TORCH_DTYPE = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
NAME_DTYPE = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
CONFIG_DTYPE = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


def tensor_bytes(t):
    if t.dtype == torch.bfloat16:  # numpy has no bfloat16: the same bits as int16
        return t.contiguous().view(torch.int16).numpy().tobytes()
    return t.contiguous().numpy().tobytes()


def write_safetensors(path, tensors):  # tensors: list of (name, tensor), kept in that order
    header, offset, blobs = {"__metadata__": {"format": "pt"}}, 0, []
    for name, t in tensors:
        blob = tensor_bytes(t)
        dtype = next(k for k, v in TORCH_DTYPE.items() if v == t.dtype)
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    text = json.dumps(header, separators=(",", ":"))
    text += " " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text.encode())
        for blob in blobs:
            f.write(blob)


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header, body, out = json.loads(data[8:8 + n]), data[8 + n:], {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] not in TORCH_DTYPE:
            raise SystemExit(f"{path}: tensor {name} has dtype {e['dtype']}; this reference reads F32, F16, BF16")
        lo, hi = e["data_offsets"]
        chunk = bytearray(body[lo:hi])
        if e["dtype"] == "BF16":
            t = torch.frombuffer(chunk, dtype=torch.int16).view(torch.bfloat16) if chunk else torch.zeros(0, dtype=torch.bfloat16)
        else:
            t = torch.frombuffer(chunk, dtype=TORCH_DTYPE[e["dtype"]]) if chunk else torch.zeros(0, dtype=TORCH_DTYPE[e["dtype"]])
        out[name] = (e["dtype"], t.reshape(e["shape"]))
    return out


def digest(stored):
    """SHA-256 over the tensors in name order: name, dtype, shape, then the stored bytes."""
    h = hashlib.sha256()
    for name in sorted(stored):
        dtype, t = stored[name]
        h.update(f"{name}\n{dtype}\n{','.join(str(s) for s in t.shape)}\n".encode())
        h.update(tensor_bytes(t))
    return h.hexdigest()


def shard_of(plan_bytes, shards):
    """Shard index of each tensor: contiguous runs of about equal size (a tensor goes to the shard its
    first byte falls in)."""
    total, before, out = sum(plan_bytes), 0, []
    for b in plan_bytes:
        out.append(min(shards - 1, before * shards // total))
        before += b
    return out


def make(family, out, dtype="f32", shards=1, seed=0, sets=None):
    cfg = tiny_config(family)
    cfg.update(sets or {})
    st_dtype = NAME_DTYPE[dtype]
    cfg["torch_dtype"] = CONFIG_DTYPE[st_dtype]
    plan = tensor_plan(cfg)
    stored = []
    for name, shape, offset, scale in plan:
        n = math.prod(shape)
        values = torch.from_numpy((offset + scale * unit_stream(name, seed, n)).astype(np.float32)).reshape(shape)
        keep = "F32" if name.endswith("e_score_correction_bias") else st_dtype  # DeepSeek keeps these in F32
        stored.append((name, keep, values.to(TORCH_DTYPE[keep])))
    sizes = [t.numel() * t.element_size() for _, _, t in stored]
    where = shard_of(sizes, shards)
    os.makedirs(out, exist_ok=True)
    files = [f"model-{k + 1:05d}-of-{shards:05d}.safetensors" for k in range(shards)] if shards > 1 else ["model.safetensors"]
    for k, file in enumerate(files):
        write_safetensors(os.path.join(out, file), [(n, t) for (n, _, t), s in zip(stored, where) if s == k])
    if shards > 1:
        index = {"metadata": {"total_size": sum(sizes)}, "weight_map": {n: files[s] for (n, _, _), s in zip(stored, where)}}
        with open(os.path.join(out, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)
    generation = {"bos_token_id": cfg["bos_token_id"], "eos_token_id": cfg["eos_token_id"], "do_sample": True,
                  "temperature": 0.6, "top_p": 0.95}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump(generation, f, indent=2)
    return {
        "family": family, "out": out, "dtype": dtype, "seed": seed, "files": files,
        "tensors": len(stored), "params": sum(t.numel() for _, _, t in stored),
        "digest": digest({n: (d, t) for n, d, t in stored}),
        "config": cfg, "generation_config": generation,
        # name, shape, offset, scale, stored dtype, index into files
        "plan": [[n, s, o, sc, d, w] for (n, s, o, sc), (_, d, _), w in zip(plan, stored, where)],
    }


# ----------------------------------------------------------------------------------------------
# Loading: weights as float32, each use recorded so a tensor the model never reads is reported.
class Weights:
    def __init__(self, tensors):
        self.tensors, self.used = tensors, set()

    def __call__(self, name):
        self.used.add(name)
        return self.tensors[name]

    def has(self, name):
        return name in self.tensors


def load(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    files = sorted(f for f in os.listdir(model_dir) if f.endswith(".safetensors"))
    tensors = {}
    for file in files:
        for name, (_, t) in read_safetensors(os.path.join(model_dir, file)).items():
            tensors[name] = t.to(torch.float32)
    refuse_unsupported(cfg)
    return cfg, Weights(tensors)


def refuse_unsupported(cfg):
    """What this reference does not implement, refused rather than guessed."""
    fam = cfg.get("model_type")
    if fam not in ("llama", "qwen2", "qwen3", "deepseek_v3"):
        raise SystemExit(f"hf_reference.py: model_type {fam!r} is not implemented")
    if cfg.get("hidden_act", "silu") != "silu":
        raise SystemExit(f"hf_reference.py: hidden_act {cfg['hidden_act']!r} is not implemented")
    if cfg.get("use_sliding_window"):
        raise SystemExit("hf_reference.py: sliding-window attention is not implemented")
    rope = cfg.get("rope_scaling") or {}
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind not in ("default", "linear", "llama3", "yarn"):
        raise SystemExit(f"hf_reference.py: rope type {kind!r} is not implemented")
    if fam == "deepseek_v3":
        if cfg.get("scoring_func", "sigmoid") != "sigmoid" or cfg.get("topk_method", "noaux_tc") != "noaux_tc":
            raise SystemExit("hf_reference.py: DeepSeek routing other than sigmoid / noaux_tc is not implemented")
        if (cfg.get("num_nextn_predict_layers") or 0) > 1:
            raise SystemExit("hf_reference.py: more than one MTP module is not implemented")


# ----------------------------------------------------------------------------------------------
# The pieces, as the HF modules compute them.
def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))


def linear(W, name, x, bias=False):
    y = x @ W(name + ".weight").T
    return y + W(name + ".bias") if bias else y


def swiglu(W, prefix, x, bias=False):
    gate = linear(W, prefix + "gate_proj", x, bias)
    return linear(W, prefix + "down_proj", torch.nn.functional.silu(gate) * linear(W, prefix + "up_proj", x, bias), bias)


def yarn_mscale(scale, m):
    return 1.0 if scale <= 1 else 0.1 * m * math.log(scale) + 1.0


def inv_freq_and_factor(cfg, dim):
    """Rotary inverse frequencies (float64, dim/2 of them) and the factor cos and sin are scaled by."""
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / base ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)
    rope = cfg.get("rope_scaling") or {}
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind == "linear":
        return inv / rope["factor"], 1.0
    if kind == "llama3":
        factor, low, high = rope["factor"], rope["low_freq_factor"], rope["high_freq_factor"]
        old = rope["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = torch.where(wavelen > old / low, inv / factor, inv)
        smooth = (old / wavelen - low) / (high - low)
        between = (wavelen >= old / high) & (wavelen <= old / low)
        return torch.where(between, (1 - smooth) * scaled / factor + smooth * scaled, scaled), 1.0
    if kind == "yarn":
        factor = rope["factor"]
        original = rope.get("original_max_position_embeddings")
        if original:  # transformers takes the factor as the ratio of the two contexts when both are given
            factor = cfg["max_position_embeddings"] / original
        else:
            original = cfg["max_position_embeddings"]
        mscale, mscale_all = rope.get("mscale"), rope.get("mscale_all_dim")
        attention = rope.get("attention_factor")
        if attention is None:
            attention = yarn_mscale(factor, mscale) / yarn_mscale(factor, mscale_all) if mscale and mscale_all else yarn_mscale(factor, 1.0)
        beta_fast, beta_slow = rope.get("beta_fast") or 32, rope.get("beta_slow") or 1

        def dim_of(rotations):  # the dimension index whose wavelength makes `rotations` turns over the original context
            return dim * math.log(original / (rotations * 2 * math.pi)) / (2 * math.log(base))

        lo, hi = math.floor(dim_of(beta_fast)), math.ceil(dim_of(beta_slow))
        if rope.get("truncate", True) is False:
            lo, hi = dim_of(beta_fast), dim_of(beta_slow)
        lo, hi = max(lo, 0), min(hi, dim - 1)
        if lo == hi:
            hi += 0.001
        ramp = ((torch.arange(dim // 2, dtype=torch.float32) - lo) / (hi - lo)).clamp(0, 1).to(torch.float64)
        keep = 1 - ramp  # 1: the original frequency (extrapolate), 0: divided by the factor (interpolate)
        return (inv / factor) * (1 - keep) + inv * keep, attention
    return inv, 1.0


def cos_sin(cfg, dim, T):
    inv, factor = inv_freq_and_factor(cfg, dim)
    angles = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return (angles.cos() * factor).to(torch.float32), (angles.sin() * factor).to(torch.float32)


def rotate(x, cos, sin):  # x [H, T, D]: halves (j, j + D/2) rotated together
    half = x.shape[-1] // 2
    turned = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + turned * sin


def deinterleave(x):  # pairs (2j, 2j+1) -> halves (j, j + D/2), as transformers' interleaved rope does
    H, T, D = x.shape
    return x.reshape(H, T, D // 2, 2).transpose(2, 3).reshape(H, T, D)


def attend(q, k, v, scale):  # q, k [H, T, Dk]; v [H, T, Dv] -> [T, H * Dv]
    T = q.shape[1]
    scores = (q @ k.transpose(1, 2)) * scale
    scores = scores.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    out = torch.softmax(scores, dim=-1) @ v
    return out.transpose(0, 1).reshape(T, -1)


def dense_attention(cfg, W, p, x, cos, sin):
    T, H, D = x.shape[0], cfg["num_attention_heads"], head_dim(cfg)
    KV = cfg.get("num_key_value_heads") or H
    qkv_b, o_b, _ = biases(cfg)
    q = linear(W, p + "q_proj", x, qkv_b).reshape(T, H, D)
    k = linear(W, p + "k_proj", x, qkv_b).reshape(T, KV, D)
    v = linear(W, p + "v_proj", x, qkv_b).reshape(T, KV, D)
    if cfg["model_type"] == "qwen3":
        q = rms_norm(q, W(p + "q_norm.weight"), cfg["rms_norm_eps"])
        k = rms_norm(k, W(p + "k_norm.weight"), cfg["rms_norm_eps"])
    q, k, v = (t.transpose(0, 1) for t in (q, k, v))
    q, k = rotate(q, cos, sin), rotate(k, cos, sin)
    k, v = k.repeat_interleave(H // KV, dim=0), v.repeat_interleave(H // KV, dim=0)
    return linear(W, p + "o_proj", attend(q, k, v, 1 / math.sqrt(D)), o_b)


def mla_attention(cfg, W, p, x, cos, sin):
    T, H = x.shape[0], cfg["num_attention_heads"]
    dn, dr, dv, r = cfg["qk_nope_head_dim"], cfg["qk_rope_head_dim"], cfg["v_head_dim"], cfg["kv_lora_rank"]
    eps, ab = cfg["rms_norm_eps"], bool(cfg.get("attention_bias", False))
    if cfg.get("q_lora_rank"):
        q = linear(W, p + "q_b_proj", rms_norm(linear(W, p + "q_a_proj", x, ab), W(p + "q_a_layernorm.weight"), eps))
    else:
        q = linear(W, p + "q_proj", x)
    q = q.reshape(T, H, dn + dr).transpose(0, 1)
    q_nope, q_rope = q[..., :dn], q[..., dn:]
    latent = linear(W, p + "kv_a_proj_with_mqa", x, ab)
    kv = linear(W, p + "kv_b_proj", rms_norm(latent[:, :r], W(p + "kv_a_layernorm.weight"), eps))
    kv = kv.reshape(T, H, dn + dv).transpose(0, 1)
    k_nope, v = kv[..., :dn], kv[..., dn:]
    k_rope = latent[:, r:].reshape(1, T, dr)
    if cfg.get("rope_interleave", True):
        q_rope, k_rope = deinterleave(q_rope), deinterleave(k_rope)
    q_rope, k_rope = rotate(q_rope, cos, sin), rotate(k_rope, cos, sin)
    qf = torch.cat([q_nope, q_rope], dim=-1)
    kf = torch.cat([k_nope, k_rope.expand(H, T, dr)], dim=-1)
    scale = 1 / math.sqrt(dn + dr)
    rope = cfg.get("rope_scaling") or {}
    if rope.get("mscale_all_dim"):
        scale *= yarn_mscale(rope["factor"], rope["mscale_all_dim"]) ** 2
    return linear(W, p + "o_proj", attend(qf, kf, v, scale), ab)


def route(cfg, W, p, x):
    """Sigmoid scores; the correction bias picks groups and experts but does not weight them."""
    E, G = cfg["n_routed_experts"], cfg.get("n_group") or 1
    scores = torch.sigmoid(x @ W(p + "gate.weight").T)
    choice = scores + W(p + "gate.e_score_correction_bias")
    group_score = choice.reshape(-1, G, E // G).topk(2, dim=-1).values.sum(-1)  # each group's best two
    best_groups = group_score.topk(cfg.get("topk_group") or 1, dim=-1).indices
    groups = torch.zeros(group_score.shape, dtype=torch.bool).scatter_(1, best_groups, True)
    allowed = groups[:, :, None].expand(-1, G, E // G).reshape(-1, E)
    experts = choice.masked_fill(~allowed, 0.0).topk(cfg["num_experts_per_tok"], dim=-1).indices
    weights = scores.gather(1, experts)
    if cfg.get("norm_topk_prob", True):
        weights = weights / (weights.sum(-1, keepdim=True) + 1e-20)
    return experts, weights * cfg.get("routed_scaling_factor", 1.0)


def moe(cfg, W, p, x):
    experts, weights = route(cfg, W, p, x)
    out = swiglu(W, p + "shared_experts.", x)
    for e in range(cfg["n_routed_experts"]):
        rows, slot = (experts == e).nonzero(as_tuple=True)
        name = f"{p}experts.{e}."
        if len(rows):
            out = out.index_add(0, rows, swiglu(W, name, x[rows]) * weights[rows, slot][:, None])
        else:  # still read, so an expert no token chose is not reported unused
            for part in ("gate_proj", "up_proj", "down_proj"):
                W(name + part + ".weight")
    return out


def block(cfg, W, i, x, cos, sin):
    p, eps = f"model.layers.{i}.", cfg["rms_norm_eps"]
    deep = cfg["model_type"] == "deepseek_v3"
    attention = mla_attention if deep else dense_attention
    x = x + attention(cfg, W, p + "self_attn.", rms_norm(x, W(p + "input_layernorm.weight"), eps), cos, sin)
    h = rms_norm(x, W(p + "post_attention_layernorm.weight"), eps)
    if deep and i >= cfg["first_k_dense_replace"] and i % (cfg.get("moe_layer_freq") or 1) == 0:
        return x + moe(cfg, W, p + "mlp.", h)
    return x + swiglu(W, p + "mlp.", h, biases(cfg)[2] if not deep else False)


def forward(cfg, W, ids, mtp=True):
    """One sequence -> logits [T, V], and for deepseek_v3 with an MTP layer its logits [T-1, V]."""
    T, eps = len(ids), cfg["rms_norm_eps"]
    deep = cfg["model_type"] == "deepseek_v3"
    cos, sin = cos_sin(cfg, cfg["qk_rope_head_dim"] if deep else head_dim(cfg), T)
    embed = W("model.embed_tokens.weight")
    x = embed[torch.tensor(ids)]
    for i in range(cfg["num_hidden_layers"]):
        x = block(cfg, W, i, x, cos, sin)
    h = rms_norm(x, W("model.norm.weight"), eps)
    head = W("model.embed_tokens.weight") if cfg.get("tie_word_embeddings", False) else W("lm_head.weight")
    logits = h @ head.T
    L = cfg["num_hidden_layers"]
    if not (deep and mtp and (cfg.get("num_nextn_predict_layers") or 0) > 0):
        return logits, None
    # MTP, depth 1: row i joins the next token's embedding to the main model's final state h_i
    # (embedding first, as DeepSeek-V3's eh_proj is laid out), runs block L over rows 0..T-2 and
    # predicts token i+2 through the module's own norm and head.
    p = f"model.layers.{L}."
    e = rms_norm(embed[torch.tensor(ids[1:], dtype=torch.long)], W(p + "enorm.weight"), eps)
    y = linear(W, p + "eh_proj", torch.cat([e, rms_norm(h[:-1], W(p + "hnorm.weight"), eps)], dim=-1))
    y = block(cfg, W, L, y, cos[:T - 1], sin[:T - 1])
    return logits, rms_norm(y, W(p + "shared_head.norm.weight"), eps) @ W(p + "shared_head.head.weight").T


def run(cfg, W, seqs, mtp=True):
    outs = [forward(cfg, W, s, mtp) for s in seqs]
    logits = [o[0] for o in outs]
    return logits, ([o[1] for o in outs] if outs and outs[0][1] is not None else None)


def greedy(cfg, W, prompt, max_new, eos):
    """Greedy generation without a cache (each step runs the whole sequence again: slow, and plainly
    what greedy means). Reports the tokens and each step's margin, the best logit minus the second,
    so a disagreement can be told apart from a near-tie."""
    seq, tokens, margins = list(prompt), [], []
    for _ in range(max_new):
        z, _ = forward(cfg, W, seq, mtp=False)
        top = torch.topk(z[-1].to(torch.float64), 2)
        token = int(top.indices[0])
        tokens.append(token)
        margins.append(round7(float(top.values[0] - top.values[1])))
        seq.append(token)
        if token in eos:
            break
    return {"tokens": tokens, "margins": margins}


def parse_ids(text):
    return [[int(t) for t in part.split(",") if t.strip()] for part in text.split(";") if part.strip()]


# ----------------------------------------------------------------------------------------------
# Fixtures: a summary of the logits small enough to check in, and enough to catch a wrong number
# anywhere: each position's logsumexp and mean over the vocabulary (a change of any logit moves
# them), and single logits on a grid (every 8th position and the last, every 100th vocabulary id).
def summary(rows):
    out = {"lse": [], "mean": [], "positions": [], "vocab": None, "grid": []}
    for z in rows:
        z = z.to(torch.float64)
        V = z.shape[-1]
        vocab = list(range(7 % V, V, 100))
        out["vocab"] = vocab
        pos = sorted({t for t in range(z.shape[0]) if t % 8 == 0} | ({z.shape[0] - 1} if z.shape[0] else set()))
        out["lse"].append([round7(v) for v in torch.logsumexp(z, -1).tolist()])
        out["mean"].append([round7(v) for v in z.mean(-1).tolist()])
        out["positions"].append(pos)
        out["grid"].append([[round7(z[t, v].item()) for v in vocab] for t in pos])
    return out


def round7(x):
    return float(f"{x:.8g}")


def suite_ids(spec, case, vocab):
    if "ids" in case:
        return case["ids"]
    return draw_ids(spec["ids"]["seed"], spec["ids"]["lengths"], vocab)


def fixtures(out_dir):
    with open(os.path.join(HERE, "cases.json")) as f:
        cases = json.load(f)
    written = []
    for suite, spec in cases["suites"].items():
        doc = {"about": f"Written by `python3 tests/reference/hf_reference.py fixtures` from cases.json; read by tests/{suite}.test.ts.",
               "torch": torch.__version__, "cases": {}}
        for case in spec["cases"]:
            with tempfile.TemporaryDirectory() as tmp:
                made = make(case["family"], tmp, case["dtype"], case["shards"], case.get("seed", 0), case.get("set"))
                cfg, W = load(tmp)
            ids = suite_ids(spec, case, cfg["vocab_size"])
            logits, mtp = run(cfg, W, ids)
            entry = {k: made[k] for k in ("family", "dtype", "seed", "files", "params", "digest", "config", "generation_config", "plan")}
            entry.update(ids=ids, logits=summary(logits))
            if mtp is not None:
                entry["mtp_logits"] = summary(mtp)
            doc["cases"][case["name"]] = entry
        path = os.path.join(out_dir, f"{suite}.json")
        with open(path, "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        written.append(os.path.relpath(path))
    return written


def parser():
    ap = argparse.ArgumentParser(description="r1kit's PyTorch reference for Hugging Face checkpoints (see the docstring)")
    sub = ap.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make", help="write a tiny random checkpoint")
    m.add_argument("--family", required=True)
    m.add_argument("--out", required=True)
    m.add_argument("--dtype", default="f32", choices=sorted(NAME_DTYPE))
    m.add_argument("--shards", type=int, default=1)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--set", action="append", default=[], metavar="KEY=JSON", help="change a config field before drawing the weights")
    for name in ("logits", "compare"):
        q = sub.add_parser(name)
        q.add_argument("--model", required=True)
        q.add_argument("--ids", required=True, help="'1,2,3;4,5,6': sequences split by ';'")
        q.add_argument("--no-mtp", action="store_true", help="skip deepseek_v3's MTP logits")
    sub.choices["logits"].add_argument("--out", required=True)
    sub.choices["compare"].add_argument("--logits", required=True)
    sub.choices["compare"].add_argument("--tol", type=float, default=1e-4)
    g = sub.add_parser("greedy", help="greedy generation from one prompt: the argmax token, step by step")
    g.add_argument("--model", required=True)
    g.add_argument("--ids", required=True, help="the prompt's token ids, '1,2,3'")
    g.add_argument("--max-new-tokens", type=int, default=32)
    g.add_argument("--eos", default="", help="ids that end the generation (kept in the tokens), '7,8'")
    sub.add_parser("fixtures").add_argument("--out", default=os.path.join(HERE, "fixtures"))
    sub.add_parser("batch").add_argument("--jobs", required=True)
    return ap


def command(argv):
    """Runs one command: its JSON report and whether it passed."""
    a = parser().parse_args(argv)
    if a.cmd == "batch":
        with open(a.jobs) as f:
            reports = [command(job) for job in json.load(f)]
        return {"reports": [r for r, _ in reports]}, all(ok for _, ok in reports)
    if a.cmd == "make":
        sets = {}
        for s in a.set:
            key, _, value = s.partition("=")
            sets[key] = json.loads(value)
        made = make(a.family, a.out, a.dtype, a.shards, a.seed, sets)
        return {k: made[k] for k in ("family", "out", "dtype", "files", "tensors", "params", "digest")}, True
    if a.cmd == "fixtures":
        return {"written": fixtures(a.out)}, True
    cfg, W = load(a.model)
    if a.cmd == "greedy":
        return greedy(cfg, W, parse_ids(a.ids)[0], a.max_new_tokens, {int(t) for t in a.eos.split(",") if t.strip()}), True
    ids = parse_ids(a.ids)
    bad = [t for s in ids for t in s if not 0 <= t < cfg["vocab_size"]]
    if bad:
        raise SystemExit(f"hf_reference.py: --ids: id {bad[0]} is outside the vocabulary of {cfg['vocab_size']}")
    logits, mtp = run(cfg, W, ids, not a.no_mtp)
    unused = sorted(n for n in W.tensors if n not in W.used)
    if a.cmd == "logits":
        doc = {"ids": ids, "logits": [z.tolist() for z in logits]}
        if mtp is not None:
            doc["mtp_logits"] = [z.tolist() for z in mtp]
        with open(a.out, "w") as f:
            json.dump(doc, f)
        return {"out": a.out, "shape": [len(ids), [len(s) for s in ids], cfg["vocab_size"]],
                "mtp_logits": mtp is not None, "unused_weights": unused}, True
    with open(a.logits) as f:
        theirs = json.load(f)
    report = {"logits_compared": False, "mtp_logits_compared": False, "unused_weights": unused}
    ok = theirs.get("ids") == ids
    if not ok:
        report["error"] = "the logits file's ids are not --ids"
    for key, ours in (("logits", logits), ("mtp_logits", mtp)):
        if ours is None or not ok:
            continue
        if key not in theirs or len(theirs[key]) != len(ours):
            ok, report["error"] = False, f"{a.logits} has no {key} for {len(ours)} sequences"
            continue
        diff = 0.0
        for z, other in zip(ours, theirs[key]):
            other = torch.tensor(other, dtype=torch.float64).reshape(z.shape) if len(other) else torch.zeros(z.shape, dtype=torch.float64)
            d = (z.to(torch.float64) - other).abs()
            diff = max(diff, float(d.max()) if d.numel() else 0.0, float("inf") if d.isnan().any() else 0.0)
        name = "max_abs_diff" if key == "logits" else "mtp_logits_max_abs_diff"
        report[name], report[key + "_compared"] = diff, True
        ok = ok and diff <= a.tol
    report["ok"] = ok
    return {k: (v if not isinstance(v, float) or math.isfinite(v) else str(v)) for k, v in report.items()}, ok


def main():
    report, ok = command(sys.argv[1:])
    print(json.dumps(report))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
