"""A small Llama in PyTorch, float64, written to be read.

This is the oracle of affix: the C code is tested against tensors this file produces
(see golden/README.md for the contract). It follows the semantics of Hugging Face
`LlamaForCausalLM` with eager attention (docs: ../../../shared/docs/methods.md section 1),
with two deliberate differences that only affect rounding or unobservable rows:

  * everything runs in float64, including the RoPE cos/sin and the inverse frequencies
    (HF computes those, the RMSNorm and the attention softmax in float32);
  * a query row that sees no key at all (a left-pad token) gets attention probabilities 0
    and attention output 0 (HF's output there depends on the attention implementation).

The model is functional: parameters live in a dict keyed by the HF weight names, and
autograd provides the backward. `forward(..., acts=dict)` records every intermediate
activation under the names of golden/README.md.

Adaptation methods (golden/README.md "Adaptation-method cases", methods.md sections 2-5):
`forward(..., methods=[...], adapter={...})` adds soft prompts, prefixes (all layers or a
subset, optional Linear-tanh-Linear reparameterisation, positions offset by P or not),
Llama-Adapter (PEFT scalar gate or official per-head tanh gate) and LoRA, alone or composed.

Notation: B batch, T tokens, C hidden, V vocab, NH query heads, NKV kv heads,
HS head_dim, FF intermediate size, L layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

DTYPE = torch.float64
IGNORE_INDEX = -100


# ---------------------------------------------------------------------------------------------
# Configuration
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LlamaConfig:
    """The fields of an HF Llama config.json that the math depends on."""
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: dict | None          # None or {"rope_type": "llama3", "factor", ...}
    tie_word_embeddings: bool
    max_position_embeddings: int

    # The keys of config.json, in the order golden/README.md lists them.
    JSON_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                 "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps",
                 "rope_theta", "rope_scaling", "tie_word_embeddings", "max_position_embeddings")

    def to_json_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.JSON_KEYS}

    @classmethod
    def from_json_dict(cls, d: dict) -> "LlamaConfig":
        return cls(**{k: d[k] for k in cls.JSON_KEYS})

    @property
    def n_rep(self) -> int:
        """How many query heads share one kv head (GQA group size)."""
        assert self.num_attention_heads % self.num_key_value_heads == 0
        return self.num_attention_heads // self.num_key_value_heads


# ---------------------------------------------------------------------------------------------
# Parameters
# ---------------------------------------------------------------------------------------------

def weight_shapes(cfg: LlamaConfig) -> dict[str, tuple[int, ...]]:
    """HF parameter names -> shapes ([out, in] for linear layers), in a fixed order.

    With tied embeddings there is no separate `lm_head.weight`: the lm_head IS the embedding.
    """
    C, FF, V = cfg.hidden_size, cfg.intermediate_size, cfg.vocab_size
    q_dim = cfg.num_attention_heads * cfg.head_dim
    kv_dim = cfg.num_key_value_heads * cfg.head_dim
    shapes = {"model.embed_tokens.weight": (V, C)}
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        shapes[p + "input_layernorm.weight"] = (C,)
        shapes[p + "self_attn.q_proj.weight"] = (q_dim, C)
        shapes[p + "self_attn.k_proj.weight"] = (kv_dim, C)
        shapes[p + "self_attn.v_proj.weight"] = (kv_dim, C)
        shapes[p + "self_attn.o_proj.weight"] = (C, q_dim)
        shapes[p + "post_attention_layernorm.weight"] = (C,)
        shapes[p + "mlp.gate_proj.weight"] = (FF, C)
        shapes[p + "mlp.up_proj.weight"] = (FF, C)
        shapes[p + "mlp.down_proj.weight"] = (C, FF)
    shapes["model.norm.weight"] = (C,)
    if not cfg.tie_word_embeddings:
        shapes["lm_head.weight"] = (V, C)
    return shapes


def init_params(cfg: LlamaConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random parameters drawn in float32 from `gen`, then widened to float64.

    embedding: N(0,1) untied, N(0,1)/sqrt(C) tied (the tied embedding is also the lm_head:
    N(0,1) rows would scale the logits by sqrt(C)); linear [out,in]: N(0,1)/sqrt(in) (keeps
    activations O(1)); RMSNorm weights: 1 + 0.1*N(0,1). Every value is exactly representable
    in fp32 (the scaling is done in fp32).
    """
    params = {}
    for name, shape in weight_shapes(cfg).items():
        z = torch.randn(shape, generator=gen, dtype=torch.float32)
        if name.endswith("norm.weight"):
            w = 1.0 + 0.1 * z
        elif name == "model.embed_tokens.weight":
            w = z / math.sqrt(shape[1]) if cfg.tie_word_embeddings else z
        else:
            w = z / math.sqrt(shape[1])
        params[name] = w.to(DTYPE)   # fp32 -> fp64 is exact
    return params


def lm_head_weight(cfg: LlamaConfig, params: dict[str, torch.Tensor]) -> torch.Tensor:
    """[V, C]; with tied embeddings the same tensor as the embedding (gradients add up)."""
    return params["model.embed_tokens.weight" if cfg.tie_word_embeddings else "lm_head.weight"]


# ---------------------------------------------------------------------------------------------
# RoPE (HF "rotate_half" convention: pairs (j, j + HS/2) rotate with frequency inv_freq[j])
# ---------------------------------------------------------------------------------------------

def rope_base_inv_freq(cfg: LlamaConfig) -> torch.Tensor:
    """[HS/2] float64: inv_freq[j] = 1 / theta^(2j/HS)."""
    HS = cfg.head_dim
    two_j = torch.arange(0, HS, 2, dtype=DTYPE)
    return 1.0 / (cfg.rope_theta ** (two_j / HS))


def llama3_bands(cfg: LlamaConfig) -> list[str]:
    """For "llama3" scaling: which band each frequency falls in ('high', 'blend', 'low').

    wavelength wl = 2*pi/inv_freq; hi_wl = orig/high_freq_factor; lo_wl = orig/low_freq_factor.
    wl < hi_wl -> 'high' (unchanged); wl > lo_wl -> 'low' (divided by factor); else 'blend'.
    """
    rs = cfg.rope_scaling
    orig = rs["original_max_position_embeddings"]
    hi_wl = orig / rs["high_freq_factor"]
    lo_wl = orig / rs["low_freq_factor"]
    bands = []
    for f in rope_base_inv_freq(cfg).tolist():
        wl = 2.0 * math.pi / f
        bands.append("high" if wl < hi_wl else "low" if wl > lo_wl else "blend")
    return bands


def rope_inv_freq(cfg: LlamaConfig) -> torch.Tensor:
    """[HS/2] float64 inverse frequencies, with the optional "llama3" rescaling applied once."""
    inv_freq = rope_base_inv_freq(cfg)
    rs = cfg.rope_scaling
    if rs is None:
        return inv_freq
    if rs["rope_type"] != "llama3":
        raise NotImplementedError(f"rope_type {rs['rope_type']!r}")
    factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
    orig = rs["original_max_position_embeddings"]
    out = []
    for f, band in zip(inv_freq.tolist(), llama3_bands(cfg)):
        if band == "high":
            out.append(f)
        elif band == "low":
            out.append(f / factor)
        else:
            wl = 2.0 * math.pi / f
            s = (orig / wl - lo) / (hi - lo)          # 0 at the low edge, 1 at the high edge
            out.append((1.0 - s) * f / factor + s * f)
    return torch.tensor(out, dtype=DTYPE)


def rope_cos_sin(cfg: LlamaConfig, T: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of pos * inv_freq for positions offset..offset+T-1: each [T, HS/2], float64."""
    pos = torch.arange(offset, offset + T, dtype=DTYPE)
    angles = pos[:, None] * rope_inv_freq(cfg)[None, :]     # [T, HS/2]
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x: [B, T, nheads, HS]; cos/sin: [T, HS/2]. Rotate-half convention:
    out1 = x1*cos - x2*sin, out2 = x2*cos + x1*sin, with x1 = x[..., :HS/2], x2 = x[..., HS/2:].
    """
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    c = cos[None, :, None, :]                                # [1, T, 1, HS/2]
    s = sin[None, :, None, :]
    return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)


# ---------------------------------------------------------------------------------------------
# Building blocks
# ---------------------------------------------------------------------------------------------

def rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """x: [..., C]; w: [C]. x * rsqrt(mean(x^2) + eps) * w."""
    r = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (x * r) * w


def linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """nn.Linear without bias: x [..., in], w [out, in] -> [..., out]."""
    return x @ w.T


def visibility(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, T] 0/1 padding mask -> [B, 1, T(query), T(key)] bool.

    Key j is visible to query i iff j <= i (causal) and attention_mask[b, j] == 1.
    """
    T = attention_mask.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()                  # [T, T]
    keep_key = attention_mask.bool()[:, None, None, :]                   # [B, 1, 1, T]
    return causal[None, None, :, :] & keep_key


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, vis: torch.Tensor,
              k_pre: torch.Tensor | None = None, v_pre: torch.Tensor | None = None):
    """Scaled dot-product attention with GQA, optionally behind a prefix of P keys/values.

    q: [B, T, NH, HS]; k, v: [B, T, NKV, HS]; k_pre, v_pre: None or [P, NKV, HS] (shared by the
    batch, put in front of the keys/values, not rotated); vis: [B, 1, T, S] bool, S = P + T.
    Returns (P [B, NH, T, S], out [B, T, NH*HS]).
    """
    B, T, NH, HS = q.shape
    if k_pre is not None:
        k = torch.cat((k_pre[None].expand(B, -1, -1, -1), k), dim=1)     # [B, S, NKV, HS]
        v = torch.cat((v_pre[None].expand(B, -1, -1, -1), v), dim=1)
    n_rep = NH // k.shape[2]
    # kv head g serves query heads g*n_rep .. g*n_rep + n_rep - 1
    k = k.repeat_interleave(n_rep, dim=2)                                # [B, S, NH, HS]
    v = v.repeat_interleave(n_rep, dim=2)
    qh, kh, vh = (t.transpose(1, 2) for t in (q, k, v))                 # [B, NH, *, HS]
    scores = (qh @ kh.transpose(-1, -2)) / math.sqrt(HS)                # [B, NH, T, S]
    scores = scores.masked_fill(~vis, torch.finfo(scores.dtype).min)
    # Softmax, then zero the masked entries. For a row with visible keys this changes nothing
    # (their weights are exp(min - max) = 0 already); a row with NO visible key gets all zeros
    # (convention) instead of a uniform row. Gradient-safe: no inf or nan anywhere.
    P = torch.softmax(scores, dim=-1) * vis.to(scores.dtype)
    out = (P @ vh).transpose(1, 2).reshape(B, T, NH * HS)               # heads concatenated
    return P, out


def silu(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


# ---------------------------------------------------------------------------------------------
# Adaptation methods (golden/README.md "Adaptation-method cases"; methods.md sections 2-5)
# ---------------------------------------------------------------------------------------------
#
# A method list is a list of dicts, each {"method": kind, ...fields of the contract}. Trainable
# tensors live in a separate dict `adapter`, keyed by the contract's <name> (the golden file
# stores them as "adapter.<name>").

METHOD_KINDS = ("prompt", "prefix", "llama_adapter", "lora")
# LoRA target -> module path inside a layer, in the canonical order of the contract.
LORA_TARGETS = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
                "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
                "down": "mlp.down_proj"}


def methods_by_kind(cfg: LlamaConfig, methods) -> dict[str, dict]:
    """Validate a method list; -> {kind: method dict}. Each kind may appear at most once."""
    L = cfg.num_hidden_layers
    out = {}
    for m in methods or ():
        kind = m["method"]
        if kind not in METHOD_KINDS:
            raise ValueError(f"unknown method {kind!r}")
        if kind in out:
            raise ValueError(f"method {kind!r} given twice")
        if kind == "prompt":
            assert m["num_virtual_tokens"] >= 1
        elif kind == "prefix":
            layers = m["layers"]
            assert m["num_virtual_tokens"] >= 1 and len(layers) >= 1
            assert list(layers) == sorted(set(layers)) and 0 <= layers[0] and layers[-1] < L, layers
            assert isinstance(m["prefix_projection"], bool) and m["encoder_hidden_size"] >= 1
            assert m["position_offset"] in ("prefix", "zero")
        elif kind == "llama_adapter":
            assert m["adapter_len"] >= 1 and 1 <= m["adapter_layers"] <= L
            assert m["gate"] in ("peft", "official")
        elif kind == "lora":
            assert m["r"] >= 1 and isinstance(m["use_rslora"], bool)
            assert m["targets"] and set(m["targets"]) <= set(LORA_TARGETS), m["targets"]
        out[kind] = m
    return out


def adapter_layers_of(cfg: LlamaConfig, m: dict) -> list[int]:
    """The layers of a llama_adapter method: the top La layers L-La .. L-1."""
    L = cfg.num_hidden_layers
    return list(range(L - m["adapter_layers"], L))


def lora_scaling(m: dict) -> float:
    """alpha / r, or alpha / sqrt(r) with use_rslora (python float, as PEFT computes it)."""
    return m["alpha"] / math.sqrt(m["r"]) if m["use_rslora"] else m["alpha"] / m["r"]


def adapter_shapes(cfg: LlamaConfig, methods) -> dict[str, tuple[int, ...]]:
    """Trainable tensor <name> -> shape, in a fixed order (the order in which they are drawn)."""
    C, NH = cfg.hidden_size, cfg.num_attention_heads
    KV = cfg.num_key_value_heads * cfg.head_dim
    base = weight_shapes(cfg)
    shapes = {}
    for kind, m in methods_by_kind(cfg, methods).items():
        if kind == "prompt":
            shapes["prompt_embeddings"] = (m["num_virtual_tokens"], C)
        elif kind == "prefix":
            P, n, E = m["num_virtual_tokens"], len(m["layers"]), m["encoder_hidden_size"]
            if m["prefix_projection"]:
                shapes["prefix.embedding.weight"] = (P, KV)
                shapes["prefix.transform.0.weight"] = (E, KV)
                shapes["prefix.transform.0.bias"] = (E,)
                shapes["prefix.transform.2.weight"] = (n * 2 * KV, E)
                shapes["prefix.transform.2.bias"] = (n * 2 * KV,)
            else:
                shapes["prefix.embedding.weight"] = (P, n * 2 * KV)
        elif kind == "llama_adapter":
            for l in adapter_layers_of(cfg, m):
                shapes[f"layers.{l}.adaption_prompt"] = (m["adapter_len"], C)
                shapes[f"layers.{l}.adaption_gate"] = (1,) if m["gate"] == "peft" else (NH,)
        elif kind == "lora":
            for l in range(cfg.num_hidden_layers):
                for t, mod in LORA_TARGETS.items():
                    if t in m["targets"]:
                        out_f, in_f = base[f"model.layers.{l}.{mod}.weight"]
                        shapes[f"model.layers.{l}.{mod}.lora_A.weight"] = (m["r"], in_f)
                        shapes[f"model.layers.{l}.{mod}.lora_B.weight"] = (out_f, m["r"])
    return shapes


def method_labels(cfg: LlamaConfig, methods, labels: torch.Tensor) -> torch.Tensor:
    """The labels the loss sees: prompt tuning prepends P labels -100 (PEFT)."""
    m = methods_by_kind(cfg, methods).get("prompt")
    if m is None:
        return labels
    pad = torch.full((labels.shape[0], m["num_virtual_tokens"]), IGNORE_INDEX, dtype=labels.dtype)
    return torch.cat((pad, labels), dim=1)


class _Methods:
    """What the methods add to one forward pass, prepared once per forward."""

    def __init__(self, cfg: LlamaConfig, methods, adapter: dict, B: int, vis: torch.Tensor,
                 acts: dict | None):
        NKV, HS = cfg.num_key_value_heads, cfg.head_dim
        KV = NKV * HS
        self.m = methods_by_kind(cfg, methods)
        self.adapter = adapter
        self.prefix_kv = {}          # layer -> (k_pre [P, NKV, HS], v_pre [P, NKV, HS])
        self.prefix_vis = None       # [B, 1, T, P + T]
        self.adapt = {}              # layer -> (adaption prompt [P, C], gate [1, NH or 1, 1, 1])
        self.lora = None             # (scaling, {module paths})

        pm = self.m.get("prefix")
        if pm is not None:
            P = pm["num_virtual_tokens"]
            emb = adapter["prefix.embedding.weight"]
            if pm["prefix_projection"]:                               # Linear - tanh - Linear
                h = torch.tanh(linear(emb, adapter["prefix.transform.0.weight"])
                               + adapter["prefix.transform.0.bias"])
                table = linear(h, adapter["prefix.transform.2.weight"]) + adapter["prefix.transform.2.bias"]
            else:
                table = emb                                           # [P, n*2*KV]
            # token p's row, flat index ((i*2 + s)*NKV + g)*HS + e  (s = 0 key, 1 value)
            for i, l in enumerate(pm["layers"]):
                k_pre = table[:, (2 * i) * KV:(2 * i + 1) * KV]
                v_pre = table[:, (2 * i + 1) * KV:(2 * i + 2) * KV]
                self.prefix_kv[l] = (k_pre.reshape(P, NKV, HS), v_pre.reshape(P, NKV, HS))
                if acts is not None:
                    acts[f"act.layers.{l}.prefix_k"] = k_pre
                    acts[f"act.layers.{l}.prefix_v"] = v_pre
            T = vis.shape[-1]
            # every query sees the P prefix keys, then its usual causal/padding pattern
            self.prefix_vis = torch.cat((torch.ones(B, 1, T, P, dtype=torch.bool), vis), dim=-1)
            if acts is not None:
                acts["act.prefix_table"] = table

        am = self.m.get("llama_adapter")
        if am is not None:
            for l in adapter_layers_of(cfg, am):
                g = adapter[f"layers.{l}.adaption_gate"]
                g = g if am["gate"] == "peft" else torch.tanh(g)          # raw scalar / tanh per head
                self.adapt[l] = (adapter[f"layers.{l}.adaption_prompt"], g.view(1, -1, 1, 1))

        lm = self.m.get("lora")
        if lm is not None:
            self.lora = (lora_scaling(lm), {LORA_TARGETS[t] for t in lm["targets"]})

    def position_offset(self) -> int:
        pm = self.m.get("prefix")
        return pm["num_virtual_tokens"] if pm is not None and pm["position_offset"] == "prefix" else 0

    def lora_term(self, l: int, mod: str, x: torch.Tensor):
        """s * (x A^T) B^T for a LoRA-wrapped module, else None."""
        if self.lora is None or mod not in self.lora[1]:
            return None
        A = self.adapter[f"model.layers.{l}.{mod}.lora_A.weight"]
        Bm = self.adapter[f"model.layers.{l}.{mod}.lora_B.weight"]
        return linear(linear(x, A), Bm) * self.lora[0]


def proj(params: dict, ext: _Methods | None, l: int, mod: str, x: torch.Tensor) -> torch.Tensor:
    """The linear module `mod` of layer l (e.g. "self_attn.q_proj"), LoRA included if wrapped."""
    y = linear(x, params[f"model.layers.{l}.{mod}.weight"])
    if ext is not None:
        d = ext.lora_term(l, mod, x)
        if d is not None:
            y = y + d
    return y


def adapter_branch(cfg: LlamaConfig, params: dict, ext: _Methods, l: int,
                   q_rope: torch.Tensor):
    """Llama-Adapter: -> (probabilities [B, NH, T, P], z [B, T, NH*HS]) for layer l.

    K_a = A Wk^T, V_a = A Wv^T ([P, KV], no RoPE; kv head g serves query heads g*rep..);
    S_a = RoPE(q) K_a^T / sqrt(HS), softmax over the P adapter tokens (no mask);
    z = gate_h * S_a-probabilities @ V_a, added to the attention output before o_proj.
    """
    A, g = ext.adapt[l]
    B, T, NH, HS = q_rope.shape
    NKV = cfg.num_key_value_heads
    P = A.shape[0]
    ka = proj(params, ext, l, "self_attn.k_proj", A).view(P, NKV, HS)
    va = proj(params, ext, l, "self_attn.v_proj", A).view(P, NKV, HS)
    ka = ka.repeat_interleave(NH // NKV, dim=1).transpose(0, 1)           # [NH, P, HS]
    va = va.repeat_interleave(NH // NKV, dim=1).transpose(0, 1)
    scores = (q_rope.transpose(1, 2) @ ka.transpose(-1, -2)) / math.sqrt(HS)   # [B, NH, T, P]
    pa = torch.softmax(scores, dim=-1)
    z = ((g * pa) @ va).transpose(1, 2).reshape(B, T, NH * HS)
    return pa, z


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

def decoder_layer(cfg, params, l, x, cos, sin, vis, acts, ext: _Methods | None = None):
    """One pre-norm block. x: [B, T, C] -> [B, T, C]. Records act.layers.{l}.* into acts.

    `ext` (None for the plain model) adds the adaptation methods of this layer.
    """
    p = f"model.layers.{l}."
    a = f"act.layers.{l}."
    B, T, _ = x.shape
    NH, NKV, HS = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim

    ln1 = rms_norm(x, params[p + "input_layernorm.weight"], cfg.rms_norm_eps)    # [B, T, C]
    q = proj(params, ext, l, "self_attn.q_proj", ln1)                           # [B, T, NH*HS]
    k = proj(params, ext, l, "self_attn.k_proj", ln1)                           # [B, T, NKV*HS]
    v = proj(params, ext, l, "self_attn.v_proj", ln1)                           # [B, T, NKV*HS]
    q_rope = apply_rope(q.view(B, T, NH, HS), cos, sin)                          # [B, T, NH, HS]
    k_rope = apply_rope(k.view(B, T, NKV, HS), cos, sin)                         # [B, T, NKV, HS]
    if ext is not None and l in ext.prefix_kv:
        k_pre, v_pre = ext.prefix_kv[l]
        att, att_out = attention(q_rope, k_rope, v.view(B, T, NKV, HS), ext.prefix_vis,
                                 k_pre, v_pre)                                  # att [B,NH,T,P+T]
    else:
        att, att_out = attention(q_rope, k_rope, v.view(B, T, NKV, HS), vis)
    if ext is not None and l in ext.adapt:
        adapter_att, adapter_z = adapter_branch(cfg, params, ext, l, q_rope)
        att_out = att_out + adapter_z
        if acts is not None:
            acts.update({a + "adapter_att": adapter_att, a + "adapter_z": adapter_z})
    o = proj(params, ext, l, "self_attn.o_proj", att_out)                       # [B, T, C]
    res1 = x + o
    ln2 = rms_norm(res1, params[p + "post_attention_layernorm.weight"], cfg.rms_norm_eps)
    gate = proj(params, ext, l, "mlp.gate_proj", ln2)                           # [B, T, FF]
    up = proj(params, ext, l, "mlp.up_proj", ln2)                               # [B, T, FF]
    swiglu = silu(gate) * up
    mlp = proj(params, ext, l, "mlp.down_proj", swiglu)                         # [B, T, C]
    out = res1 + mlp

    if acts is not None:
        acts.update({
            a + "ln1": ln1, a + "q": q, a + "k": k, a + "v": v,
            a + "q_rope": q_rope.reshape(B, T, NH * HS),
            a + "k_rope": k_rope.reshape(B, T, NKV * HS),
            a + "att": att, a + "att_out": att_out, a + "o": o, a + "res1": res1,
            a + "ln2": ln2, a + "gate": gate, a + "up": up, a + "swiglu": swiglu,
            a + "mlp": mlp, a + "out": out,
        })
    return out


def forward(cfg: LlamaConfig, params: dict, input_ids: torch.Tensor,
            attention_mask: torch.Tensor | None = None, acts: dict | None = None,
            methods=(), adapter: dict | None = None) -> torch.Tensor:
    """input_ids, attention_mask: [B, T] int64 -> logits [B, T', V] float64.

    Plain model (no methods): T' = T and positions are 0..T-1 for every row, whatever the
    padding (as HF forward does when position_ids is not given).
    `methods` (a list of method dicts) with their trainable tensors in `adapter`:
      prompt  T' = P + T: the prompt embeddings go first, mask' = [1]*P + mask, positions 0..T'-1;
      prefix  prefix keys/values in front of the listed layers' keys/values; positions of the
              real tokens P..P+T-1 ("prefix") or 0..T-1 ("zero");
      llama_adapter, lora  see adapter_branch / proj.
    If `acts` is a dict, every activation is stored into it.
    """
    B, T = input_ids.shape
    if attention_mask is None:
        attention_mask = torch.ones_like(input_ids)
    x = params["model.embed_tokens.weight"][input_ids]                # [B, T, C]
    m = methods_by_kind(cfg, methods)
    if "prompt" in m:
        P = m["prompt"]["num_virtual_tokens"]
        x = torch.cat((adapter["prompt_embeddings"][None].expand(B, -1, -1), x), dim=1)
        attention_mask = torch.cat((torch.ones(B, P, dtype=attention_mask.dtype), attention_mask), dim=1)
        T = T + P
    vis = visibility(attention_mask)                                  # [B, 1, T, T]
    ext = _Methods(cfg, methods, adapter, B, vis, acts) if m else None
    cos, sin = rope_cos_sin(cfg, T, ext.position_offset() if ext else 0)   # [T, HS/2] each

    if acts is not None:
        acts.update({"act.rope_cos": cos, "act.rope_sin": sin, "act.embed": x})
    for l in range(cfg.num_hidden_layers):
        x = decoder_layer(cfg, params, l, x, cos, sin, vis, acts, ext)
    h = rms_norm(x, params["model.norm.weight"], cfg.rms_norm_eps)   # [B, T, C]
    logits = linear(h, lm_head_weight(cfg, params))                   # [B, T, V]
    if acts is not None:
        acts.update({"act.norm": h, "act.logits": logits})
    return logits


# ---------------------------------------------------------------------------------------------
# Loss (HF ForCausalLMLoss) and the Trainer's num_items_in_batch variant
# ---------------------------------------------------------------------------------------------

def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
    """logits [B, T, V], labels [B, T] -> dict of 0-dim tensors.

    Row t predicts labels[t+1] (the last row predicts nothing); labels == -100 are ignored.
      loss           = mean CE over kept targets          (model(labels=...) in HF)
      loss_sum       = sum  CE over kept targets
      num_items      = count(labels != -100) on the UNshifted labels (HF Trainer's count)
      loss_num_items = loss_sum / num_items                (model(..., num_items_in_batch=...))
    """
    target = labels[:, 1:]                                            # [B, T-1]
    logp = torch.log_softmax(logits[:, :-1, :], dim=-1)               # [B, T-1, V]
    kept = target != IGNORE_INDEX
    safe_target = target.masked_fill(~kept, 0)                        # any valid index
    nll = -logp.gather(-1, safe_target[..., None]).squeeze(-1)        # [B, T-1]
    nll = nll * kept.to(nll.dtype)
    loss_sum = nll.sum()
    num_kept = kept.sum()
    num_items = (labels != IGNORE_INDEX).sum()
    return {
        "loss": loss_sum / num_kept,
        "loss_sum": loss_sum,
        "num_items": num_items,
        "loss_num_items": loss_sum / num_items,
    }


# ---------------------------------------------------------------------------------------------
# Greedy generation (full recompute, no cache, no padding)
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def greedy_generate(cfg: LlamaConfig, params: dict, prompt: torch.Tensor, n_new: int,
                    methods=(), adapter: dict | None = None) -> torch.Tensor:
    """prompt: [n] int64 -> [n_new] int64: argmax of the last row, appended, repeated
    (with the methods applied, e.g. the virtual tokens / prefix in front every time)."""
    ids = prompt.clone()
    new = []
    for _ in range(n_new):
        logits = forward(cfg, params, ids[None, :], methods=methods, adapter=adapter)  # [1, n', V]
        nxt = int(logits[0, -1].argmax())
        new.append(nxt)
        ids = torch.cat((ids, torch.tensor([nxt], dtype=ids.dtype)))
    return torch.tensor(new, dtype=torch.int64)
