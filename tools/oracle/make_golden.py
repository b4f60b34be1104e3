"""Write the golden files of affix: golden/<config>.<case>.safetensors and golden/MANIFEST.

Base cases: <config>.<right|left> (format_version "1", full fine-tuning gradients), for the
Llama configs and the Gemma 3 config ("gemma3", model_type "gemma3_text").
Method cases: <config>.<method-case>.<right|left> (format_version "2", adaptation methods;
the base weights are frozen and the gradients cover the adapter tensors only).

Run from the repository root:   /work/venv/bin/python tools/oracle/make_golden.py
(any Python with torch + safetensors works; the versions go into golden/MANIFEST).
`--only CONFIG [CONFIG ...]` rewrites only those configs' files (base and method cases) and keeps
every other file and its MANIFEST line as they are (the file must match its sha256 there): use
it to add cases on a machine whose CPU/BLAS rounds differently from the one that made the rest.

The output is deterministic: fixed seeds, no timestamps, so a rerun gives identical bytes.
The file format is the contract in golden/README.md.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys

import torch
from safetensors.torch import save as safetensors_bytes

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_oracle as lo  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GOLDEN = os.path.join(REPO, "golden")
COMMAND = "python3 tools/oracle/make_golden.py"

B, T = 2, 7
PAD_ID = 0
N_PROMPT, N_GEN = 4, 6
ADAMW = {"lr": 1e-2, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.1}

_LLAMA3 = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
           "high_freq_factor": 4.0, "original_max_position_embeddings": 2048}


def _cfg(**kw) -> lo.LlamaConfig:
    base = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=3,
                num_attention_heads=4, num_key_value_heads=4, head_dim=8, rms_norm_eps=1e-5,
                rope_theta=10000.0, rope_scaling=None, tie_word_embeddings=False,
                max_position_embeddings=4096)
    base.update(kw)
    return lo.LlamaConfig(**base)


def _gemma3_cfg(L=6, pattern=6, **kw) -> lo.LlamaConfig:
    """A tiny Gemma 3 text decoder: layer i is full iff (i+1) % pattern == 0 (HF's default)."""
    base = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=L,
                num_attention_heads=4, num_key_value_heads=1, head_dim=12, rms_norm_eps=1e-6,
                rope_theta=1000000.0, rope_scaling=None, tie_word_embeddings=True,
                max_position_embeddings=4096, model_type="gemma3_text",
                query_pre_attn_scalar=16, sliding_window=4,
                layer_types=tuple("full_attention" if (i + 1) % pattern == 0 else "sliding_attention"
                                  for i in range(L)),
                rope_local_base_freq=10000.0, hidden_activation="gelu_pytorch_tanh")
    base.update(kw)
    return lo.LlamaConfig(**base)


# name -> config. The order fixes the seeds: seed = 1000 + 10*config_index + case_index.
# New configs go at the end (the seeds, and so the bytes, of the existing files stay).
CONFIGS = {
    "mha_untied": _cfg(),
    "gqa_tied": _cfg(num_key_value_heads=2, rms_norm_eps=1e-6, tie_word_embeddings=True),
    "headdim": _cfg(intermediate_size=40, num_key_value_heads=2, head_dim=12,
                    rope_theta=500000.0),
    "llama3rope": _cfg(num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                       rope_scaling=_LLAMA3),
    # Gemma 3: head_dim 12 != C/NH = 8, query_pre_attn_scalar 16 != head_dim, window 4 < T = 7
    "gemma3": _gemma3_cfg(),
}
CASES = ("right", "left")
# The MANIFEST (and the run) lists the files family by family: a family's base cases, then its
# method cases (in METHOD_CASES order). Appending a family appends lines to the MANIFEST.
FAMILIES = (("mha_untied", "gqa_tied", "headdim", "llama3rope"), ("gemma3",))


def seed_of(config_index: int, case_index: int) -> int:
    return 1000 + 10 * config_index + case_index


# ---------------------------------------------------------------------------------------------
# Adaptation-method cases (golden/README.md "Adaptation-method cases")
# ---------------------------------------------------------------------------------------------

P_VIRTUAL = 3          # virtual tokens / prefix length / adapter length of every method case


def m_prompt(cfg):
    return {"method": "prompt", "num_virtual_tokens": P_VIRTUAL}


def m_prefix(layers=None, projection=False, E=None, offset="prefix", window=None):
    """window: None (no field: the Llama cases) or the Gemma 3 "prefix_window" ("past" = PEFT:
    the prefix is past for the sliding window; "always" = visible to every query)."""
    def make(cfg):
        kv = cfg.num_key_value_heads * cfg.head_dim
        m = {"method": "prefix", "num_virtual_tokens": P_VIRTUAL,
             "layers": list(range(cfg.num_hidden_layers)) if layers is None else list(layers),
             "prefix_projection": projection,
             "encoder_hidden_size": kv if E is None else E,     # PEFT's default: the KV width
             "position_offset": offset}
        if window is not None:
            m["prefix_window"] = window
        return m
    return make


def m_llama_adapter(gate, La=2):
    def make(cfg):
        return {"method": "llama_adapter", "adapter_len": P_VIRTUAL, "adapter_layers": La,
                "gate": gate}
    return make


def m_lora(targets, r=2, alpha=4, rslora=False):
    def make(cfg):
        return {"method": "lora", "r": r, "alpha": alpha, "use_rslora": rslora,
                "targets": list(targets)}
    return make


ALL_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")

# (method case, config, base case, method makers, true init?)
# The file is golden/<config>.<method case>.<base case>.safetensors; its `case` metadata is
# "<method case>.<base case>". Base weights and inputs are those of golden/<config>.<base case>.
METHOD_CASES = [
    ("prompt", "gqa_tied", "right", [m_prompt], False),
    ("prompt", "gqa_tied", "left", [m_prompt], False),
    ("prefix", "gqa_tied", "right", [m_prefix()], False),
    ("prefix", "headdim", "left", [m_prefix()], False),
    ("prefix_proj", "mha_untied", "right", [m_prefix(projection=True, E=10)], False),
    ("prefix_subset", "llama3rope", "right", [m_prefix(layers=[1, 2], offset="prefix")], False),
    ("prefix_subset_zero", "llama3rope", "left", [m_prefix(layers=[0, 2], offset="zero")], False),
    ("llama_adapter", "gqa_tied", "right", [m_llama_adapter("peft")], False),
    ("llama_adapter_init", "gqa_tied", "left", [m_llama_adapter("peft")], True),
    ("llama_adapter_official", "mha_untied", "right", [m_llama_adapter("official")], False),
    ("lora", "gqa_tied", "right", [m_lora(("q", "v"))], False),
    ("lora_init", "gqa_tied", "left", [m_lora(("q", "v"))], True),
    ("lora_all_rslora", "headdim", "right", [m_lora(ALL_TARGETS, r=2, alpha=3, rslora=True)], False),
    ("lora_prefix", "mha_untied", "left", [m_lora(("q", "v")), m_prefix()], False),
    # Gemma 3 (appended: the files above keep their bytes)
    ("prompt", "gemma3", "right", [m_prompt], False),
    ("prefix", "gemma3", "left", [m_prefix(window="past")], False),
    ("prefix_visible", "gemma3", "right", [m_prefix(window="always")], False),
    ("lora_all", "gemma3", "right", [m_lora(ALL_TARGETS)], False),
    ("llama_adapter", "gemma3", "left", [m_llama_adapter("peft", La=3)], False),
    # LoRA on q,k,v + Llama-Adapter: the adaption prompt uses the base k/v projections (affix's rule)
    ("lora_llama_adapter", "gemma3", "right", [m_lora(("q", "k", "v")), m_llama_adapter("peft", La=2)], False),
]


def draw_adapter(cfg: lo.LlamaConfig, methods: list, gen: torch.Generator, true_init: bool):
    """The trainable tensors, drawn in float32 from `gen` (in the order of
    llama_oracle.adapter_shapes) and widened to float64:
      prompt embeddings, prefix embedding, adaption prompts   N(0,1)   (PEFT / official init)
      prefix MLP weights and biases                           U(+-1/sqrt(fan_in)) (nn.Linear init)
      lora_A                                                  U(+-1/sqrt(in))     (PEFT init)
      lora_B                                                  N(0, 0.1^2);  0 in a true-init case
      adaption_gate                                           N(0, 0.5^2);  0 in a true-init case
    """
    shapes = lo.adapter_shapes(cfg, methods)
    f32 = torch.float32

    def uniform(shape, fan_in):
        bound = 1.0 / math.sqrt(fan_in)
        return (torch.rand(shape, generator=gen, dtype=f32) * 2.0 - 1.0) * bound

    out = {}
    for name, shape in shapes.items():
        if name in ("prompt_embeddings", "prefix.embedding.weight") or name.endswith(".adaption_prompt"):
            w = torch.randn(shape, generator=gen, dtype=f32)
        elif name.startswith("prefix.transform."):
            w = uniform(shape, shapes[name.rsplit(".", 1)[0] + ".weight"][1])
        elif name.endswith(".lora_A.weight"):
            w = uniform(shape, shape[1])
        elif name.endswith(".lora_B.weight"):
            w = torch.zeros(shape, dtype=f32) if true_init else 0.1 * torch.randn(shape, generator=gen, dtype=f32)
        elif name.endswith(".adaption_gate"):
            w = torch.zeros(shape, dtype=f32) if true_init else 0.5 * torch.randn(shape, generator=gen, dtype=f32)
        else:
            raise KeyError(name)
        assert w.dtype == f32
        out[name] = w.to(torch.float64)                # fp32 -> fp64 is exact
    return out


def methods_json(methods: list) -> str:
    return json.dumps(methods, separators=(",", ":"), sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------

def make_batch(cfg: lo.LlamaConfig, case: str, gen: torch.Generator):
    """-> input_ids, attention_mask, labels: each [B=2, T=7] int64.

    right: row 0 = 7 real tokens, labels = input_ids (labels[0] != -100);
           row 1 = 5 real + 2 pads, labels -100 on the first 2 tokens (prompt) and on the pads.
    left:  row 0 = 7 real tokens, labels -100 on the first 3;
           row 1 = 2 pads + 5 real, labels -100 on the pads and the first 2 real tokens.
    Real ids are drawn from 1..V-1; pads are id 0 with mask 0. No pad row has a kept target.
    """
    ids = torch.randint(1, cfg.vocab_size, (B, T), generator=gen, dtype=torch.int64)
    mask = torch.ones(B, T, dtype=torch.int64)
    if case == "right":
        mask[1, 5:] = 0
    elif case == "left":
        mask[1, :2] = 0
    else:
        raise ValueError(case)
    ids = ids.masked_fill(mask == 0, PAD_ID)

    labels = ids.clone()
    labels[mask == 0] = lo.IGNORE_INDEX
    if case == "right":
        labels[1, :2] = lo.IGNORE_INDEX
    else:
        labels[0, :3] = lo.IGNORE_INDEX
        labels[1, 2:4] = lo.IGNORE_INDEX
    return ids, mask, labels


# ---------------------------------------------------------------------------------------------
# Optimizer and clipping, with the real torch implementations
# ---------------------------------------------------------------------------------------------

def adamw_two_steps(params: dict, grads: dict):
    """Two torch.optim.AdamW steps (float64): g then -0.5*g. -> (after step 1, after step 2)."""
    names = list(params)
    leaves = [params[n].detach().clone().requires_grad_(True) for n in names]
    opt = torch.optim.AdamW(leaves, lr=ADAMW["lr"], betas=(ADAMW["beta1"], ADAMW["beta2"]),
                            eps=ADAMW["eps"], weight_decay=ADAMW["weight_decay"],
                            foreach=False, fused=False)
    snapshots = []
    for scale in (1.0, -0.5):
        for n, p in zip(names, leaves):
            p.grad = (scale * grads[n]).clone()
        opt.step()
        snapshots.append({n: p.detach().clone() for n, p in zip(names, leaves)})
    return snapshots[0], snapshots[1]


def clip_grads(params: dict, grads: dict):
    """torch.nn.utils.clip_grad_norm_ with max_norm = half the total norm (so it clips).

    -> (total_norm [] tensor, max_norm float, clipped grads dict).
    Note torch's coefficient: min(1, max_norm / (total_norm + 1e-6)).
    """
    def leaves_with_grads():
        out = []
        for n in params:
            p = params[n].detach().clone().requires_grad_(True)
            p.grad = grads[n].clone()
            out.append(p)
        return out

    total_norm = torch.nn.utils.clip_grad_norm_(leaves_with_grads(), max_norm=math.inf)
    max_norm = 0.5 * float(total_norm)
    leaves = leaves_with_grads()
    total_again = torch.nn.utils.clip_grad_norm_(leaves, max_norm=max_norm)
    assert torch.equal(total_again, total_norm)
    clipped = {n: p.grad.detach().clone() for n, p in zip(params, leaves)}
    return total_norm.detach().clone(), max_norm, clipped


# ---------------------------------------------------------------------------------------------
# One golden file
# ---------------------------------------------------------------------------------------------

def build_case(name: str, cfg: lo.LlamaConfig, case: str, seed: int,
               method_case: str | None = None, method_makers=(), true_init: bool = False):
    """-> (tensors dict, metadata dict) for golden/<name>.<case>.safetensors (base case), or
    golden/<name>.<method_case>.<case>.safetensors (method case).

    One generator seeded with `seed` draws the base parameters, then the inputs (so a method
    case has the weights and inputs of its base case), then the adapter tensors.
    """
    gen = torch.Generator().manual_seed(seed)
    params = lo.init_params(cfg, gen)                 # parameters first,
    ids, mask, labels = make_batch(cfg, case, gen)    # then the inputs,
    methods = [make(cfg) for make in method_makers]
    adapter = draw_adapter(cfg, methods, gen, true_init) if methods else {}   # then the adapter

    # Forward + backward (mean loss) with every activation recorded. Trainable: all base
    # weights (base case) or the adapter tensors only (method case, base frozen).
    if methods:
        trainable = {"adapter." + n: t for n, t in adapter.items()}
        leaves = {n: t.clone().requires_grad_(True) for n, t in adapter.items()}
        weights = params
    else:
        trainable = params
        leaves = {n: p.clone().requires_grad_(True) for n, p in params.items()}
        weights = leaves
    acts = {}
    logits = lo.forward(cfg, weights, ids, mask, acts=acts, methods=methods,
                        adapter=leaves if methods else None)
    losses = lo.causal_lm_loss(logits, lo.method_labels(cfg, methods, labels))
    losses["loss"].backward()
    if methods:
        grads = {"adapter." + n: leaves[n].grad.detach().clone() for n in adapter}
    else:
        grads = {n: leaves[n].grad.detach().clone() for n in params}

    step1, step2 = adamw_two_steps(trainable, grads)
    total_norm, max_norm, clipped = clip_grads(trainable, grads)

    prompt = ids[0, :N_PROMPT].clone()
    gen_ids = lo.greedy_generate(cfg, params, prompt, N_GEN, methods=methods, adapter=adapter)

    tensors = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    tensors.update(params)
    tensors.update({"adapter." + n: t for n, t in adapter.items()})
    tensors.update({k: v.detach() for k, v in acts.items()})
    tensors.update({k: v.detach() for k, v in losses.items()})
    for n in trainable:
        tensors["grad." + n] = grads[n]
        tensors["adamw.step1." + n] = step1[n]
        tensors["adamw.step2." + n] = step2[n]
        tensors["clip.grad." + n] = clipped[n]
    tensors["clip.total_norm"] = total_norm
    tensors["gen.prompt"] = prompt
    tensors["gen.ids"] = gen_ids
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    for k, v in tensors.items():
        assert v.dtype in (torch.float64, torch.int64), (k, v.dtype)
    if methods:
        check_method_case(cfg, methods, true_init, tensors)

    metadata = {
        "format_version": "2" if methods else "1",
        "case": f"{method_case}.{case}" if methods else case,
        "config_name": name,
        "config": json.dumps(cfg.to_json_dict()),
        "adamw": json.dumps(ADAMW),
        "clip_max_norm": repr(max_norm),
        "seed": str(seed),
        "torch_version": torch.__version__,
        "dtype": "float64",
    }
    if methods:
        metadata["methods"] = methods_json(methods)
    return tensors, metadata


def check_method_case(cfg: lo.LlamaConfig, methods: list, true_init: bool, tensors: dict):
    """Sanity checks of a method case (shapes of the contract, what a true init implies)."""
    for n, shape in lo.adapter_shapes(cfg, methods).items():
        for pre in ("adapter.", "grad.adapter.", "adamw.step1.adapter.", "clip.grad.adapter."):
            assert tuple(tensors[pre + n].shape) == shape, (pre + n, shape)
        t = tensors["adapter." + n]
        assert torch.equal(t.to(torch.float32).to(torch.float64), t), n   # fp32-representable
    assert not any(k.startswith("grad.model.") or k == "grad.lm_head.weight" for k in tensors)
    kinds = lo.methods_by_kind(cfg, methods)
    if true_init:
        for n in lo.adapter_shapes(cfg, methods):
            g = tensors["grad.adapter." + n]
            if n.endswith(".adaption_prompt") or n.endswith(".lora_A.weight"):
                assert torch.count_nonzero(g) == 0, n              # exactly zero at init
            else:
                assert torch.count_nonzero(g) > 0, n
    if "prefix" in kinds:
        pm = kinds["prefix"]
        P = pm["num_virtual_tokens"]
        for l in pm["layers"]:
            att = tensors[f"act.layers.{l}.att"]
            assert att.shape[-1] == P + att.shape[-2]
            assert torch.allclose(att.sum(-1), torch.ones(()).double())   # every row sees the prefix


def check_config(name: str, cfg: lo.LlamaConfig):
    if cfg.rope_scaling is not None:
        bands = lo.llama3_bands(cfg)
        assert {"high", "blend", "low"} <= set(bands), (name, bands)
    if cfg.is_gemma:
        # what the Gemma config is meant to exercise
        assert cfg.head_dim != cfg.hidden_size // cfg.num_attention_heads, name
        assert cfg.query_pre_attn_scalar != cfg.head_dim, name
        assert cfg.sliding_window < T, name                       # the sliding layers really cut
        assert {"sliding_attention", "full_attention"} == set(cfg.layer_types), name
        assert cfg.rope_local_base_freq != cfg.rope_theta, name


def save_deterministic(tensors: dict, metadata: dict, path: str):
    """safetensors.torch.save, with the metadata keys put in sorted order.

    safetensors keeps `__metadata__` in a hash map, so its key order (and the file's bytes)
    changes from run to run. The header is re-serialised with sorted metadata keys; its
    length does not change, so the data offsets and the data bytes stay as safetensors wrote them.
    """
    blob = safetensors_bytes(tensors, metadata=metadata)
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    assert len(text) == len(blob[8:8 + n].rstrip(b" ")), "header length changed"
    text = text.ljust(n, b" ")                      # safetensors pads the header with spaces
    with open(path, "wb") as f:
        f.write(blob[:8] + text + blob[8 + n:])


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def versions() -> list[str]:
    out = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    for mod in ("safetensors", "transformers", "peft"):
        try:
            out.append(f"{mod} {__import__(mod).__version__}")
        except ImportError:
            out.append(f"{mod} (not installed)")
    return out


def existing_manifest_lines() -> dict[str, str]:
    """file name -> its line in the current golden/MANIFEST (comments skipped)."""
    path = os.path.join(GOLDEN, "MANIFEST")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return {line.split(" ", 1)[0]: line.rstrip("\n") for line in f
                if line.strip() and not line.startswith("#")}


def main(argv=None):
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="+", metavar="CONFIG", choices=list(CONFIGS),
                    help="rewrite only these configs' files; keep the others and their MANIFEST lines")
    args = ap.parse_args(argv)
    torch.use_deterministic_algorithms(True)
    os.makedirs(GOLDEN, exist_ok=True)
    old_lines = existing_manifest_lines() if args.only else {}
    # every case: (file name, config name, config, base case, seed, method case, makers, init)
    jobs = []
    config_index = {n: i for i, n in enumerate(CONFIGS)}
    assert sorted(n for f in FAMILIES for n in f) == sorted(CONFIGS), "FAMILIES must cover CONFIGS"
    for family in FAMILIES:
        for name in family:
            cfg = CONFIGS[name]
            check_config(name, cfg)
            for ki, case in enumerate(CASES):
                jobs.append((f"{name}.{case}.safetensors", name, cfg, case,
                             seed_of(config_index[name], ki), None, (), False))
        for method_case, name, case, makers, true_init in METHOD_CASES:
            if name not in family:
                continue
            seed = seed_of(config_index[name], CASES.index(case))
            jobs.append((f"{name}.{method_case}.{case}.safetensors", name, CONFIGS[name], case,
                         seed, method_case, makers, true_init))
    assert len({j[0] for j in jobs}) == len(jobs), "duplicate file names"

    lines = []
    for fname, name, cfg, case, seed, method_case, makers, true_init in jobs:
        if args.only and name not in args.only:
            line = old_lines.get(fname)
            assert line is not None, f"--only: {fname} is not in golden/MANIFEST"
            digest = sha256_of(os.path.join(GOLDEN, fname))
            assert f" sha256={digest} " in line, f"--only: {fname} does not match its MANIFEST line"
            lines.append(line)
            print(f"{fname:52s} kept (sha256={digest[:16]})")
            continue
        tensors, metadata = build_case(name, cfg, case, seed, method_case, makers, true_init)
        path = os.path.join(GOLDEN, fname)
        save_deterministic(tensors, metadata, path)
        digest = sha256_of(path)
        lines.append(f'{fname} config={name} case={metadata["case"]} sha256={digest} cmd="{COMMAND}"')
        print(f"{fname:52s} {os.path.getsize(path):7d} bytes  loss={float(tensors['loss']):.6f}"
              f"  gen={tensors['gen.ids'].tolist()}  sha256={digest[:16]}")

    header = ["# golden/MANIFEST — written by tools/oracle/make_golden.py; do not edit by hand.",
              "# Regenerate from the repository root with the project venv:",
              "#   /work/venv/bin/python tools/oracle/make_golden.py",
              "# Cross-check the oracle against HF transformers / PEFT:",
              "#   /work/venv/bin/python tools/oracle/check_hf.py",
              "#   /work/venv/bin/python tools/oracle/check_peft.py",
              "# Base cases first (<config>.<right|left>), then the adaptation-method cases",
              "# (<config>.<method case>.<right|left>, format_version 2).",
              "# versions:"]
    header += [f"#   {v}" for v in versions()]
    with open(os.path.join(GOLDEN, "MANIFEST"), "w") as f:
        f.write("\n".join(header + lines) + "\n")


if __name__ == "__main__":
    main()
