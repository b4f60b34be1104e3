#!/usr/bin/env python3
"""torch_bench.py — the PyTorch side of `make bench`: the same Llama shapes and the same five
adaptation methods as `affix bench` (tools/cmd_bench.c), written in plain PyTorch (CPU, float32),
timed the same way, printed as one JSON object that `affix bench --torch FILE` merges into its table.

What is timed (identical on both sides):
  train    one optimizer step on (B,T) random tokens, every token a target: zero_grad, forward
           (logits over all B*(P+T) rows), causal-LM cross-entropy, backward, clip_grad_norm_(1.0),
           AdamW. tok/s = B*T / seconds per step (virtual tokens not counted).
  forward  the plain model's forward (logits) under inference_mode. tok/s = B*T / seconds.
  decode   batch 1, a KV cache: a 16-token prompt, then 32 tokens one at a time (greedy); tok/s over
           the 32 single-token steps.
Methods (same options as affix): prompt P=10; prefix P=10 on all layers (real tokens at P..);
llama-adapter len 10 on all layers, PEFT gate; lora r=8 alpha=8 on q,v; full.
Fastest CPU settings: F.scaled_dot_product_attention (enable_gqa), F.rms_norm, fused AdamW when
available (else foreach), torch.set_num_threads(--threads); torch.compile (inductor, regional: each
decoder block, see compile_blocks) for training and the forward with --compile on; --compile auto
times the first method of each config both ways and keeps, for that config, whichever was faster
(each result says "compiled": true/false). Decoding is always eager (a growing KV cache).
Random weights (std 0.02): timing only.
"""
import argparse
import gc
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {
    # name: C, L, NH, NKV, HS, FF, V, T, B, tied, rope (theta, llama3 factor, low, high, original)
    "stories15M": dict(C=288, L=6, NH=6, NKV=6, HS=48, FF=768, V=32000, T=256, B=4, tied=True,
                       theta=10000.0, factor=0.0),
    "stories110M": dict(C=768, L=12, NH=12, NKV=12, HS=64, FF=2048, V=32000, T=256, B=2, tied=True,
                        theta=10000.0, factor=0.0),
    "llama3.2-1B-2L": dict(C=2048, L=2, NH=32, NKV=8, HS=64, FF=8192, V=128256, T=256, B=1, tied=True,
                           theta=500000.0, factor=32.0, low=1.0, high=4.0, orig=8192),
}
ALIASES = {"15M": "stories15M", "110M": "stories110M", "1B": "llama3.2-1B-2L"}
METHODS = ["prompt", "prefix", "llama-adapter", "lora", "full"]
P_VIRTUAL = 10
LORA_R, LORA_ALPHA = 8, 8.0


def inv_freq(c):
    HS = c["HS"]
    f = 1.0 / (c["theta"] ** (torch.arange(0, HS, 2, dtype=torch.float64) / HS))
    if c["factor"] > 0:  # llama3 scaling (HF _compute_llama3_parameters)
        low_wl = c["orig"] / c["low"]
        high_wl = c["orig"] / c["high"]
        wl = 2 * math.pi / f
        scaled = torch.where(wl > low_wl, f / c["factor"], f)
        smooth = (c["orig"] / wl - c["low"]) / (c["high"] - c["low"])
        mid = (1 - smooth) * scaled / c["factor"] + smooth * scaled
        is_mid = (wl >= high_wl) & (wl <= low_wl)
        f = torch.where(is_mid, mid, scaled)
    return f


def rope_tables(c, pos):
    ang = pos.to(torch.float64)[:, None] * inv_freq(c)[None, :]
    return ang.cos().float()[:, None, :], ang.sin().float()[:, None, :]  # (T, 1, HS/2)


def rope(x, cos, sin):
    # x (B, T, H, HS) contiguous, rotate-half convention; cos/sin (T, 1, HS/2)
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)


class Lora(nn.Module):
    def __init__(self, ic, oc):
        super().__init__()
        self.A = nn.Parameter(torch.empty(LORA_R, ic).uniform_(-1 / math.sqrt(ic), 1 / math.sqrt(ic)))
        self.B = nn.Parameter(torch.zeros(oc, LORA_R))
        self.s = LORA_ALPHA / LORA_R

    def forward(self, x):
        return (x @ self.A.t()) @ self.B.t() * self.s


class Block(nn.Module):
    def __init__(self, c, method):
        super().__init__()
        C, QD, KD, FF = c["C"], c["NH"] * c["HS"], c["NKV"] * c["HS"], c["FF"]
        self.c = c
        self.ln1 = nn.Parameter(torch.ones(C))
        self.ln2 = nn.Parameter(torch.ones(C))
        self.wq, self.wk, self.wv = nn.Linear(C, QD, bias=False), nn.Linear(C, KD, bias=False), nn.Linear(C, KD, bias=False)
        self.wo = nn.Linear(QD, C, bias=False)
        self.wg, self.wu, self.wd = nn.Linear(C, FF, bias=False), nn.Linear(C, FF, bias=False), nn.Linear(FF, C, bias=False)
        for lin in (self.wq, self.wk, self.wv, self.wo, self.wg, self.wu, self.wd):
            nn.init.normal_(lin.weight, std=0.02)
        self.method = method
        if method == "lora":
            self.lq, self.lv = Lora(C, QD), Lora(C, KD)
        if method == "prefix":  # (2, NKV, P, HS): keys and values in KV space, not rotated
            self.prefix = nn.Parameter(torch.randn(2, c["NKV"], P_VIRTUAL, c["HS"]))
        if method == "llama-adapter":
            self.adaption_prompt = nn.Parameter(torch.randn(P_VIRTUAL, C))
            self.adaption_gate = nn.Parameter(torch.zeros(1))

    def forward(self, x, cos, sin, mask):
        c = self.c
        B, T, C = x.shape
        NH, NKV, HS = c["NH"], c["NKV"], c["HS"]
        h = F.rms_norm(x, (C,), self.ln1, 1e-5)
        q, k, v = self.wq(h), self.wk(h), self.wv(h)
        if self.method == "lora":
            q = q + self.lq(h)
            v = v + self.lv(h)
        q = rope(q.view(B, T, NH, HS), cos, sin).transpose(1, 2)
        k = rope(k.view(B, T, NKV, HS), cos, sin).transpose(1, 2)
        v = v.view(B, T, NKV, HS).transpose(1, 2)
        if self.method == "prefix":
            kp = self.prefix[0].unsqueeze(0).expand(B, -1, -1, -1)
            vp = self.prefix[1].unsqueeze(0).expand(B, -1, -1, -1)
            k, v = torch.cat((kp, k), 2), torch.cat((vp, v), 2)
            a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, enable_gqa=NKV != NH)
        else:
            a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=NKV != NH)
        if self.method == "llama-adapter":  # separate softmax over the adapter tokens, gated
            ka = self.wk(self.adaption_prompt).view(1, P_VIRTUAL, NKV, HS).transpose(1, 2)
            va = self.wv(self.adaption_prompt).view(1, P_VIRTUAL, NKV, HS).transpose(1, 2)
            za = F.scaled_dot_product_attention(q, ka.expand(B, -1, -1, -1), va.expand(B, -1, -1, -1),
                                                enable_gqa=NKV != NH)
            a = a + self.adaption_gate * za
        x = x + self.wo(a.transpose(1, 2).reshape(B, T, NH * HS))
        h = F.rms_norm(x, (C,), self.ln2, 1e-5)
        return x + self.wd(F.silu(self.wg(h)) * self.wu(h))


class Llama(nn.Module):
    def __init__(self, c, method):
        super().__init__()
        self.c, self.method = c, method
        self.embed = nn.Parameter(torch.randn(c["V"], c["C"]) * 0.02)
        self.layers = nn.ModuleList(Block(c, method) for _ in range(c["L"]))
        self.lnf = nn.Parameter(torch.ones(c["C"]))
        self.lm_head = None if c["tied"] else nn.Parameter(torch.randn(c["V"], c["C"]) * 0.02)
        if method == "prompt":
            self.prompt = nn.Parameter(torch.randn(P_VIRTUAL, c["C"]))
        self.P = P_VIRTUAL if method in ("prompt", "prefix") else 0
        T = c["T"]
        if method == "prefix":  # real tokens at positions P..P+T-1; prefix keys always visible
            pos = torch.arange(P_VIRTUAL, P_VIRTUAL + T)
            s = torch.arange(P_VIRTUAL + T)[None, :]
            t = torch.arange(T)[:, None]
            self.register_buffer("mask", (s < P_VIRTUAL) | (s - P_VIRTUAL <= t), persistent=False)
        else:
            pos = torch.arange(T + (P_VIRTUAL if method == "prompt" else 0))
            self.mask = None
        cos, sin = rope_tables(c, pos)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, ids):
        x = F.embedding(ids, self.embed)
        if self.method == "prompt":
            x = torch.cat((self.prompt.unsqueeze(0).expand(ids.shape[0], -1, -1), x), 1)
        for blk in self.layers:
            x = blk(x, self.cos, self.sin, self.mask)
        x = F.rms_norm(x, (self.c["C"],), self.lnf, 1e-5)
        return x @ (self.embed if self.lm_head is None else self.lm_head).t()

    def trainable(self):
        for n, p in self.named_parameters():
            leaf = n.split(".")[-1]
            if self.method == "full":
                keep = True
            elif self.method == "prompt":
                keep = n == "prompt"
            elif self.method == "prefix":
                keep = leaf == "prefix"
            elif self.method == "llama-adapter":
                keep = leaf in ("adaption_prompt", "adaption_gate")
            else:
                keep = leaf in ("A", "B")
            p.requires_grad_(keep)
        return [p for p in self.parameters() if p.requires_grad]


def make_opt(params):
    try:
        return torch.optim.AdamW(params, lr=1e-4, fused=True), "fused"
    except Exception:
        return torch.optim.AdamW(params, lr=1e-4, foreach=True), "foreach"


def compile_blocks(model, on):
    """regional compilation: each decoder block through torch.compile (inductor), compiled once and
    reused by every layer; the embedding, lm_head and loss stay eager (one large GEMM + log_softmax)"""
    if on:
        for blk in model.layers:
            blk.compile()


def timed(fn, warmup, steps):
    """best of `steps` calls after `warmup` (affix bench takes the best step too)"""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(steps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def mem_available():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def full_fits(c):
    """weights, gradients, two AdamW moments, and generous room for activations"""
    C, L, FF, V = c["C"], c["L"], c["FF"], c["V"]
    QD, KD = c["NH"] * c["HS"], c["NKV"] * c["HS"]
    params = V * C * (1 if c["tied"] else 2) + L * (2 * C * QD + 2 * C * KD + 3 * C * FF)
    acts = c["B"] * c["T"] * (L * (12 * C + 4 * FF) + 3 * V) * 4
    avail = mem_available()
    return avail == 0 or 4 * 4 * params + 2 * acts < 0.85 * avail


def bench_train(c, method, steps, warmup, compile_it):
    torch.manual_seed(0)
    model = Llama(c, method)
    params = model.trainable()
    opt, kind = make_opt(params)
    B, T, V = c["B"], c["T"], c["V"]
    ids = torch.randint(0, V, (B, T))
    tgt = ids[:, 1:].reshape(-1)
    compile_blocks(model, compile_it)
    Pv = P_VIRTUAL if method == "prompt" else 0

    def step():
        opt.zero_grad(set_to_none=True)
        logits = model(ids)
        loss = F.cross_entropy(logits[:, Pv:-1].reshape(-1, V), tgt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()

    t0 = time.perf_counter()
    step()  # the first step (compilation when compiled) is not timed
    first = time.perf_counter() - t0
    s = timed(step, max(0, warmup - 1), steps)
    return {"step_s": s, "tok_s": B * T / s, "first_step_s": first, "adamw": kind,
            "trainable": sum(p.numel() for p in params)}


def bench_forward(c, steps, warmup, compile_it):
    torch.manual_seed(0)
    model = Llama(c, "none")
    model.requires_grad_(False)
    compile_blocks(model, compile_it)
    B, T = c["B"], c["T"]
    ids = torch.randint(0, c["V"], (B, T))
    with torch.inference_mode():
        t0 = time.perf_counter()
        model(ids)
        first = time.perf_counter() - t0
        s = timed(lambda: model(ids), max(0, warmup - 1), steps)
    return {"step_s": s, "tok_s": B * T / s, "first_step_s": first}


@torch.inference_mode()
def bench_decode(c, prompt_len=16, gen=32):
    torch.manual_seed(0)
    m = Llama(c, "none")
    NH, NKV, HS, L = c["NH"], c["NKV"], c["HS"], c["L"]
    cap = prompt_len + gen
    kc = torch.zeros(L, 1, NKV, cap, HS)
    vc = torch.zeros(L, 1, NKV, cap, HS)
    cos_all, sin_all = rope_tables(c, torch.arange(cap))
    head = m.embed if m.lm_head is None else m.lm_head

    def run(ids, p0):  # ids (1, T) at positions p0..p0+T-1 -> logits of the last token
        T = ids.shape[1]
        x = F.embedding(ids, m.embed)
        cos, sin = cos_all[p0:p0 + T], sin_all[p0:p0 + T]
        for li, blk in enumerate(m.layers):
            h = F.rms_norm(x, (c["C"],), blk.ln1, 1e-5)
            q = rope(blk.wq(h).view(1, T, NH, HS), cos, sin).transpose(1, 2)
            k = rope(blk.wk(h).view(1, T, NKV, HS), cos, sin).transpose(1, 2)
            v = blk.wv(h).view(1, T, NKV, HS).transpose(1, 2)
            kc[li, :, :, p0:p0 + T] = k
            vc[li, :, :, p0:p0 + T] = v
            a = F.scaled_dot_product_attention(q, kc[li, :, :, :p0 + T], vc[li, :, :, :p0 + T],
                                               is_causal=T > 1, enable_gqa=NKV != NH)
            x = x + blk.wo(a.transpose(1, 2).reshape(1, T, NH * HS))
            h = F.rms_norm(x, (c["C"],), blk.ln2, 1e-5)
            x = x + blk.wd(F.silu(blk.wg(h)) * blk.wu(h))
        x = F.rms_norm(x[:, -1:], (c["C"],), m.lnf, 1e-5)
        return x @ head.t()

    ids = torch.randint(0, c["V"], (1, prompt_len))
    for n in (4, gen):  # the first pass (4 tokens) warms up
        tok = run(ids, 0).argmax(-1)
        t0 = time.perf_counter()
        for i in range(n):
            tok = run(tok.view(1, 1), prompt_len + i).argmax(-1)
        dt = time.perf_counter() - t0
    return {"tok_s": gen / dt}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--configs", default=",".join(CONFIGS))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--compile", choices=["off", "on", "auto"], default="off")
    ap.add_argument("--out", default="-")
    a = ap.parse_args()
    threads = a.threads or len(os.sched_getaffinity(0))
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "compile": a.compile,
           "impl": "plain PyTorch (SDPA, F.rms_norm), float32", "configs": {}}
    for name in a.configs.split(","):
        name = ALIASES.get(name, name)
        c = CONFIGS[name]
        res = {}
        use_compile = a.compile == "on"
        for i, method in enumerate(a.methods.split(",")):
            if method == "full" and not full_fits(c):
                res[method] = {"skipped": "memory"}
                continue
            try:
                if a.compile == "auto" and i == 0:  # decide once per config, on its first method
                    e = bench_train(c, method, a.steps, a.warmup, False)
                    try:
                        k = bench_train(c, method, a.steps, a.warmup, True)
                    except Exception as ex:  # no C++ compiler, an inductor bug...: eager it is
                        print(f"torch {name}: torch.compile failed ({type(ex).__name__}); eager", file=sys.stderr)
                        k = {"step_s": float("inf")}
                    use_compile = k["step_s"] < e["step_s"]
                    r = k if use_compile else e
                    r["eager_step_s"] = e["step_s"]
                    r["compiled_step_s"] = k["step_s"] if math.isfinite(k["step_s"]) else None
                else:
                    r = bench_train(c, method, a.steps, a.warmup, use_compile)
                r["compiled"] = use_compile
            except Exception as ex:  # report, keep going
                r = {"error": f"{type(ex).__name__}: {ex}"[:200]}
            res[method] = r
            gc.collect()
            print(f"torch {name} {method}: {r}", file=sys.stderr, flush=True)
        try:
            res["forward"] = bench_forward(c, a.steps, a.warmup, use_compile)
            res["forward"]["compiled"] = use_compile
        except Exception as ex:
            res["forward"] = {"error": f"{type(ex).__name__}: {ex}"[:200]}
        try:
            res["decode"] = bench_decode(c)
            res["decode"]["compiled"] = False
        except Exception as ex:
            res["decode"] = {"error": f"{type(ex).__name__}: {ex}"[:200]}
        print(f"torch {name} forward: {res['forward']}  decode: {res['decode']}", file=sys.stderr, flush=True)
        out["configs"][name] = res
    text = json.dumps(out, indent=1)
    if a.out == "-":
        print(text)
    else:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
