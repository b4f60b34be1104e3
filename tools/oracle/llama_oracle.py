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

Gemma 3 (model_type "gemma3_text", golden/README.md "Gemma 3"): the same functions with the
Gemma branches: embedding * sqrt(C), RMSNorm * (1 + w), q_norm/k_norm before RoPE, the sandwich
block (post-attention and post-feedforward norms on the branch outputs), gelu_tanh, the scale
1/sqrt(query_pre_attn_scalar), sliding-window layers with their own RoPE theta, tied lm_head.

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
    # Gemma 3 text decoder (model_type "gemma3_text"); unused (None) for Llama.
    model_type: str = "llama"
    query_pre_attn_scalar: float | None = None     # attention scale 1/sqrt(query_pre_attn_scalar)
    sliding_window: int | None = None              # W: sliding layers see t - u < W
    layer_types: tuple | None = None               # per layer "sliding_attention" / "full_attention"
    rope_local_base_freq: float | None = None      # RoPE theta of the sliding layers
    hidden_activation: str | None = None           # "gelu_pytorch_tanh"

    # The keys of config.json, in the order golden/README.md lists them.
    JSON_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                 "num_attention_heads", "num_key_value_heads", "head_dim", "rms_norm_eps",
                 "rope_theta", "rope_scaling", "tie_word_embeddings", "max_position_embeddings")
    # Appended after JSON_KEYS for Gemma 3 only (a Llama config.json has none of them).
    GEMMA_JSON_KEYS = ("model_type", "query_pre_attn_scalar", "sliding_window", "layer_types",
                       "rope_local_base_freq", "hidden_activation")

    @property
    def is_gemma(self) -> bool:
        return self.model_type == "gemma3_text"

    def to_json_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.JSON_KEYS}
        if self.is_gemma:
            d.update({k: getattr(self, k) for k in self.GEMMA_JSON_KEYS})
            d["layer_types"] = list(self.layer_types)
        return d

    @classmethod
    def from_json_dict(cls, d: dict) -> "LlamaConfig":
        kw = {k: d[k] for k in cls.JSON_KEYS}
        if d.get("model_type", "llama") == "gemma3_text":
            kw.update({k: d[k] for k in cls.GEMMA_JSON_KEYS})
            kw["layer_types"] = tuple(kw["layer_types"])
        elif "model_type" in d:
            raise ValueError(f"unknown model_type {d['model_type']!r}")
        return cls(**kw)

    def __post_init__(self):
        if self.model_type == "llama":
            assert all(getattr(self, k) is None for k in self.GEMMA_JSON_KEYS[1:]), "Gemma keys on a Llama config"
        elif self.is_gemma:
            assert self.rope_scaling is None, "no rope scaling in the Gemma 3 oracle"
            assert len(self.layer_types) == self.num_hidden_layers
            assert set(self.layer_types) <= {"sliding_attention", "full_attention"}
            assert self.sliding_window >= 1 and self.hidden_activation == "gelu_pytorch_tanh"
            assert self.tie_word_embeddings, "Gemma 3 ties lm_head to the embedding"
        else:
            raise ValueError(f"unknown model_type {self.model_type!r}")

    def is_sliding(self, l: int) -> bool:
        return self.is_gemma and self.layer_types[l] == "sliding_attention"

    def layer_theta(self, l: int) -> float:
        """RoPE theta of layer l: rope_local_base_freq on sliding layers, rope_theta otherwise."""
        return self.rope_local_base_freq if self.is_sliding(l) else self.rope_theta

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
    if cfg.is_gemma:
        return gemma_weight_shapes(cfg, shapes)
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


def gemma_weight_shapes(cfg: LlamaConfig, shapes: dict) -> dict[str, tuple[int, ...]]:
    """Gemma 3: the embedding (already in `shapes`), per layer in the order of the computation
    input_layernorm, q/k/v_proj, q_norm, k_norm [HS], o_proj, post_attention_layernorm (on the
    attention output), pre_feedforward_layernorm, gate/up/down_proj, post_feedforward_layernorm;
    then model.norm. Always tied (no lm_head.weight)."""
    C, FF, HS = cfg.hidden_size, cfg.intermediate_size, cfg.head_dim
    q_dim = cfg.num_attention_heads * HS
    kv_dim = cfg.num_key_value_heads * HS
    for l in range(cfg.num_hidden_layers):
        p = f"model.layers.{l}."
        shapes[p + "input_layernorm.weight"] = (C,)
        shapes[p + "self_attn.q_proj.weight"] = (q_dim, C)
        shapes[p + "self_attn.k_proj.weight"] = (kv_dim, C)
        shapes[p + "self_attn.v_proj.weight"] = (kv_dim, C)
        shapes[p + "self_attn.q_norm.weight"] = (HS,)
        shapes[p + "self_attn.k_norm.weight"] = (HS,)
        shapes[p + "self_attn.o_proj.weight"] = (C, q_dim)
        shapes[p + "post_attention_layernorm.weight"] = (C,)
        shapes[p + "pre_feedforward_layernorm.weight"] = (C,)
        shapes[p + "mlp.gate_proj.weight"] = (FF, C)
        shapes[p + "mlp.up_proj.weight"] = (FF, C)
        shapes[p + "mlp.down_proj.weight"] = (C, FF)
        shapes[p + "post_feedforward_layernorm.weight"] = (C,)
    shapes["model.norm.weight"] = (C,)
    return shapes


def init_params(cfg: LlamaConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random parameters drawn in float32 from `gen`, then widened to float64.

    embedding: N(0,1) untied, N(0,1)/sqrt(C) tied (the tied embedding is also the lm_head:
    N(0,1) rows would scale the logits by sqrt(C)); linear [out,in]: N(0,1)/sqrt(in) (keeps
    activations O(1)); RMSNorm weights: 1 + 0.1*N(0,1) (Llama), 0.2*N(0,1) (Gemma 3, whose
    HF weight w multiplies as 1 + w). Every value is exactly representable in fp32 (the scaling
    is done in fp32).
    """
    params = {}
    for name, shape in weight_shapes(cfg).items():
        z = torch.randn(shape, generator=gen, dtype=torch.float32)
        if name.endswith("norm.weight") and cfg.is_gemma:
            w = 0.2 * z
        elif name.endswith("norm.weight"):
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

def rope_base_inv_freq(cfg: LlamaConfig, theta: float | None = None) -> torch.Tensor:
    """[HS/2] float64: inv_freq[j] = 1 / theta^(2j/HS); theta = cfg.rope_theta unless given."""
    HS = cfg.head_dim
    two_j = torch.arange(0, HS, 2, dtype=DTYPE)
    return 1.0 / ((cfg.rope_theta if theta is None else theta) ** (two_j / HS))


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


def rope_inv_freq(cfg: LlamaConfig, theta: float | None = None) -> torch.Tensor:
    """[HS/2] float64 inverse frequencies, with the optional "llama3" rescaling applied once.
    `theta` (Gemma 3's sliding layers: rope_local_base_freq) replaces cfg.rope_theta."""
    inv_freq = rope_base_inv_freq(cfg, theta)
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


def rope_cos_sin(cfg: LlamaConfig, T: int, offset: int = 0,
                 theta: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin of pos * inv_freq for positions offset..offset+T-1: each [T, HS/2], float64."""
    pos = torch.arange(offset, offset + T, dtype=DTYPE)
    angles = pos[:, None] * rope_inv_freq(cfg, theta)[None, :]     # [T, HS/2]
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


def gemma_rms_norm(x: torch.Tensor, w: torch.Tensor, eps: float) -> torch.Tensor:
    """Gemma's RMSNorm with the HF weight w: x * rsqrt(mean(x^2) + eps) * (1 + w)."""
    r = torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (x * r) * (1.0 + w)


def gelu_tanh(x: torch.Tensor) -> torch.Tensor:
    """gelu_pytorch_tanh: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x.pow(3))))


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


def sliding_visibility(vis: torch.Tensor, window: int, n_prefix: int = 0,
                       prefix_window: str = "past") -> torch.Tensor:
    """Gemma 3 sliding layers: vis [B, 1, T, P + T] (P = n_prefix columns in front) AND the window.

    Indices are cache (sequence) indices: prefix key j is index j, token key u is P + u, query t
    is P + t; key index s is visible to query index i only if i - s < window. prefix_window
    "always" exempts the P prefix keys from the window (visible to every query).
    """
    T = vis.shape[-2]
    S = vis.shape[-1]
    assert S == n_prefix + T
    qi = torch.arange(n_prefix, n_prefix + T)[:, None]                  # query cache index
    ki = torch.arange(S)[None, :]                                        # key cache index
    inside = (qi - ki) < window                                          # [T, S]
    if prefix_window == "always":
        inside[:, :n_prefix] = True
    else:
        assert prefix_window == "past", prefix_window
    return vis & inside[None, None]


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, vis: torch.Tensor,
              k_pre: torch.Tensor | None = None, v_pre: torch.Tensor | None = None,
              scale_denominator: float | None = None):
    """Scaled dot-product attention with GQA, optionally behind a prefix of P keys/values.

    q: [B, T, NH, HS]; k, v: [B, T, NKV, HS]; k_pre, v_pre: None or [P, NKV, HS] (shared by the
    batch, put in front of the keys/values, not rotated); vis: [B, 1, T, S] bool, S = P + T.
    Scores are divided by sqrt(HS), or by `scale_denominator` (Gemma 3: sqrt(query_pre_attn_scalar)).
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
    denom = math.sqrt(HS) if scale_denominator is None else scale_denominator
    scores = (qh @ kh.transpose(-1, -2)) / denom                         # [B, NH, T, S]
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
            # Optional (Gemma 3 cases only): how sliding layers treat the prefix keys.
            assert m.get("prefix_window", "past") in ("past", "always")
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
        self.prefix_vis_sliding = None   # Gemma 3 sliding layers: [B, 1, T, P + T] with the window
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
            if cfg.is_gemma:
                # PEFT: the prefix is ordinary past (cache indices 0..P-1) for the window rule
                # ("past"), or exempt from the window ("always")
                self.prefix_vis_sliding = sliding_visibility(
                    self.prefix_vis, cfg.sliding_window, P, pm.get("prefix_window", "past"))
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


def adapter_kv(params: dict, l: int, mod: str, A: torch.Tensor) -> torch.Tensor:
    """The adaption prompt's keys or values: the BASE projection A W^T, never LoRA's delta (affix's
    rule for LoRA + Llama-Adapter: LoRA adapts the tokens' path only; PEFT, stacking the two, would
    run the prompt through the LoRA'd module)."""
    return linear(A, params[f"model.layers.{l}.{mod}.weight"])


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
    ka = adapter_kv(params, l, "self_attn.k_proj", A).view(P, NKV, HS)
    va = adapter_kv(params, l, "self_attn.v_proj", A).view(P, NKV, HS)
    ka = ka.repeat_interleave(NH // NKV, dim=1).transpose(0, 1)           # [NH, P, HS]
    va = va.repeat_interleave(NH // NKV, dim=1).transpose(0, 1)
    scores = (q_rope.transpose(1, 2) @ ka.transpose(-1, -2)) / math.sqrt(HS)   # [B, NH, T, P]
    pa = torch.softmax(scores, dim=-1)
    z = ((g * pa) @ va).transpose(1, 2).reshape(B, T, NH * HS)
    return pa, z


def gemma_adapter_branch(cfg: LlamaConfig, params: dict, ext: _Methods, l: int,
                         q_rope: torch.Tensor):
    """Llama-Adapter on Gemma 3 (affix's rule; PEFT has none): -> (probabilities [B, NH, T, P],
    z [B, T, NH*HS]) for layer l.

    K_a = k_norm(A Wk^T) (the layer's k_norm per head, NO RoPE), V_a = A Wv^T; the queries are the
    model's (q_norm, then RoPE); S_a = q K_a^T / sqrt(query_pre_attn_scalar); softmax over the P
    adapter tokens (no mask, no window); z = gate * probabilities @ V_a, added to att_out.
    """
    A, g = ext.adapt[l]
    B, T, NH, HS = q_rope.shape
    NKV = cfg.num_key_value_heads
    P = A.shape[0]
    p = f"model.layers.{l}."
    ka = adapter_kv(params, l, "self_attn.k_proj", A).view(P, NKV, HS)
    ka = gemma_rms_norm(ka, params[p + "self_attn.k_norm.weight"], cfg.rms_norm_eps)
    va = adapter_kv(params, l, "self_attn.v_proj", A).view(P, NKV, HS)
    ka = ka.repeat_interleave(NH // NKV, dim=1).transpose(0, 1)           # [NH, P, HS]
    va = va.repeat_interleave(NH // NKV, dim=1).transpose(0, 1)
    scores = (q_rope.transpose(1, 2) @ ka.transpose(-1, -2)) / math.sqrt(cfg.query_pre_attn_scalar)
    pa = torch.softmax(scores, dim=-1)                                    # [B, NH, T, P]
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


def gemma_decoder_layer(cfg, params, l, x, cos, sin, vis, acts, ext: _Methods | None = None):
    """One Gemma 3 "sandwich" block. x: [B, T, C] -> [B, T, C]. Records act.layers.{l}.*.

    cos/sin are this layer's RoPE table (sliding or full theta); `vis` is the visibility of this
    layer type (the window already applied on sliding layers).
    """
    p = f"model.layers.{l}."
    a = f"act.layers.{l}."
    B, T, _ = x.shape
    NH, NKV, HS = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim
    eps = cfg.rms_norm_eps

    ln1 = gemma_rms_norm(x, params[p + "input_layernorm.weight"], eps)          # [B, T, C]
    q = proj(params, ext, l, "self_attn.q_proj", ln1)                           # [B, T, NH*HS]
    k = proj(params, ext, l, "self_attn.k_proj", ln1)                           # [B, T, NKV*HS]
    v = proj(params, ext, l, "self_attn.v_proj", ln1)                           # [B, T, NKV*HS]
    q_norm = gemma_rms_norm(q.view(B, T, NH, HS), params[p + "self_attn.q_norm.weight"], eps)
    k_norm = gemma_rms_norm(k.view(B, T, NKV, HS), params[p + "self_attn.k_norm.weight"], eps)
    q_rope = apply_rope(q_norm, cos, sin)                                        # [B, T, NH, HS]
    k_rope = apply_rope(k_norm, cos, sin)                                        # [B, T, NKV, HS]
    denom = math.sqrt(cfg.query_pre_attn_scalar)
    if ext is not None and l in ext.prefix_kv:
        k_pre, v_pre = ext.prefix_kv[l]                                          # raw: no k_norm, no RoPE
        pvis = ext.prefix_vis_sliding if cfg.is_sliding(l) else ext.prefix_vis
        att, att_out = attention(q_rope, k_rope, v.view(B, T, NKV, HS), pvis, k_pre, v_pre,
                                 scale_denominator=denom)                        # att [B,NH,T,P+T]
    else:
        att, att_out = attention(q_rope, k_rope, v.view(B, T, NKV, HS), vis,
                                 scale_denominator=denom)
    if ext is not None and l in ext.adapt:
        adapter_att, adapter_z = gemma_adapter_branch(cfg, params, ext, l, q_rope)
        att_out = att_out + adapter_z
        if acts is not None:
            acts.update({a + "adapter_att": adapter_att, a + "adapter_z": adapter_z})
    o = proj(params, ext, l, "self_attn.o_proj", att_out)                       # [B, T, C]
    o_norm = gemma_rms_norm(o, params[p + "post_attention_layernorm.weight"], eps)
    res1 = x + o_norm
    ln2 = gemma_rms_norm(res1, params[p + "pre_feedforward_layernorm.weight"], eps)
    gate = proj(params, ext, l, "mlp.gate_proj", ln2)                           # [B, T, FF]
    up = proj(params, ext, l, "mlp.up_proj", ln2)                               # [B, T, FF]
    swiglu = gelu_tanh(gate) * up                                               # (Llama's name)
    mlp = proj(params, ext, l, "mlp.down_proj", swiglu)                         # [B, T, C]
    mlp_norm = gemma_rms_norm(mlp, params[p + "post_feedforward_layernorm.weight"], eps)
    out = res1 + mlp_norm

    if acts is not None:
        acts.update({
            a + "ln1": ln1, a + "q": q, a + "k": k, a + "v": v,
            a + "q_norm": q_norm.reshape(B, T, NH * HS),
            a + "k_norm": k_norm.reshape(B, T, NKV * HS),
            a + "q_rope": q_rope.reshape(B, T, NH * HS),
            a + "k_rope": k_rope.reshape(B, T, NKV * HS),
            a + "att": att, a + "att_out": att_out, a + "o": o, a + "o_norm": o_norm,
            a + "res1": res1, a + "ln2": ln2, a + "gate": gate, a + "up": up,
            a + "swiglu": swiglu, a + "mlp": mlp, a + "mlp_norm": mlp_norm, a + "out": out,
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
    if cfg.is_gemma:
        x = x * math.sqrt(cfg.hidden_size)        # Gemma's normalizer sqrt(C) (float64 here)
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
    if cfg.is_gemma:
        # sliding layers: their own RoPE theta and the window (in sequence indices, so virtual
        # prompt rows count; a prefix is handled by _Methods.prefix_vis_sliding)
        cos_l, sin_l = rope_cos_sin(cfg, T, ext.position_offset() if ext else 0,
                                    theta=cfg.rope_local_base_freq)
        vis_l = sliding_visibility(vis, cfg.sliding_window)
        if acts is not None:
            acts.update({"act.rope_local_cos": cos_l, "act.rope_local_sin": sin_l})
        for l in range(cfg.num_hidden_layers):
            if cfg.is_sliding(l):
                x = gemma_decoder_layer(cfg, params, l, x, cos_l, sin_l, vis_l, acts, ext)
            else:
                x = gemma_decoder_layer(cfg, params, l, x, cos, sin, vis, acts, ext)
        h = gemma_rms_norm(x, params["model.norm.weight"], cfg.rms_norm_eps)
    else:
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
