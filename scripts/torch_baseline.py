#!/usr/bin/env python3
"""PyTorch CPU baseline for `r1 bench train|generate --torch`: the benchmark's model (llama layout:
RMSNorm, rotary attention with grouped key/value heads, SwiGLU, tied embeddings; the sizes of
src/cli/bench/sizes.ts, passed in by the bench) timed on the same work, so r1kit's tokens/s can be read
as a ratio to PyTorch's on the same machine.

  train:     one AdamW step (lr 3e-4, betas 0.9/0.95, weight decay 0.1, gradients clipped to norm 1)
             on --batch x --seq random tokens; ms per step and tokens/s (batch * seq per step)
  generate:  --gen-batch prompts of --prompt-len random tokens, --new-tokens sampled at temperature 1
             with a key/value cache; ms per run and tokens/s (new tokens of the batch per run)

Warm-up steps are not timed. With --threads 0 it tries 1 thread and then every core (PyTorch's
intra-op threads) and reports the faster, as the bench reports its best line.

Set-up: Debian's python3-torch, and libopenblas0-pthread (without OpenBLAS PyTorch's CPU matmuls are
several times slower). Prints one JSON line.
"""
import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F


def options():
    p = argparse.ArgumentParser(description="PyTorch baseline for r1 bench (see the docstring)")
    p.add_argument("--mode", choices=["train", "generate"], default="train")
    for name, default in (("vocab", 512), ("d-model", 128), ("layers", 4), ("heads", 4), ("kv-heads", 2), ("ffn", 352),
                          ("seq", 128), ("batch", 16), ("gen-batch", 64), ("prompt-len", 16), ("new-tokens", 112),
                          ("steps", 10), ("threads", 0)):
        p.add_argument("--" + name, type=int, default=default)
    p.add_argument("--rope-theta", type=float, default=10000.0)
    return p.parse_args()


class RMSNorm(torch.nn.Module):  # torch 1.13 has no torch.nn.RMSNorm; computed as r1kit and transformers do
    def __init__(self, n, eps=1e-6):
        super().__init__()
        self.weight, self.eps = torch.nn.Parameter(torch.ones(n)), eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


class Block(torch.nn.Module):
    def __init__(self, o):
        super().__init__()
        C, self.H, self.KV = o.d_model, o.heads, o.kv_heads
        self.D = C // o.heads
        self.attn_norm, self.mlp_norm = RMSNorm(C), RMSNorm(C)
        self.qkv = torch.nn.Linear(C, (self.H + 2 * self.KV) * self.D, bias=False)
        self.out = torch.nn.Linear(self.H * self.D, C, bias=False)
        self.gate_up = torch.nn.Linear(C, 2 * o.ffn, bias=False)
        self.down = torch.nn.Linear(o.ffn, C, bias=False)

    def forward(self, x, cos, sin, cache):
        B, T, _ = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).split([self.H * self.D, self.KV * self.D, self.KV * self.D], dim=-1)
        q = rotate(q.view(B, T, self.H, self.D).transpose(1, 2), cos, sin)
        k = rotate(k.view(B, T, self.KV, self.D).transpose(1, 2), cos, sin)
        v = v.view(B, T, self.KV, self.D).transpose(1, 2)
        if cache is not None:  # generation: append to this layer's keys and values
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], dim=2), torch.cat([cache["v"], v], dim=2)
            cache["k"], cache["v"] = k, v
        k, v = k.repeat_interleave(self.H // self.KV, dim=1), v.repeat_interleave(self.H // self.KV, dim=1)
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.D)
        if T > 1:  # the prompt (the cache starts empty): causal; one new token sees every cached position
            scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
        y = torch.softmax(scores, dim=-1) @ v
        x = x + self.out(y.transpose(1, 2).reshape(B, T, -1))
        gate, up = self.gate_up(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.down(F.silu(gate) * up)


def rotate(x, cos, sin):  # rotate-half rotary embedding; x [B, H, T, D]
    half = x.shape[-1] // 2
    return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin


class Model(torch.nn.Module):
    def __init__(self, o):
        super().__init__()
        self.embed = torch.nn.Embedding(o.vocab, o.d_model)
        torch.nn.init.normal_(self.embed.weight, std=0.02)
        self.blocks = torch.nn.ModuleList(Block(o) for _ in range(o.layers))
        self.norm = RMSNorm(o.d_model)
        D = o.d_model // o.heads
        self.inv_freq = 1.0 / o.rope_theta ** (torch.arange(0, D, 2).float() / D)

    def forward(self, ids, start=0, caches=None):
        T = ids.shape[1]
        angles = torch.arange(start, start + T).float()[:, None] * self.inv_freq[None, :]
        angles = torch.cat([angles, angles], dim=-1)
        cos, sin = angles.cos(), angles.sin()
        x = self.embed(ids)
        for i, b in enumerate(self.blocks):
            x = b(x, cos, sin, None if caches is None else caches[i])
        return self.norm(x) @ self.embed.weight.T  # tied head


def time_train(o, model):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, o.vocab, (o.batch, o.seq), generator=g)
    targets = torch.randint(0, o.vocab, (o.batch * o.seq,), generator=g)

    def step():
        loss = F.cross_entropy(model(ids).reshape(-1, o.vocab), targets)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    for _ in range(2):
        step()
    t0 = time.perf_counter()
    for _ in range(o.steps):
        step()
    ms = (time.perf_counter() - t0) * 1000 / o.steps
    return dict(ms_per_step=round(ms, 1), tokens_per_s=round(o.batch * o.seq / ms * 1000))


@torch.no_grad()
def time_generate(o, model):
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, o.vocab, (o.gen_batch, o.prompt_len), generator=g)

    def run():
        caches = [{} for _ in range(o.layers)]
        logits = model(prompts, 0, caches)[:, -1]
        for t in range(o.new_tokens):
            token = torch.multinomial(torch.softmax(logits, dim=-1), 1, generator=g)
            logits = model(token, o.prompt_len + t, caches)[:, -1]

    run()
    runs = max(1, o.steps // 5)
    t0 = time.perf_counter()
    for _ in range(runs):
        run()
    ms = (time.perf_counter() - t0) * 1000 / runs
    return dict(ms_per_run=round(ms, 1), tokens_per_s=round(o.gen_batch * o.new_tokens / ms * 1000))


def measure(o, threads):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = Model(o)
    line = dict(mode=o.mode, threads=threads, n_params=sum(p.numel() for p in model.parameters()), torch=torch.__version__)
    line.update(time_train(o, model) if o.mode == "train" else time_generate(o, model))
    return line


def main():
    o = options()
    if o.d_model % o.heads or o.heads % o.kv_heads or (o.d_model // o.heads) % 2:
        raise SystemExit(f"torch_baseline.py: --d-model {o.d_model}, --heads {o.heads}, --kv-heads {o.kv_heads} do not fit "
                         "(heads must divide d-model into an even head size, kv-heads must divide heads)")
    cores = os.cpu_count() or 1
    tried = [measure(o, t) for t in ([1, cores] if o.threads == 0 and cores > 1 else [o.threads or 1])]
    best = max(tried, key=lambda r: r["tokens_per_s"])
    best["tried"] = {r["threads"]: r["tokens_per_s"] for r in tried}
    print(json.dumps(best))


if __name__ == "__main__":
    main()
