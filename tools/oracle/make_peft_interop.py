"""Make and check tests/data/peft/: adapters in PEFT's own format, in both directions.

Run from the repository root:   /work/venv/bin/python tools/oracle/make_peft_interop.py

1. base/        a tiny HF Llama (float32, GQA 4/2 heads, head_dim 6, untied, 3 layers), written by
                transformers' save_pretrained (config.json + model.safetensors; the
                generation_config.json it also writes is removed).
2. from_peft/   one directory per case, written by the real peft's save_pretrained from a PEFT
                model on that base with non-trivial values (gates != 0, lora_B != 0); PEFT's
                model-card README.md is removed. The logits PEFT gives after loading each directory
                back (PeftModel.from_pretrained) go to expected.safetensors "from_peft.<case>.logits".
3. from_affix/  written by the C code: `test_peft --write-from-affix DIR` (built here with make in
                a scratch build directory). Each directory is then loaded by the real peft (or, for
                `full`, by transformers) and checked:
                  - adapter_config.json is exactly the text PEFT writes for the same config
                    (PeftConfig.from_pretrained + save_pretrained, target_modules sorted);
                  - adapter_model.safetensors is byte for byte what PEFT writes when it saves the
                    loaded adapter again (not for prefix_proj, which also carries affix's MLP);
                  - full: the tensors equal transformers' re-save byte for byte, and every field of
                    config.json equals the one transformers writes;
                  - the cases PEFT cannot express are refused by PEFT (subset, official gate) or,
                    for position_offset zero, loaded with a warning about the ignored field.
                PEFT's logits on each loadable directory go to "from_affix.<case>.logits".
4. expected.safetensors: input_ids [2,6] (I64), base.logits, from_peft.*.logits,
                from_affix.*.logits (float32, [B, T, V]; prompt tuning [B, P+T, V] as PEFT returns).

tests/test_peft.c loads every directory with peft_load and compares its logits with these
(tolerance 1e-5 * max(1, |ref|)), and checks that peft_save writes the from_affix bytes exactly.
Deterministic: fixed seeds and PYTHONHASHSEED=0 (PEFT writes target_modules from a Python set).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

if os.environ.get("PYTHONHASHSEED") != "0":          # PEFT's set order in adapter_config.json
    os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, "PYTHONHASHSEED": "0"})

import peft  # noqa: E402
import transformers.utils.logging as hf_logging  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from peft import (AdaptionPromptConfig, LoraConfig, PeftConfig, PeftModel,  # noqa: E402
                  PrefixTuningConfig, PromptTuningConfig, get_peft_model)
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import LlamaConfig, LlamaForCausalLM  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = "tests/data/peft"                       # relative: it is base_model_name_or_path
BASE = f"{DATA}/base"
IDS = [[1, 7, 3, 22, 45, 9], [5, 0, 31, 12, 2, 40]]
MODEL = dict(vocab_size=48, hidden_size=24, intermediate_size=40, num_hidden_layers=3,
             num_attention_heads=4, num_key_value_heads=2, head_dim=6, max_position_embeddings=64,
             rms_norm_eps=1e-5, tie_word_embeddings=False)

# case -> (PEFT config, how its trainable values are drawn)
PEFT_CASES = {
    "prompt": lambda: PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3),
    "prefix": lambda: PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3),
    "prefix_proj": lambda: PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=3,
                                              prefix_projection=True, encoder_hidden_size=10),
    "adaption": lambda: AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=3, adapter_layers=2),
    "lora_qv": lambda: LoraConfig(task_type="CAUSAL_LM", r=2, lora_alpha=4, lora_dropout=0.0,
                                  target_modules=["q_proj", "v_proj"]),
    "lora_all_rslora": lambda: LoraConfig(task_type="CAUSAL_LM", r=2, lora_alpha=3, lora_dropout=0.0,
                                          target_modules="all-linear", use_rslora=True),
}
# what test_peft --write-from-affix writes (tests/test_peft.c AFFIX_CASES); PEFT = loadable by peft
AFFIX_PEFT = ["prompt", "prefix", "adaption", "lora_qv", "lora_all_rslora", "prefix_proj"]
AFFIX_NOT_PEFT = {"prefix_subset": "size mismatch", "adaption_official": "size mismatch",
                  "prefix_zero": "ignored"}
AFFIX_FULL = "full"


def base_model() -> LlamaForCausalLM:
    return LlamaForCausalLM.from_pretrained(BASE, dtype=torch.float32,
                                            attn_implementation="eager").eval()


def make_base() -> None:
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**MODEL)).to(torch.float32)
    with torch.no_grad():                      # weights with a visible effect (HF's 0.02 is tiny)
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1 + 0.1 * torch.randn_like(p))
            elif "embed_tokens" in name:
                p.copy_(torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) / p.shape[1] ** 0.5)
    shutil.rmtree(BASE, ignore_errors=True)
    model.save_pretrained(BASE)
    os.remove(f"{BASE}/generation_config.json")


def logits(model, P: int = 0) -> torch.Tensor:
    ids = torch.tensor(IDS)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
    assert out.shape == (2, P + len(IDS[0]), MODEL["vocab_size"]), out.shape
    return out.float().contiguous()


def make_from_peft(expected: dict) -> None:
    shutil.rmtree(f"{DATA}/from_peft", ignore_errors=True)
    for i, (case, make) in enumerate(PEFT_CASES.items()):
        torch.manual_seed(100 + i)
        pm = get_peft_model(base_model(), make())
        with torch.no_grad():                  # non-trivial values: gates != 0, lora_B != 0
            for name, p in pm.named_parameters():
                if not p.requires_grad:
                    continue
                if "adaption_gate" in name:
                    p.copy_(0.5 + torch.rand_like(p))
                elif "lora_B" in name:
                    p.copy_(0.3 * torch.randn_like(p))
        out = f"{DATA}/from_peft/{case}"
        pm.save_pretrained(out)
        os.remove(f"{out}/README.md")
        back = PeftModel.from_pretrained(base_model(), out).eval()
        P = 3 if case == "prompt" else 0
        expected[f"from_peft.{case}.logits"] = logits(back, P)


def write_from_affix() -> None:
    """Build tests/test_peft in a scratch build directory and let it write from_affix/."""
    build = tempfile.mkdtemp(prefix="affix-peft-build-")
    try:
        subprocess.run(["make", "-s", f"BUILD={build}", f"{build}/test_peft"], check=True,
                       stdout=subprocess.DEVNULL)
        shutil.rmtree(f"{DATA}/from_affix", ignore_errors=True)
        subprocess.run([f"{build}/test_peft", "--write-from-affix", f"{DATA}/from_affix"], check=True)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def peft_config_text(d: str) -> str:
    """adapter_config.json as PEFT writes it for the config in d (target_modules sorted)."""
    with tempfile.TemporaryDirectory() as tmp:
        PeftConfig.from_pretrained(d).save_pretrained(tmp)
        cfg = json.load(open(f"{tmp}/adapter_config.json"))
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
    return json.dumps(cfg, indent=2, sort_keys=True)


def check_from_affix(expected: dict) -> list[str]:
    problems = []
    root = f"{DATA}/from_affix"
    for case in AFFIX_PEFT:
        d = f"{root}/{case}"
        ours = open(f"{d}/adapter_config.json").read()
        if ours != peft_config_text(d):
            problems.append(f"{case}: adapter_config.json differs from PEFT's")
        pm = PeftModel.from_pretrained(base_model(), d).eval()
        with tempfile.TemporaryDirectory() as tmp:
            pm.save_pretrained(tmp)
            same = open(f"{tmp}/adapter_model.safetensors", "rb").read() == \
                open(f"{d}/adapter_model.safetensors", "rb").read()
        if case != "prefix_proj" and not same:
            problems.append(f"{case}: PEFT re-saves adapter_model.safetensors with other bytes")
        expected[f"from_affix.{case}.logits"] = logits(pm, 3 if case == "prompt" else 0)
        print(f"  from_affix/{case:18s} PEFT loads it; config text {'==' if ours == peft_config_text(d) else '!='} "
              f"PEFT's; tensors {'==' if same else '!='} PEFT's re-save")
    for case, how in AFFIX_NOT_PEFT.items():
        d = f"{root}/{case}"
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            try:
                PeftModel.from_pretrained(base_model(), d)
                refused = None
            except Exception as ex:             # noqa: BLE001 -- any refusal is what we expect
                refused = str(ex)
        ignored = any("affix_" in str(x.message) for x in w)
        ok = (how == "size mismatch" and refused and "size mismatch" in refused) or \
             (how == "ignored" and refused is None and ignored)
        if not ok:
            problems.append(f"{case}: PEFT did not behave as documented ({how})")
        why = "size mismatch" if refused and "size mismatch" in refused else (refused or "")[:60]
        print(f"  from_affix/{case:18s} PEFT: " + (f"refuses it ({why})" if refused else
                                                   "loads it, warning that affix_* fields are ignored"))
    d = f"{root}/{AFFIX_FULL}"
    model = LlamaForCausalLM.from_pretrained(d, dtype=torch.float32, attn_implementation="eager").eval()
    expected[f"from_affix.{AFFIX_FULL}.logits"] = logits(model)
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        if open(f"{tmp}/model.safetensors", "rb").read() != open(f"{d}/model.safetensors", "rb").read():
            problems.append("full: transformers re-saves model.safetensors with other bytes")
        hf, ours = json.load(open(f"{tmp}/config.json")), json.load(open(f"{d}/config.json"))
    diff = sorted(k for k in ours if hf.get(k) != ours[k])
    missing = sorted(set(hf) - set(ours))
    if diff or missing != ["transformers_version"]:
        problems.append(f"full: config.json fields differ {diff} / missing {missing}")
    print(f"  from_affix/{AFFIX_FULL:18s} transformers loads it; tensors == its re-save; config fields == "
          f"its own (it adds {missing})")
    return problems


def save_expected(expected: dict) -> None:
    info = json.dumps({"peft": peft.__version__, "transformers": transformers.__version__,
                       "torch": torch.__version__,
                       "command": "python tools/oracle/make_peft_interop.py"}, sort_keys=True)
    expected = {k: expected[k] for k in sorted(expected)}
    save_file(expected, f"{DATA}/expected.safetensors", metadata={"info": info})


def main() -> int:
    os.chdir(REPO)
    hf_logging.disable_progress_bar()
    warnings.filterwarnings("ignore", category=FutureWarning)
    print(f"peft {peft.__version__}, transformers {transformers.__version__}, torch {torch.__version__}")
    make_base()
    expected = {"input_ids": torch.tensor(IDS, dtype=torch.int64)}
    expected["base.logits"] = logits(base_model())
    make_from_peft(expected)
    print(f"  base/ and from_peft/ ({', '.join(PEFT_CASES)}) written by transformers and peft")
    if "--no-affix" in sys.argv:               # bootstrap: from_peft only
        save_expected(expected)
        return 0
    save_expected(expected)                    # test_peft reads from_peft and its logits
    write_from_affix()
    problems = check_from_affix(expected)
    save_expected(expected)
    for p in problems:
        print("FAIL " + p)
    print("peft-interop: " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
