"""PEFT adapters on the real Gemma 3 270M (transformers + peft), in both directions with affix.

    sh tools/fetch_gemma3.sh                                          # the GGUF, in ~/.cache/affix
    /work/venv/bin/python tools/oracle/make_gemma3_peft.py [--gguf PATH] [--only prefix|lora|prompt]
    /work/venv/bin/python tools/oracle/make_gemma3_peft.py --check-affix DIR --logits FILE --prompt TEXT
                                                           [--logits FILE --prompt TEXT ...] [--gguf PATH] [--tol X]

The model: Gemma3ForCausalLM.from_pretrained(cache dir, gguf_file=gemma-3-270m-q4_k_m.gguf,
dtype=torch.float32, attn_implementation="eager") (the Q4_K_M weights dequantized to float32; Gemma
Terms of Use: the GGUF is never copied into the repository, only adapters with seeded random values
and logits computed from it). The tokenizer: AutoTokenizer from the same GGUF, encode(prompt) (BOS added).

(a) PEFT -> affix (default mode): for each case, get_peft_model(model, CONFIG) with seeded random
    trainable values, save_pretrained into tests/data/gemma3/peft_CASE/ (PEFT's model-card README.md
    removed, base_model_name_or_path set to the GGUF's file name), load it back with
    PeftModel.from_pretrained, and record for each prompt the logits at the last prompt position (the
    distribution of the first generated token) in tests/data/gemma3/peft_CASE_logits.json:
    top-20 ids and values, max |logit|, argmax, the full logits at 200 fixed spread ids
    (round(k (V-1) / 199), k = 0..199), and max |adapter - base| (how far the adapter moves them).
      prefix   PrefixTuningConfig(num_virtual_tokens=10), table (10, 9216) ~ N(0, 0.5)
      lora     LoraConfig(r=4, lora_alpha=8, target_modules=[q_proj, v_proj], lora_dropout=0),
               lora_A as PEFT initializes it (seeded), lora_B ~ N(0, 0.05) (B = 0 would be the identity)
      prompt   PromptTuningConfig(num_virtual_tokens=10, RANDOM init), table (10, 640) ~ N(0, 0.5)
    tests/test_gemma3.sh (part 3) runs `affix generate --adapter DIR -p PROMPT -n 1 --logits FILE` and
    compares with tests/test_gemma3_logits.c.
(b) affix -> PEFT (--check-affix): load DIR (an adapter directory written by affix) into PEFT on the
    same model, compute the last-position logits of BOS + TEXT and compare with FILE (`affix generate
    -m GGUF --adapter DIR -p TEXT -n 1 --logits FILE`: V raw little-endian float32); several
    --logits/--prompt pairs (in that order) share one model load. Prints per prompt the max abs
    difference, max |logit| and their ratio; exits 1 when a ratio exceeds --tol (default TOL_REL
    below: about 10x the worst measured, see tests/data/gemma3/README.md) or the argmax differs.

Deterministic: fixed seeds, and PYTHONHASHSEED=0 (PEFT writes target_modules from a Python set).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import platform
import shutil
import sys
import warnings

if os.environ.get("PYTHONHASHSEED") != "0":          # PEFT's set order in adapter_config.json
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})

os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF de-quantization progress bar
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(REPO, "tests", "data", "gemma3")
NAME = "gemma-3-270m-q4_k_m.gguf"
SIZE = 253113024
SHA = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
# max |affix - PEFT| / max |PEFT logit| allowed by --check-affix (float32 on both sides): about 10x
# the worst measured, 1.3e-6 (tests/data/gemma3/README.md); the same as tests/test_gemma3_logits.c
TOL_REL = 1.5e-5

PROMPTS = [
    ("en", "The capital of France is"),
    ("de", "Die Hauptstadt von Deutschland ist"),
    ("zh", "中国的首都是"),
]
N_SPREAD = 200


def versions():
    import peft
    import tokenizers
    import torch
    import transformers
    v = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
         "peft": peft.__version__, "tokenizers": tokenizers.__version__}
    try:
        from importlib.metadata import version
        v["gguf"] = version("gguf")
        v["safetensors"] = version("safetensors")
    except Exception:  # noqa: BLE001
        pass
    return v


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def load(gguf):
    import torch
    from transformers import AutoTokenizer, Gemma3ForCausalLM
    d, f = os.path.dirname(gguf), os.path.basename(gguf)
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = Gemma3ForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager")
    return tok, model.eval()


def last_logits(model, tok, prompt):
    import torch
    ids = tok.encode(prompt)  # BOS + prompt
    x = torch.tensor([ids])
    with torch.no_grad():
        out = model(input_ids=x, attention_mask=torch.ones_like(x)).logits[0, -1]
    return ids, out.float()


def spread_ids(V):
    return [round(k * (V - 1) / (N_SPREAD - 1)) for k in range(N_SPREAD)]


def logits_record(lang, prompt, ids, lg, base_lg, spread):
    """One prompt's entry of a *_logits.json file: top-20, max |logit|, the spread ids, and the
    difference from the base model's logits base_lg (0 for the base model itself)."""
    import torch
    top = torch.topk(lg.double(), 20)
    return {
        "lang": lang, "prompt": prompt, "prompt_ids": ids,
        "top20_ids": top.indices.tolist(), "top20_values": top.values.tolist(),
        "max_abs": float(lg.abs().max()), "argmax": int(lg.argmax()),
        "spread_values": [float(lg[i]) for i in spread],
        "max_abs_diff_vs_base": float((lg - base_lg).abs().max()),
        "base_argmax": int(base_lg.argmax()),
    }


def peft_config(case):
    from peft import LoraConfig, PrefixTuningConfig, PromptTuningConfig
    if case == "prefix":
        return PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=10)
    if case == "lora":
        return LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, lora_dropout=0.0,
                          target_modules=["q_proj", "v_proj"])
    if case == "prompt":
        return PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=10)
    raise ValueError(case)


CASES = ["prefix", "lora", "prompt"]
SEEDS = {"prefix": 310, "lora": 311, "prompt": 312}


def make_case(case, base, tok, base_logits, about_gguf):
    import torch
    from peft import PeftModel, get_peft_model
    torch.manual_seed(SEEDS[case])
    pm = get_peft_model(copy.deepcopy(base), peft_config(case))
    g = torch.Generator().manual_seed(SEEDS[case])
    n_train = 0
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if not p.requires_grad:
                continue
            n_train += p.numel()
            if case in ("prefix", "prompt"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=g))
    pm.peft_config["default"].base_model_name_or_path = NAME
    d = os.path.join(OUT, "peft_" + case)
    shutil.rmtree(d, ignore_errors=True)
    pm.save_pretrained(d)
    if os.path.exists(os.path.join(d, "README.md")):
        os.remove(os.path.join(d, "README.md"))
    del pm
    back = PeftModel.from_pretrained(copy.deepcopy(base), d).eval()
    prompts = []
    for lang, prompt in PROMPTS:
        ids, lg = last_logits(back, tok, prompt)
        V, spread = lg.numel(), spread_ids(lg.numel())
        prompts.append(logits_record(lang, prompt, ids, lg, base_logits[lang], spread))
        print("  %s %s: argmax %d (base %d), max|logit| %.3f, max|adapter - base| %.3f" % (
            case, lang, prompts[-1]["argmax"], prompts[-1]["base_argmax"], prompts[-1]["max_abs"],
            prompts[-1]["max_abs_diff_vs_base"]), file=sys.stderr)
    cfg = json.load(open(os.path.join(d, "adapter_config.json")))
    doc = {
        "about": "Logits of transformers' Gemma3ForCausalLM (float32, eager) with the PEFT adapter in "
                 "tests/data/gemma3/peft_%s/ (PeftModel.from_pretrained), at the last position of BOS + prompt "
                 "(the first generated token's distribution), made by tools/oracle/make_gemma3_peft.py. "
                 "top20: torch.topk; spread_values: the logits at spread_ids; max_abs_diff_vs_base: "
                 "max |these logits - the base model's|. Values are float32 logits printed as float64." % case,
        "versions": versions(),
        "gguf": about_gguf,
        "adapter": "peft_" + case,
        "peft_type": cfg.get("peft_type"),
        "trainable_params": n_train,
        "vocab_size": V,
        "spread_ids": spread,
        "prompts": prompts,
    }
    write(os.path.join(OUT, "peft_%s_logits.json" % case), doc)
    del back


def make_base(base, tok, about_gguf):
    """tests/data/gemma3/base_logits.json: the plain model's logits, in the format of the adapters'."""
    import torch
    prompts = []
    spread = None
    for lang, prompt in PROMPTS:
        ids, lg = last_logits(base, tok, prompt)
        V, spread = lg.numel(), spread_ids(lg.numel())
        prompts.append(logits_record(lang, prompt, ids, lg, lg, spread))
    doc = {
        "about": "Logits of transformers' Gemma3ForCausalLM (float32, eager) without an adapter, at the last "
                 "position of BOS + prompt, made by tools/oracle/make_gemma3_peft.py (the same format as "
                 "peft_*_logits.json). Values are float32 logits printed as float64.",
        "versions": versions(),
        "gguf": about_gguf,
        "adapter": None,
        "peft_type": None,
        "trainable_params": 0,
        "vocab_size": V,
        "spread_ids": spread,
        "prompts": prompts,
    }
    write(os.path.join(OUT, "base_logits.json"), doc)


def write(path, doc):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, path)
    print("wrote %s (%d bytes)" % (os.path.relpath(path, REPO), os.path.getsize(path)), file=sys.stderr)


def check_affix(a):
    import numpy as np
    import torch
    from peft import PeftModel
    if len(a.logits) != len(a.prompt):
        sys.exit("--check-affix: %d --logits but %d --prompt" % (len(a.logits), len(a.prompt)))
    tok, base = load(a.gguf)
    V = base.config.vocab_size
    dumps = []
    for path in a.logits:
        raw = open(path, "rb").read()
        if len(raw) != 4 * V:
            sys.exit("%s: %d bytes, want %d (V = %d float32)" % (path, len(raw), 4 * V, V))
        dumps.append(torch.from_numpy(np.frombuffer(raw, dtype="<f4").astype(np.float32)))
    pm = PeftModel.from_pretrained(base, a.check_affix).eval()
    print("check-affix %s: %s, %d trainable values" % (
        a.check_affix, pm.peft_config["default"].peft_type.value,
        sum(p.numel() for n, p in pm.named_parameters() if "prompt_encoder" in n or "lora_" in n)))
    bad = 0
    for path, prompt, ours in zip(a.logits, a.prompt, dumps):
        ids, ref = last_logits(pm, tok, prompt)
        diff = float((ours - ref).abs().max())
        mx = float(ref.abs().max())
        rel = diff / mx
        ok = rel <= a.tol and int(ours.argmax()) == int(ref.argmax())
        bad += not ok
        print("  %s %r (%d ids): argmax PEFT %d, affix %d; max|PEFT logit| %.4f; max|affix - PEFT| %.3g "
              "(relative %.3g, tolerance %.3g)" % ("ok  " if ok else "FAIL", prompt, len(ids), int(ref.argmax()),
                                                  int(ours.argmax()), mx, diff, rel, a.tol))
    print("check-affix: %d passed, %d failed" % (len(dumps) - bad, bad))
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    cache = os.environ.get("AFFIX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "affix")
    ap.add_argument("--gguf", default=os.path.join(cache, NAME))
    ap.add_argument("--only", choices=CASES + ["base"])
    ap.add_argument("--check-affix", metavar="DIR")
    ap.add_argument("--logits", metavar="FILE", action="append", default=[])
    ap.add_argument("--prompt", metavar="TEXT", action="append", default=[])
    ap.add_argument("--tol", type=float, default=TOL_REL)
    a = ap.parse_args()
    if not os.path.isfile(a.gguf):
        sys.exit("%s: not found (sh tools/fetch_gemma3.sh fetches it)" % a.gguf)
    import transformers.utils.logging as hf_logging
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore")
    if a.check_affix:
        if not a.logits or not a.prompt:
            ap.error("--check-affix needs --logits FILE and --prompt TEXT")
        return check_affix(a)
    about = {"name": NAME, "bytes": os.path.getsize(a.gguf), "sha256": sha256(a.gguf)}
    if about["bytes"] != SIZE or about["sha256"] != SHA:
        sys.exit("%s: not the expected file (size %d, sha256 %s)" % (a.gguf, about["bytes"], about["sha256"]))
    import torch
    torch.manual_seed(0)
    tok, base = load(a.gguf)
    base_logits = {lang: last_logits(base, tok, p)[1] for lang, p in PROMPTS}
    if a.only in (None, "base"):
        make_base(base, tok, about)
    for case in CASES:
        if a.only in (None, case):
            make_case(case, base, tok, base_logits, about)
    return 0


if __name__ == "__main__":
    sys.exit(main())
