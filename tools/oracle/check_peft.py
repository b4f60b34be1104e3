"""Check the adaptation-method golden files (format_version "2") against the real `peft` package.

Run from the repository root:   /work/venv/bin/python tools/oracle/check_peft.py

For every golden/<config>.<method case>.<side>.safetensors whose method list PEFT can express,
this builds transformers' `LlamaForCausalLM` (eager attention, float64) from the stored base
weights, wraps it with PEFT, copies the stored adapter tensors into PEFT's parameters (our
names and layouts -> PEFT's, see PEFT_NAME), and compares with the stored tensors:
  rope     cos/sin of the positions the real tokens use           (act.rope_cos / act.rope_sin)
  prefix   the key/value prefix PEFT puts into the cache           (act.layers.{l}.prefix_k / _v)
  acts     hidden states and attention probabilities, real rows    (act.embed, act.layers.{l}.out,
                                                                    act.norm, act.layers.{l}.att)
  logits   real-token rows (prompt tuning: the P+T rows PEFT returns) (act.logits)
  loss     peft_model(labels=...).loss                             (loss)
  loss_ni  ... with num_items_in_batch                             (loss_num_items)
  grads    d loss / d adapter tensor, every trainable tensor       (grad.adapter.*)
  gen      peft_model.generate, greedy, 6 new tokens               (gen.ids)

How each method is expressed with PEFT (the only ones it can express):
  prompt         PromptTuningConfig(num_virtual_tokens=P)
  prefix         PrefixTuningConfig(num_virtual_tokens=P, prefix_projection, encoder_hidden_size)
                 -- ALL layers and position_offset "prefix" only (PEFT has neither a layer subset
                 nor zero-offset positions)
  llama_adapter  AdaptionPromptConfig(adapter_len=P, adapter_layers=La) -- gate "peft" only, and
                 only when NH*HS == hidden (PEFT's head factor, methods.md section 4.1)
  lora           LoraConfig(r, lora_alpha, target_modules, use_rslora, lora_dropout=0)
  lora + prefix  peft.inject_adapter_in_model(LoraConfig) into the HF model, then
                 get_peft_model(PrefixTuningConfig); the LoRA tensors are made trainable again
Other cases come from the oracle alone; the table says so.

Gemma 3 (model_type "gemma3_text"; HF Gemma3ForCausalLM, eager, float64):
  prompt, prefix ("prefix_window": "past" = PEFT's own rule: DynamicCache with sliding-window
  layers, the prefix is past), lora       PEFT as is;
  prefix "prefix_window": "always"        PEFT + the "always" patch (see PATCHES);
  llama_adapter                           PEFT refuses gemma3_text (checked: ValueError); route
                                          "hf+rule": affix's rule written on HF's own modules
                                          (q_proj/q_norm/apply_rotary_pos_emb/k_proj/k_norm/v_proj,
                                          the attention's scaling) with hooks, PEFT's AdaptedAttention
                                          formula otherwise (see build_hf_rule_model).
  Activations come from check_hf.capture_gemma (hooks on HF's modules), plus adapter_att/_z.

Modes, as in check_hf.py:
  peft      PEFT + HF exactly as installed (float32 detours inside a float64 model): limit 1e-4.
            Left padding gives NaN rows there (check_hf.hf_nan_rows) when a pad query row sees no
            key at all (not with a prompt / prefix, whose virtual tokens every row sees).
  peft-f64  the same under check_hf.keep_float64 + float64 inv_freq: limit 1e-10.
Exits non-zero if any limit is exceeded.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import sys
import warnings

import peft
import peft.peft_model
import torch
import transformers
import transformers.models.gemma3.modeling_gemma3 as modeling_gemma3
from peft import (AdaptionPromptConfig, LoraConfig, PrefixTuningConfig, PromptTuningConfig,
                  TaskType, get_peft_model, inject_adapter_in_model)
from transformers import DynamicCache

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_hf as ch  # noqa: E402
import llama_oracle as lo  # noqa: E402

GOLDEN = ch.GOLDEN
# HF's own function, kept before check_hf.capture_gemma wraps the module attribute (the wrapper
# counts one call per layer; the hf+rule adapter must not advance it)
HF_APPLY_ROPE = modeling_gemma3.apply_rotary_pos_emb
LIMITS = {"peft": 1e-4, "peft-f64": 1e-10}
COLS = ("rope", "prefix", "acts", "logits", "loss", "loss_ni", "grads")


# ---------------------------------------------------------------------------------------------
# Which method lists PEFT can express
# ---------------------------------------------------------------------------------------------

def peft_route(cfg: lo.LlamaConfig, methods: list) -> tuple[str, str]:
    """How a method list is checked -> (route, why):
      ("peft", "")           PEFT expresses it as is;
      ("peft+patch", what)   PEFT with a small, stated patch (see PATCHES);
      ("oracle", why)        not at all: the golden file comes from the oracle alone.
    """
    kinds = lo.methods_by_kind(cfg, methods)
    if set(kinds) not in ({"prompt"}, {"prefix"}, {"llama_adapter"}, {"lora"}, {"lora", "prefix"}):
        return "oracle", "PEFT cannot compose " + "+".join(kinds)
    not_peft = []
    pm = kinds.get("prefix")
    if pm is not None:
        if pm["layers"] != list(range(cfg.num_hidden_layers)):
            not_peft.append("PEFT prefix tuning has no layer subset (methods.md 3.6)")
        if pm["position_offset"] != "prefix":
            not_peft.append("PEFT puts the real tokens at P..P+T-1 (no position_offset zero)")
    if pm is not None and pm.get("prefix_window", "past") == "always":
        not_peft.append("PEFT's sliding layers treat the prefix as past (prefix_window past)")
    am = kinds.get("llama_adapter")
    if am is not None and cfg.is_gemma:
        if set(kinds) != {"llama_adapter"} or am["gate"] != "peft":
            return "oracle", "no reference for this Llama-Adapter variant on Gemma 3"
        return "hf+rule", "PEFT refuses gemma3_text; affix's Gemma rule on HF's modules"
    if am is not None:
        if cfg.num_attention_heads * cfg.head_dim != cfg.hidden_size:
            return "oracle", "PEFT AdaptionPrompt needs NH*HS == hidden (methods.md 4.1)"
        if am["gate"] != "peft":
            not_peft.append("PEFT AdaptionPrompt has one raw gate per layer, not a per-head tanh gate")
    return ("peft+patch", "; ".join(not_peft)) if not_peft else ("peft", "")


# The patches of the "peft+patch" route. Each replaces one PEFT/HF behaviour by the contract's,
# in the smallest place possible; everything else (cache, masks, RoPE, softmax, loss, the
# adapter code itself) stays PEFT's and HF's.
PATCHES = {
    "subset": "prefix tuning on all L layers (PEFT), but in a layer outside `layers` the eager "
              "attention drops the P prefix keys/values and mask columns (they hold zeros)",
    "zero": "the rotary embedding gets position_ids - P (PEFT/HF give P..P+T-1)",
    "official": "each AdaptedAttention's scalar adaption_gate is replaced, before every call, by "
                "tanh(gate) of shape [NH, 1, 1]: PEFT's `adaption_gate * softmax(scores)` "
                "then scales head h by tanh(gate[h])",
    "always": "Gemma 3 prefix_window always: PEFT's get_prompt builds a plain DynamicCache() (no "
              "sliding-window cache layers, so the prefix is never evicted) and in sliding layers "
              "the eager attention's mask columns of the P prefix keys are set to 0 (visible); "
              "HF's window mask over the real keys is unchanged",
}


def peft_config(cfg: lo.LlamaConfig, m: dict):
    kind = m["method"]
    if kind == "prompt":
        return PromptTuningConfig(task_type=TaskType.CAUSAL_LM,
                                  num_virtual_tokens=m["num_virtual_tokens"])
    if kind == "prefix":
        return PrefixTuningConfig(task_type=TaskType.CAUSAL_LM,
                                  num_virtual_tokens=m["num_virtual_tokens"],
                                  prefix_projection=m["prefix_projection"],
                                  encoder_hidden_size=m["encoder_hidden_size"])
    if kind == "llama_adapter":
        return AdaptionPromptConfig(task_type=TaskType.CAUSAL_LM, adapter_len=m["adapter_len"],
                                    adapter_layers=m["adapter_layers"])
    if kind == "lora":
        return LoraConfig(task_type=TaskType.CAUSAL_LM, r=m["r"], lora_alpha=m["alpha"],
                          use_rslora=m["use_rslora"], lora_dropout=0.0, bias="none",
                          target_modules=[lo.LORA_TARGETS[t].split(".")[1] for t in m["targets"]])
    raise ValueError(kind)


def peft_suffix(name: str) -> str:
    """Our adapter <name> -> the end of PEFT's parameter name (the layouts are noted where they
    differ: PEFT's adaption_prompt is [1, P, C], ours [P, C])."""
    if name == "prompt_embeddings":
        return "prompt_encoder.default.embedding.weight"
    if name.startswith("prefix."):                          # prefix.embedding / prefix.transform.*
        return "prompt_encoder.default." + name[len("prefix."):]
    if name.startswith("layers."):                          # layers.{l}.adaption_prompt / _gate
        l, leaf = name.split(".")[1], name.split(".")[2]
        return f"model.layers.{l}.self_attn.{leaf}"
    if ".lora_A." in name or ".lora_B." in name:            # ...lora_A.weight -> ...lora_A.default.weight
        return name[:-len(".weight")] + ".default.weight"
    raise KeyError(name)


# ---------------------------------------------------------------------------------------------
# Golden file -> PEFT model
# ---------------------------------------------------------------------------------------------

class Slot:
    """Our adapter tensor <-> (part of) a PEFT tensor.

    PEFT tensor `param` viewed as `view` holds our tensor at indices `index` along `dim` (all of
    it when index is None); the other entries are zero and must get zero gradient. `leaf` is the
    tensor whose .grad is ours when it is not a PEFT parameter (the official gate).
    """

    def __init__(self, param, view, dim=0, index=None, leaf=None):
        self.param, self.view, self.dim, self.index, self.leaf = param, view, dim, index, leaf

    def load(self, value: torch.Tensor):
        with torch.no_grad():
            if self.leaf is not None:
                self.leaf.copy_(value)
                return
            v = self.param.view(self.view)
            if self.index is None:
                v.copy_(value)
            else:
                v.zero_()
                v.index_copy_(self.dim, self.index, value)

    def grad(self) -> tuple[torch.Tensor, float]:
        """-> (our gradient, max |gradient| of the PEFT entries outside our slots)."""
        if self.leaf is not None:
            return self.leaf.grad, 0.0
        g = self.param.grad.view(self.view)
        if self.index is None:
            return g, 0.0
        outside = torch.ones(g.shape[self.dim], dtype=torch.bool)
        outside[self.index] = False
        rest = g.index_select(self.dim, outside.nonzero().flatten())
        return g.index_select(self.dim, self.index), float(rest.abs().max()) if rest.numel() else 0.0


def prefix_slots(cfg: lo.LlamaConfig, pm: dict) -> torch.Tensor:
    """Indices, in PEFT's all-layer table [.., L*2*KV], of our n-layer table's entries."""
    KV = cfg.num_key_value_heads * cfg.head_dim
    return torch.cat([torch.arange(2 * KV * l, 2 * KV * (l + 1)) for l in pm["layers"]])


def build_peft_model(cfg: lo.LlamaConfig, tensors: dict, methods: list):
    """-> (peft model in float64, {our adapter name: Slot}, list of patches applied).

    The PEFT model is built on the golden base weights, and the golden adapter tensors are
    copied into it. The patches are applied here (official gate) or by `patched_forward`.
    """
    model = ch.build_hf_model(cfg, tensors)
    kinds = lo.methods_by_kind(cfg, methods)
    patches = []
    configs = dict(kinds)
    pm_prefix = kinds.get("prefix")
    if pm_prefix is not None:
        if pm_prefix["layers"] != list(range(cfg.num_hidden_layers)):
            patches.append("subset")                         # PEFT: a prefix in every layer
        if pm_prefix["position_offset"] == "zero":
            patches.append("zero")
    am = kinds.get("llama_adapter")
    if am is not None and am["gate"] == "official":
        patches.append("official")
    if pm_prefix is not None and pm_prefix.get("prefix_window", "past") == "always":
        patches.append("always")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if set(configs) == {"lora", "prefix"}:
            model = inject_adapter_in_model(peft_config(cfg, configs["lora"]), model)
            pm = get_peft_model(model, peft_config(cfg, configs["prefix"]))
        else:
            (m,) = methods
            pm = get_peft_model(model, peft_config(cfg, m))
    pm = pm.to(torch.float64)            # the prompt encoder is created in float32
    named = dict(pm.named_parameters())

    def peft_param(name):
        hits = [n for n in named if n == peft_suffix(name) or n.endswith("." + peft_suffix(name))]
        assert len(hits) == 1, (name, hits)
        return named[hits[0]]

    slots = {}
    subset_idx = prefix_slots(cfg, pm_prefix) if "subset" in patches else None
    for name, shape in lo.adapter_shapes(cfg, methods).items():
        p = peft_param(name)
        assert p.dtype == torch.float64, (name, p.dtype)
        if subset_idx is not None and name == "prefix.embedding.weight" and not pm_prefix["prefix_projection"]:
            slot = Slot(p, p.shape, dim=1, index=subset_idx)                 # [P, L*2*KV]
        elif subset_idx is not None and name.startswith("prefix.transform.2."):
            slot = Slot(p, p.shape, dim=0, index=subset_idx)                 # rows of [L*2*KV, E]
        elif name.endswith(".adaption_gate") and "official" in patches:
            leaf = torch.zeros(shape, dtype=torch.float64)
            slot = Slot(p, shape, leaf=leaf)
        else:
            assert p.numel() == torch.Size(shape).numel(), (name, p.shape, shape)
            slot = Slot(p, shape)                                            # e.g. [1,P,C] as [P,C]
        slot.load(tensors["adapter." + name])
        if slot.leaf is not None:
            slot.leaf.requires_grad_(True)
        else:
            p.requires_grad_(True)      # (LoRA injected before a prompt-learning wrapper is frozen)
        slots[name] = slot

    if "official" in patches:
        # PEFT's AdaptedAttention computes `self.adaption_gate * softmax(scores)` with scores
        # [B, NH, T, P]: a [NH, 1, 1] tensor there scales each head by its own gate.
        for l in lo.adapter_layers_of(cfg, am):
            mod = pm.get_submodule(f"base_model.model.model.layers.{l}.self_attn")
            del mod._parameters["adaption_gate"]
            leaf = slots[f"layers.{l}.adaption_gate"].leaf
            mod.register_forward_pre_hook(
                lambda module, args, leaf=leaf: setattr(module, "adaption_gate",
                                                        torch.tanh(leaf).view(-1, 1, 1)))
    ours = {id(s.param) for s in slots.values() if s.leaf is None}
    trainable = {id(p) for p in pm.parameters() if p.requires_grad}
    assert trainable == ours, "PEFT trains other tensors"
    pm.eval()
    return pm, slots, patches


def build_hf_rule_model(cfg: lo.LlamaConfig, tensors: dict, methods: list):
    """Llama-Adapter on Gemma 3 (route "hf+rule"): PEFT refuses the model type, so affix's rule is
    written here on HF's Gemma3ForCausalLM, with HF's own modules and PEFT's AdaptedAttention
    formula (llama branch of peft/tuners/adaption_prompt/layer.py), changed only where the rule says:
      K_a = k_norm(k_proj(A)) (no RoPE), V_a = v_proj(A) (repeat_kv for GQA);
      q = apply_rotary_pos_emb(q_norm(q_proj(h))) with the layer's own position_embeddings;
      scores = q K_a^T * self_attn.scaling (1/sqrt(query_pre_attn_scalar));
      z = gate * softmax(scores, dtype=float32) @ V_a, added to the o_proj input.
    -> (model, {our adapter name: Slot}, patches=[]). Also asserts that PEFT still refuses.
    """
    (m,) = methods
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            get_peft_model(ch.build_hf_model(cfg, tensors), peft_config(cfg, m))
        except ValueError as e:
            assert "Unsupported model type" in str(e), e
        else:
            raise AssertionError("PEFT now supports AdaptionPrompt on gemma3_text: check it directly")
    model = ch.build_hf_model(cfg, tensors)
    for p in model.parameters():
        p.requires_grad_(False)
    P, C, HS = m["adapter_len"], cfg.hidden_size, cfg.head_dim
    slots = {}
    model._affix_adapter_acts = {}
    for l in lo.adapter_layers_of(cfg, m):
        at = model.model.layers[l].self_attn
        prompt = torch.nn.Parameter(torch.zeros(1, P, C, dtype=torch.float64))
        gate = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        at.register_parameter("adaption_prompt", prompt)
        at.register_parameter("adaption_gate", gate)
        slots[f"layers.{l}.adaption_prompt"] = Slot(prompt, (P, C))
        slots[f"layers.{l}.adaption_gate"] = Slot(gate, (1,))

        def grab(module, args, kwargs):
            module._affix_in = (kwargs["hidden_states"], kwargs["position_embeddings"])

        def add_adapter(module, args, at=at, l=l):
            h, (cos, sin) = at._affix_in
            bsz, q_len, _ = h.shape
            q = at.q_norm(at.q_proj(h).view(bsz, q_len, -1, HS).transpose(1, 2))
            q, _ = HF_APPLY_ROPE(q, q, cos, sin)
            A = at.adaption_prompt                                          # [1, P, C]
            ka = at.k_norm(at.k_proj(A).view(1, P, -1, HS).transpose(1, 2))  # [1, NKV, P, HS]
            va = at.v_proj(A).view(1, P, -1, HS).transpose(1, 2)
            ka = modeling_gemma3.repeat_kv(ka, at.num_key_value_groups)
            va = modeling_gemma3.repeat_kv(va, at.num_key_value_groups)
            scores = torch.matmul(q, ka.transpose(2, 3)) * at.scaling       # [B, NH, T, P]
            probs = torch.nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
            z = torch.matmul(at.adaption_gate * probs, va)                  # [B, NH, T, HS]
            z = z.transpose(1, 2).reshape(bsz, q_len, -1)
            model._affix_adapter_acts.setdefault(f"act.layers.{l}.adapter_att", probs.detach())
            model._affix_adapter_acts.setdefault(f"act.layers.{l}.adapter_z", z.detach())
            return (args[0] + z,) + args[1:]

        at.register_forward_pre_hook(grab, with_kwargs=True)
        at.o_proj.register_forward_pre_hook(add_adapter)
    for name, slot in slots.items():
        slot.load(tensors["adapter." + name])
    model.eval()
    return model, slots, []


@contextlib.contextmanager
def patched_forward(cfg: lo.LlamaConfig, pm, methods: list, patches: list):
    """The "subset", "zero" and "always" patches (see PATCHES), active inside the context."""
    import transformers.models.llama.modeling_llama as ml_llama
    ml = modeling_gemma3 if cfg.is_gemma else ml_llama
    kinds = lo.methods_by_kind(cfg, methods)
    orig_eager = ml.eager_attention_forward
    orig_cache = peft.peft_model.DynamicCache
    rot = (pm.get_base_model() if isinstance(pm, peft.PeftModel) else pm).model.rotary_emb
    orig_rot = rot.forward
    if "subset" in patches:
        layers, P = set(kinds["prefix"]["layers"]), kinds["prefix"]["num_virtual_tokens"]

        def eager(module, query, key, value, attention_mask, *args, **kwargs):
            if module.layer_idx not in layers:
                assert attention_mask is not None and attention_mask.dim() == 4
                key, value, attention_mask = key[:, :, P:], value[:, :, P:], attention_mask[..., P:]
            return orig_eager(module, query, key, value, attention_mask, *args, **kwargs)
        ml.eager_attention_forward = eager
    if "zero" in patches:
        P = kinds["prefix"]["num_virtual_tokens"]
        rot.forward = lambda x, position_ids, *a, **k: orig_rot(x, position_ids - P, *a, **k)
    if "always" in patches:
        assert "subset" not in patches and cfg.is_gemma
        P = kinds["prefix"]["num_virtual_tokens"]
        peft.peft_model.DynamicCache = lambda *a, **k: DynamicCache()     # no sliding layers

        def eager_always(module, query, key, value, attention_mask, *args, **kwargs):
            if module.is_sliding:
                assert attention_mask is not None and attention_mask.dim() == 4
                assert attention_mask.shape[-1] == key.shape[-2] >= P
                attention_mask = attention_mask.clone()
                attention_mask[..., :P] = 0.0                              # prefix keys visible
            return orig_eager(module, query, key, value, attention_mask, *args, **kwargs)
        ml.eager_attention_forward = eager_always
    try:
        yield
    finally:
        ml.eager_attention_forward = orig_eager
        peft.peft_model.DynamicCache = orig_cache
        rot.forward = orig_rot


# ---------------------------------------------------------------------------------------------
# One comparison
# ---------------------------------------------------------------------------------------------

def compare(cfg: lo.LlamaConfig, meta: dict, tensors: dict, mode: str, route: str) -> dict:
    methods = json.loads(meta["methods"])
    kinds = lo.methods_by_kind(cfg, methods)
    if route == "hf+rule":
        pm, slots, patches = build_hf_rule_model(cfg, tensors, methods)
        hf = pm
    else:
        pm, slots, patches = build_peft_model(cfg, tensors, methods)
        hf = pm.get_base_model()
    counter = {"casts": 0}
    ctx = contextlib.ExitStack()
    ctx.enter_context(patched_forward(cfg, pm, methods, patches))
    res = {"prefix": None}
    if mode == "peft-f64":
        res["inv_freq_rel"] = ch.use_float64_rope(hf, cfg)
        ctx.enter_context(ch.keep_float64(counter))

    ids, mask, labels = tensors["input_ids"], tensors["attention_mask"], tensors["labels"]
    B, T = ids.shape
    P_prompt = kinds["prompt"]["num_virtual_tokens"] if "prompt" in kinds else 0
    pm_prefix = kinds.get("prefix")
    offset = pm_prefix["num_virtual_tokens"] if pm_prefix else 0     # PEFT's positions P..
    # (with the "zero" patch the rotary embedding maps them back to 0..T-1)
    T2 = P_prompt + T
    mask2 = torch.cat((torch.ones(B, P_prompt, dtype=mask.dtype), mask), dim=1)   # [B, T']
    half = cfg.head_dim // 2
    with ctx:
        # rope at the positions the real tokens use
        if cfg.is_gemma:
            res["rope"] = ch.rope_diff(hf, cfg, tensors, torch.arange(offset, offset + T2))
        else:
            x = torch.zeros(1, T2, cfg.hidden_size, dtype=torch.float64)
            cos, sin = hf.model.rotary_emb(x, torch.arange(offset, offset + T2)[None, :])
            res["rope"] = max(ch.max_abs(cos[0, :, :half], tensors["act.rope_cos"]),
                              ch.max_abs(sin[0, :, :half], tensors["act.rope_sin"]),
                              ch.max_abs(cos[0, :, half:], tensors["act.rope_cos"]),
                              ch.max_abs(sin[0, :, half:], tensors["act.rope_sin"]))

        # the prefix PEFT loads into the cache: layer l keys/values [B, NKV, P, HS]
        if pm_prefix is not None:
            with torch.no_grad():
                cache = pm.get_prompt(batch_size=1)
            P = pm_prefix["num_virtual_tokens"]
            d = 0.0
            for l in pm_prefix["layers"]:
                for s, kv in (("k", cache.layers[l].keys), ("v", cache.layers[l].values)):
                    ours = tensors[f"act.layers.{l}.prefix_{s}"].view(P, cfg.num_key_value_heads,
                                                                      cfg.head_dim)
                    d = max(d, ch.max_abs(kv[0].transpose(0, 1), ours))
            res["prefix"] = d

        pm.zero_grad(set_to_none=True)
        if cfg.is_gemma:
            with ch.capture_gemma(hf, cfg) as captured:
                out = pm(input_ids=ids, attention_mask=mask, labels=labels, output_attentions=True)
        else:
            out = pm(input_ids=ids, attention_mask=mask, labels=labels,
                     output_hidden_states=True, output_attentions=True)
        out.loss.backward()
        assert out.logits.shape[1] == T2
        res["nan_rows"] = ch.hf_nan_rows(out.logits)
        rows = mask2.bool() & ~res["nan_rows"][:, None]                      # [B, T']
        if cfg.is_gemma:
            res["acts"], res["acts_worst"] = ch.compare_captured(cfg, captured, out.attentions,
                                                                 tensors, rows)
            rows_h = rows[:, None, :].expand(-1, cfg.num_attention_heads, -1)
            for n, t in getattr(hf, "_affix_adapter_acts", {}).items():   # hf+rule route
                sel = rows_h if n.endswith("_att") else rows                 # [B,NH,T,P] / [B,T,.]
                d = ch.max_abs(t[sel], tensors[n][sel])
                res["acts"], res["acts_worst"] = max((res["acts"], res["acts_worst"]), (d, n))
            if hasattr(hf, "_affix_adapter_acts"):
                assert len(hf._affix_adapter_acts) == 2 * kinds["llama_adapter"]["adapter_layers"]
        else:
            res["acts"] = ch.compare_activations(cfg, out, tensors, rows)
        res["logits"] = ch.max_abs(out.logits.detach()[rows], tensors["act.logits"][rows])
        res["loss"] = ch.max_abs(out.loss.detach(), tensors["loss"])
        diffs = []
        for n, slot in slots.items():
            g, outside = slot.grad()
            diffs += [outside, ch.max_abs(g, tensors["grad.adapter." + n])]
        res["grads"] = float(torch.tensor(diffs).max())          # NaN if any is NaN

        with torch.no_grad():
            out_ni = pm(input_ids=ids, attention_mask=mask, labels=labels,
                        num_items_in_batch=tensors["num_items"].clone())
        res["loss_ni"] = ch.max_abs(out_ni.loss, tensors["loss_num_items"])

        prompt = tensors["gen.prompt"][None, :]
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seq = pm.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt),
                              do_sample=False, max_new_tokens=len(tensors["gen.ids"]),
                              pad_token_id=0)
        n_new = len(tensors["gen.ids"])
        res["gen"] = seq.shape[1] == prompt.shape[1] + n_new and torch.equal(seq[0, -n_new:],
                                                                             tensors["gen.ids"])
    res["casts"] = counter["casts"]
    return res


def main() -> int:
    torch.manual_seed(0)
    print(f"peft {peft.__version__}, transformers {transformers.__version__}, "
          f"torch {torch.__version__}; limits: {LIMITS}")
    ch.warn_versions()
    paths = [p for p in sorted(glob.glob(os.path.join(GOLDEN, "*.safetensors")))
             if ch.load_metadata(p).get("format_version") == "2"]
    if not paths:
        print("no method cases; run tools/oracle/make_golden.py first")
        return 1
    print(f"{'mode':8s} {'file':44s} {'route':10s} " + " ".join(f"{c:>8s}" for c in COLS)
          + "  gen  note")
    worst = {m: 0.0 for m in LIMITS}
    failed, routes = [], {"peft": [], "peft+patch": [], "hf+rule": [], "oracle": []}
    for path in paths:
        cfg, meta, tensors = ch.load_golden(path)
        fname = os.path.basename(path)[:-len(".safetensors")]
        methods = json.loads(meta["methods"])
        route, why = peft_route(cfg, methods)
        routes[route].append(fname)
        if route == "oracle":
            print(f"{'-':8s} {fname:44s} {route:10s} oracle only: {why}")
            continue
        for mode, limit in LIMITS.items():
            r = compare(cfg, meta, tensors, mode, route)
            nan_rows = r["nan_rows"].nonzero().flatten().tolist()
            left_padded = (tensors["attention_mask"][:, 0] == 0).nonzero().flatten().tolist()
            # NaN is allowed only for unpatched HF on left-padded rows (check_hf.hf_nan_rows);
            # the loss and the gradients are then NaN too and are not compared.
            nan_known = bool(nan_rows) and mode == "peft" and nan_rows == left_padded
            ok, note, cells = r["gen"], "", []
            for c in COLS:
                d = r[c]
                if d is None:                                   # no prefix in this case
                    cells.append(f"{'-':>8s}")
                    continue
                cells.append(f"{d:8.1e}")
                if d != d:
                    ok = ok and nan_known and c in ("loss", "loss_ni", "grads")
                else:
                    ok = ok and d <= limit
                    worst[mode] = max(worst[mode], d)
            if nan_rows:
                ok = ok and nan_known
                note += f"HF NaN in batch row(s) {nan_rows} (fp64 mask -> -inf in fp32 softmax); "
            if mode == "peft-f64":
                note += f"{r['casts']} casts kept f64; "
                ok = ok and r["inv_freq_rel"] < 1e-6 and r["casts"] > 0
            if r.get("acts_worst"):
                note += f"worst act {r['acts_worst']}; "
            if route in ("peft+patch", "hf+rule") and mode == "peft":
                note += ("patched: " if route == "peft+patch" else "") + why
            print(f"{mode:8s} {fname:44s} {route:10s} " + " ".join(cells)
                  + f"  {'ok ' if r['gen'] else 'DIFF'} {note}{'' if ok else '  FAIL'}")
            if not ok:
                failed.append(f"{fname} [{mode}]")
    print("worst (finite): " + ", ".join(f"{m} {w:.1e} (limit {LIMITS[m]:.0e})"
                                         for m, w in worst.items()))
    for route, text in (("peft", "PEFT as is"), ("peft+patch", "PEFT + a stated patch"),
                        ("hf+rule", "HF + affix's rule"), ("oracle", "oracle only")):
        print(f"{text:22s} {len(routes[route]):2d}: {', '.join(routes[route]) or '-'}")
    if failed:
        print("FAILED: " + ", ".join(failed))
        return 1
    print(f"peft-check: passed, {len(routes['peft'])} files against PEFT, "
          f"{len(routes['peft+patch'])} against patched PEFT, {len(routes['hf+rule'])} against "
          f"affix's rule on HF, {len(routes['oracle'])} oracle-only, "
          f"peft-f64 worst {worst['peft-f64']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
