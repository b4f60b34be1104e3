"""Check the base golden files (made by our oracle) against the real HF transformers LlamaForCausalLM.

(The adaptation-method cases, format_version "2", are checked by check_peft.py.)

Run from the repository root:   /work/venv/bin/python tools/oracle/check_hf.py

For every golden/<config>.<case>.safetensors this builds transformers' `LlamaForCausalLM`
(eager attention, float64) with the stored weights and compares, with the stored tensors:
  rope    cos/sin of the rotary embedding                       (act.rope_cos / act.rope_sin)
  logits  on real-token rows only (attention_mask == 1)          (act.logits)
  loss    model(labels=...).loss                                 (loss)
  loss_ni model(labels=..., num_items_in_batch=num_items).loss   (loss_num_items)
  grads   d loss / d weight of every weight, mean loss           (grad.*)
  gen     model.generate(prompt, greedy, 6 new tokens, KV cache) (gen.ids)

Each file is checked twice:
  hf      HF exactly as installed. In a float64 model HF still computes some pieces in float32
          (RoPE inv_freq and cos/sin, the RMSNorm, the eager softmax, the loss upcast), so the
          agreement is ~1e-7.  Limit: 1e-4 (this catches semantic errors, not rounding).
  hf-f64  the same HF code, with those float32 detours removed: a context manager keeps
          float64 tensors from being cast to float32 (Tensor.to / Tensor.float / softmax dtype)
          and the rotary inv_freq buffer is replaced by its float64 value (checked first against
          HF's own float32 buffer). Limit: 1e-10; expected ~1e-13.
Pad query rows (left padding) are implementation-defined in HF and excluded from the logits
comparison; they cannot reach the loss or any gradient.
Exits non-zero if any limit is exceeded.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import sys

import torch
import transformers
from safetensors import safe_open
from transformers import LlamaConfig as HFLlamaConfig
from transformers import LlamaForCausalLM

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_oracle as lo  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(REPO, "golden")
LIMITS = {"hf": 1e-4, "hf-f64": 1e-10}


# ---------------------------------------------------------------------------------------------
# Golden file -> HF model
# ---------------------------------------------------------------------------------------------

def load_golden(path: str):
    """-> (oracle config, metadata dict, tensors dict)."""
    with safe_open(path, "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    cfg = lo.LlamaConfig.from_json_dict(json.loads(meta["config"]))
    return cfg, meta, tensors


def load_metadata(path: str) -> dict:
    with safe_open(path, "pt") as f:
        return f.metadata()


def hf_config(cfg: lo.LlamaConfig) -> HFLlamaConfig:
    """Our config.json fields -> transformers LlamaConfig.

    transformers 5.x keeps rope_theta and rope_scaling together in `rope_parameters`
    ({"rope_type": "default"|"llama3", "rope_theta": ..., + the scaling fields}).
    """
    rope = {"rope_type": "default", "rope_theta": cfg.rope_theta}
    if cfg.rope_scaling is not None:
        rope.update(cfg.rope_scaling)
        rope["rope_theta"] = cfg.rope_theta
    hf = HFLlamaConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size, num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads, num_key_value_heads=cfg.num_key_value_heads,
        head_dim=cfg.head_dim, rms_norm_eps=cfg.rms_norm_eps, rope_parameters=rope,
        tie_word_embeddings=cfg.tie_word_embeddings,
        max_position_embeddings=cfg.max_position_embeddings,
        hidden_act="silu", attention_bias=False, mlp_bias=False, attention_dropout=0.0,
        pad_token_id=None, bos_token_id=None, eos_token_id=None,
    )
    hf._attn_implementation = "eager"
    return hf


def build_hf_model(cfg: lo.LlamaConfig, tensors: dict) -> LlamaForCausalLM:
    model = LlamaForCausalLM(hf_config(cfg)).to(torch.float64).eval()
    assert model.config._attn_implementation == "eager"
    weights = {n: tensors[n] for n in lo.weight_shapes(cfg)}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    expect_missing = ["lm_head.weight"] if cfg.tie_word_embeddings else []
    assert sorted(missing) == expect_missing and not unexpected, (missing, unexpected)
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight is model.model.embed_tokens.weight, "lm_head not tied"
    return model


# ---------------------------------------------------------------------------------------------
# The float64 patch
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def keep_float64(counter: dict):
    """Inside: a float64 tensor asked to become float32 stays float64.

    Covers the three ways HF Llama downcasts: `x.to(torch.float32)` (RMSNorm),
    `x.float()` (loss upcast, rotary), `softmax(x, dtype=torch.float32)` (eager attention).
    counter["casts"] counts the intercepted downcasts (proof that the patch is active).
    """
    f32, f64 = torch.float32, torch.float64
    orig_to, orig_float, orig_softmax = torch.Tensor.to, torch.Tensor.float, torch.nn.functional.softmax

    def to(self, *args, **kwargs):
        if self.dtype == f64:
            if any(a is f32 for a in args) or kwargs.get("dtype") is f32:
                counter["casts"] += 1
                args = tuple(f64 if a is f32 else a for a in args)
                if kwargs.get("dtype") is f32:
                    kwargs["dtype"] = f64
        return orig_to(self, *args, **kwargs)

    def float_(self, *args, **kwargs):
        if self.dtype == f64:
            counter["casts"] += 1
            return self
        return orig_float(self, *args, **kwargs)

    def softmax(input, *args, **kwargs):
        if input.dtype == f64 and kwargs.get("dtype") is f32:
            counter["casts"] += 1
            kwargs["dtype"] = f64
        return orig_softmax(input, *args, **kwargs)

    torch.Tensor.to, torch.Tensor.float, torch.nn.functional.softmax = to, float_, softmax
    try:
        yield
    finally:
        torch.Tensor.to, torch.Tensor.float, torch.nn.functional.softmax = (
            orig_to, orig_float, orig_softmax)


def use_float64_rope(model: LlamaForCausalLM, cfg: lo.LlamaConfig) -> float:
    """Replace HF's float32 inv_freq buffer by the float64 value. -> max relative difference
    between HF's float32 buffer and the float64 value (must be fp32 rounding, ~1e-7)."""
    rot = model.model.rotary_emb
    inv64 = lo.rope_inv_freq(cfg)
    rel = float(((rot.inv_freq.to(torch.float64) - inv64).abs() / inv64).max())
    rot.inv_freq = inv64.clone()
    rot.original_inv_freq = inv64.clone()
    return rel


# ---------------------------------------------------------------------------------------------
# One comparison
# ---------------------------------------------------------------------------------------------

def max_abs(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.to(torch.float64) - b.to(torch.float64)).abs().max())


def hf_nan_rows(logits: torch.Tensor) -> torch.Tensor:
    """[B] bool: batch rows whose HF logits contain NaN.

    HF eager attention adds an additive mask holding finfo(float64).min, then runs the softmax
    in float32: the cast turns the mask into -inf, a query row with no visible key (a left-pad
    token) becomes softmax(all -inf) = NaN, and the next layer spreads it over the whole batch
    row (probability 0 * NaN value = NaN). So unpatched HF float64 is unusable with left padding;
    float32 models are not affected (finfo(float32).min stays finite).
    """
    return torch.isnan(logits.detach()).any(dim=-1).any(dim=-1)


def compare_activations(cfg: lo.LlamaConfig, out, tensors: dict, rows: torch.Tensor) -> float:
    """Max abs diff of the activations HF exposes, on the given [B, T] token rows.

    transformers 5.23 hidden_states = (embed, out of layers 0..L-2, final norm): L+1 entries,
    the last layer's own output is not exposed. attentions[l] = probabilities [B, NH, T, T].
    """
    L = cfg.num_hidden_layers
    hs = out.hidden_states
    assert len(hs) == L + 1 and len(out.attentions) == L
    names = ["act.embed"] + [f"act.layers.{l}.out" for l in range(L - 1)] + ["act.norm"]
    d = max(max_abs(h.detach()[rows], tensors[n][rows]) for h, n in zip(hs, names))
    rows_h = rows[:, None, :].expand(-1, cfg.num_attention_heads, -1)   # [B, NH, T] query rows
    for l, a in enumerate(out.attentions):
        d = max(d, max_abs(a.detach()[rows_h], tensors[f"act.layers.{l}.att"][rows_h]))
    return d


def compare(cfg: lo.LlamaConfig, tensors: dict, mode: str) -> dict:
    """Run HF on the golden inputs; -> {column: max abs diff (or bool for gen)}."""
    model = build_hf_model(cfg, tensors)
    counter = {"casts": 0}
    ctx = contextlib.nullcontext()
    res = {}
    if mode == "hf-f64":
        res["inv_freq_rel"] = use_float64_rope(model, cfg)
        ctx = keep_float64(counter)

    ids, mask, labels = tensors["input_ids"], tensors["attention_mask"], tensors["labels"]
    T = ids.shape[1]
    half = cfg.head_dim // 2
    with ctx:
        # rope: HF returns cos/sin of cat(freqs, freqs): [1, T, HS]; we store the first half.
        x = torch.zeros(1, T, cfg.hidden_size, dtype=torch.float64)
        cos, sin = model.model.rotary_emb(x, torch.arange(T)[None, :])
        res["rope"] = max(max_abs(cos[0, :, :half], tensors["act.rope_cos"]),
                          max_abs(sin[0, :, :half], tensors["act.rope_sin"]),
                          max_abs(cos[0, :, half:], tensors["act.rope_cos"]),
                          max_abs(sin[0, :, half:], tensors["act.rope_sin"]))

        # logits, activations, mean loss, gradients
        model.zero_grad(set_to_none=True)
        out = model(input_ids=ids, attention_mask=mask, labels=labels,
                    output_hidden_states=True, output_attentions=True)
        out.loss.backward()
        real = mask.bool()                                            # [B, T]
        # HF float64 + left padding gives NaN (see hf_nan_rows); compare the finite rows.
        res["nan_rows"] = hf_nan_rows(out.logits)
        rows = real & ~res["nan_rows"][:, None]
        res["acts"] = compare_activations(cfg, out, tensors, rows)
        res["logits"] = max_abs(out.logits.detach()[rows], tensors["act.logits"][rows])
        res["loss"] = max_abs(out.loss.detach(), tensors["loss"])
        named = dict(model.named_parameters())                        # tied: one entry
        res["grads"] = max(max_abs(named[n].grad, tensors["grad." + n])
                           for n in lo.weight_shapes(cfg))

        # Trainer-style reduction: sum / num_items_in_batch
        with torch.no_grad():
            out_ni = model(input_ids=ids, attention_mask=mask, labels=labels,
                           num_items_in_batch=tensors["num_items"].clone())
        res["loss_ni"] = max_abs(out_ni.loss, tensors["loss_num_items"])

        # greedy generation (HF uses its KV cache; the oracle recomputes)
        prompt = tensors["gen.prompt"][None, :]
        with torch.no_grad():
            seq = model.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                                 max_new_tokens=len(tensors["gen.ids"]), pad_token_id=0)
        res["gen"] = torch.equal(seq[0, prompt.shape[1]:], tensors["gen.ids"])
    res["casts"] = counter["casts"]
    return res


def main() -> int:
    torch.manual_seed(0)
    print(f"transformers {transformers.__version__}, torch {torch.__version__}; "
          f"limits: {LIMITS}")
    # base cases only (format_version "1"); the method cases are checked by check_peft.py
    paths = [p for p in sorted(glob.glob(os.path.join(GOLDEN, "*.safetensors")))
             if load_metadata(p).get("format_version") == "1"]
    if not paths:
        print("no golden files; run tools/oracle/make_golden.py first")
        return 1
    cols = ("rope", "acts", "logits", "loss", "loss_ni", "grads")
    print(f"{'mode':7s} {'config':11s} {'case':5s} " + " ".join(f"{c:>8s}" for c in cols)
          + "  gen  note")
    worst = {m: 0.0 for m in LIMITS}
    failed = []
    for path in paths:
        cfg, meta, tensors = load_golden(path)
        for mode, limit in LIMITS.items():
            r = compare(cfg, tensors, mode)
            diffs = [r[c] for c in cols]
            finite = [d for d in diffs if d == d]
            worst[mode] = max([worst[mode]] + finite)
            ok = all(d <= limit for d in finite) and r["gen"]
            nan_rows = r["nan_rows"].nonzero().flatten().tolist()
            note = ""
            if nan_rows:
                # Allowed only for unpatched HF, on left-padded rows (see hf_nan_rows).
                left_padded = (tensors["attention_mask"][:, 0] == 0).nonzero().flatten().tolist()
                known = mode == "hf" and nan_rows == left_padded
                ok = ok and known
                note += f"HF NaN in batch row(s) {nan_rows} (fp64 mask -> -inf in fp32 softmax); "
            if mode == "hf-f64":
                note += f"inv_freq fp32 rel {r['inv_freq_rel']:.1e}, {r['casts']} casts kept f64"
                ok = ok and r["inv_freq_rel"] < 1e-6 and r["casts"] > 0 and not nan_rows
            print(f"{mode:7s} {meta['config_name']:11s} {meta['case']:5s} "
                  + " ".join(f"{d:8.1e}" for d in diffs)
                  + f"  {'ok ' if r['gen'] else 'DIFF'} {note}{'' if ok else '  FAIL'}")
            if not ok:
                failed.append(f"{os.path.basename(path)} [{mode}]")
    print("worst (finite): " + ", ".join(f"{m} {w:.1e} (limit {LIMITS[m]:.0e})"
                                         for m, w in worst.items()))
    if failed:
        print("FAILED: " + ", ".join(failed))
        return 1
    print(f"hf-check: passed, {len(paths)} files, hf-f64 worst {worst['hf-f64']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
