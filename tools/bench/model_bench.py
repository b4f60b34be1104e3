#!/usr/bin/env python3
"""model_bench.py — the real-model section of `make bench`: Gemma 3 270M (the cached GGUF) in affix,
in PyTorch (transformers' Gemma3ForCausalLM + PEFT on the same file, dequantized by transformers to
float32) and, when its Python binding is installed, in llama.cpp; one table, ratios from one run.

Every row runs in a process of its own, so each peak RSS is that row's alone:
  affix    `affix bench --model GGUF --row ROW --seq T` (tools/cmd_bench.c): the frozen base kept in
           the file's blocks (--weights file; full fine-tuning converts to float32, as it must)
  torch    this script with --torch-row (the same work, timed the same way: best of --steps after
           --warmup), eager or torch.compile (regional: each decoder layer), the faster kept: --compile
           auto times both on the first training row and keeps that choice for the other rows
  llama.cpp  llama_cpp.Llama on the same GGUF (prefill and decode only: it does not train)
What is timed (the same on every side):
  train ROW  one optimizer step on batch 1 x T random tokens, every token a target: zero_grad,
             forward, cross-entropy, backward, clip 1.0, AdamW; tok/s = T / seconds (virtual tokens
             not counted). Methods as in the reproduction: prompt and prefix 10 tokens, Llama-Adapter
             10 tokens x 18 layers (PEFT has no Gemma path: "not in PEFT"), LoRA r 4 q,v, full.
  forward    the plain model's logits for all T rows (inference mode)
  prefill    a T-token prompt into an empty KV cache, the last token's logits only
  decode     a 16-token prompt, then 32 greedy tokens one at a time; tok/s over the 32
Peak RSS: the kernel's high-water mark of the row's process (ru_maxrss; for torch also the mark after
the model is loaded, /proc/self/clear_refs, since transformers' GGUF dequantization peaks above the
training itself). The machine numbers (FMA peak, triad bandwidth: build/bench/probe) give the
fraction of peak of each training row — FLOPs counted as 2 per multiply-add of every matrix product
the step must execute (forward, then the input gradients through every layer, plus the weight
gradients for full fine-tuning; attention's two products per head) — and the decode bound: triad
bandwidth / the bytes affix reads per token.

  python3 tools/bench/model_bench.py --affix build/affix --model GGUF --probe build/bench/probe.json \
      [--python PY] [--seqs 256,512] [--methods prompt,prefix,llama-adapter,lora,full] [--steps 2]
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import time

METHODS = ["prompt", "prefix", "llama-adapter", "lora", "full"]
P_VIRTUAL, LORA_R, LORA_ALPHA = 10, 4, 8
DEC_PROMPT, DEC_GEN = 16, 32


def run_row(argv, timeout):
    """(JSON object of the row's last stdout line, the process's peak RSS in MB) — an error as a dict"""
    t0 = time.time()
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        return {"error": f"timeout after {timeout} s"}
    except OSError as ex:
        return {"error": str(ex)}
    lines = [l for l in out.splitlines() if l.startswith("{")]
    if p.returncode != 0 and not lines:
        tail = [l for l in err.splitlines() if l.strip()]
        return {"error": (tail[-1] if tail else f"exit {p.returncode}")[:160]}
    try:
        r = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": "no JSON line"}
    r["wall_s"] = round(time.time() - t0, 1)
    return r


# ---- the torch side (one row per process) -----------------------------------------------------

def hwm_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def hwm_mb():
    try:
        with open("/proc/self/status") as f:
            for l in f:
                if l.startswith("VmHWM:"):
                    return int(l.split()[1]) / 1024
    except OSError:
        pass
    return None


def torch_row(a):
    import resource
    import torch
    import torch.nn.functional as F
    import transformers
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(a.threads or len(os.sched_getaffinity(0)))
    torch.manual_seed(0)
    d, g = os.path.split(os.path.abspath(a.model))
    t0 = time.time()
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=g, dtype=torch.float32, attn_implementation="sdpa")
    load_s = time.time() - t0
    gc.collect()
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    reset = hwm_reset()
    cfg = model.config
    V, T, row = cfg.vocab_size, a.seq, a.torch_row
    res = {"row": row, "T": T, "torch": torch.__version__, "transformers": transformers.__version__,
           "threads": torch.get_num_threads(), "load_s": round(load_s, 1), "load_peak_rss_mb": round(load_peak, 1)}
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(0, V, (1, T), generator=gen)

    def layers_compile(m):
        n = 0
        for mod in m.modules():
            if type(mod).__name__.endswith("DecoderLayer"):
                mod.compile()
                n += 1
        return n

    def best_of(fn):
        for _ in range(a.warmup):
            fn()
        best = float("inf")
        for _ in range(a.steps):
            t = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - t)
        return best

    if row in METHODS:
        import peft
        res["peft"] = peft.__version__
        if row == "llama-adapter" and cfg.model_type not in ("gpt2", "llama", "mistral"):
            res["error"] = f"not in PEFT (AdaptionPrompt supports gpt2, llama, mistral; not {cfg.model_type})"
            print(json.dumps(res))
            return 0
        if row == "full":
            m = model
            m.requires_grad_(True)
        else:
            conf = {"prompt": lambda: peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=P_VIRTUAL),
                    "prefix": lambda: peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=P_VIRTUAL),
                    "lora": lambda: peft.LoraConfig(task_type="CAUSAL_LM", r=LORA_R, lora_alpha=LORA_ALPHA,
                                                    target_modules=["q_proj", "v_proj"], lora_dropout=0.0),
                    "llama-adapter": lambda: peft.AdaptionPromptConfig(task_type="CAUSAL_LM", adapter_len=P_VIRTUAL,
                                                                       adapter_layers=cfg.num_hidden_layers)}[row]()
            m = peft.get_peft_model(model, conf)
        m.train()
        params = [p for p in m.parameters() if p.requires_grad]
        try:
            opt, kind = torch.optim.AdamW(params, lr=1e-4, fused=True), "fused"
        except Exception:
            opt, kind = torch.optim.AdamW(params, lr=1e-4, foreach=True), "foreach"
        tgt = ids[:, 1:].reshape(-1)
        Pv = P_VIRTUAL if row == "prompt" else 0  # PEFT's prompt tuning returns logits for the virtual rows too

        def step():
            opt.zero_grad(set_to_none=True)
            logits = m(input_ids=ids).logits
            loss = F.cross_entropy(logits[:, Pv:-1].reshape(-1, V).float(), tgt)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        res.update({"adamw": kind, "trainable": sum(p.numel() for p in params)})
        times = {}
        modes = {"off": [False], "on": [True], "auto": [False, True]}[a.compile]
        for comp in modes:
            if comp:
                try:
                    res["compiled_layers"] = layers_compile(m)
                    t = time.perf_counter()
                    step()  # compilation: not timed
                    res["compile_s"] = round(time.perf_counter() - t, 1)
                except Exception as ex:
                    res["compile_error"] = f"{type(ex).__name__}: {ex}"[:160]
                    break
            times["compiled" if comp else "eager"] = best_of(step)
        k = min(times, key=times.get)
        res.update({"step_s": times[k], "tok_s": T / times[k], "compiled": k == "compiled",
                    **{f"{n}_step_s": v for n, v in times.items()}})
    elif row in ("forward", "prefill"):
        model.requires_grad_(False)
        model.eval()
        if a.compile == "on":
            res["compiled_layers"] = layers_compile(model)
        keep = 1 if row == "prefill" else 0  # logits_to_keep: 0 = every row

        def fwd():
            with torch.inference_mode():
                model(input_ids=ids, logits_to_keep=keep, use_cache=row == "prefill")
        s = best_of(fwd)
        res.update({"step_s": s, "tok_s": T / s, "compiled": a.compile == "on"})
    elif row == "decode":
        model.requires_grad_(False)
        model.eval()
        from transformers import DynamicCache
        prompt = torch.randint(0, V, (1, DEC_PROMPT), generator=gen)
        with torch.inference_mode():
            for n in (4, DEC_GEN):  # the first pass (4 tokens) warms up
                cache = DynamicCache()
                out = model(input_ids=prompt, past_key_values=cache, use_cache=True, logits_to_keep=1)
                tok = out.logits[:, -1].argmax(-1, keepdim=True)
                t = time.perf_counter()
                for _ in range(n):
                    out = model(input_ids=tok, past_key_values=cache, use_cache=True, logits_to_keep=1)
                    tok = out.logits[:, -1].argmax(-1, keepdim=True)
                dt = time.perf_counter() - t
        res.update({"tok_s": DEC_GEN / dt, "compiled": False})
    # (clearing the high-water mark clears ru_maxrss too: the whole process's peak is the larger of the two)
    run_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    res["peak_rss_mb"] = round(max(run_peak, load_peak), 1)
    if reset:
        res["run_peak_rss_mb"] = round(run_peak, 1)
    print(json.dumps(res))
    return 0


def llama_cpp_row(a):
    import llama_cpp
    n = a.threads or len(os.sched_getaffinity(0))
    t0 = time.time()
    llm = llama_cpp.Llama(model_path=a.model, n_threads=n, n_threads_batch=n, n_ctx=max(a.seq, DEC_PROMPT + DEC_GEN) + 8,
                          n_batch=max(a.seq, 512), verbose=False)
    res = {"row": a.llama_cpp_row, "T": a.seq, "llama_cpp": llama_cpp.__version__, "threads": n,
           "load_s": round(time.time() - t0, 1)}
    import random
    rnd = random.Random(1)
    V = llm.n_vocab()
    if a.llama_cpp_row == "prefill":
        ids = [rnd.randrange(V) for _ in range(a.seq)]
        best = float("inf")
        for i in range(a.warmup + a.steps):
            llm.reset()
            t = time.perf_counter()
            llm.eval(ids)
            dt = time.perf_counter() - t
            if i >= a.warmup:
                best = min(best, dt)
        res["tok_s"] = a.seq / best
    else:
        prompt = [rnd.randrange(V) for _ in range(DEC_PROMPT)]
        for n_gen in (4, DEC_GEN):
            llm.reset()
            llm.eval(prompt)
            t = time.perf_counter()
            for _ in range(n_gen):
                tok = int(llm.scores[llm.n_tokens - 1].argmax())
                llm.eval([tok])
            dt = time.perf_counter() - t
        res["tok_s"] = DEC_GEN / dt
    import resource
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(res))
    return 0


# ---- FLOPs and the table ----------------------------------------------------------------------

def gemma_shape(affix, model):
    """the shape, from `affix info` (one "key value" per line)"""
    r = subprocess.run([affix, "info", "-m", model], capture_output=True, text=True, timeout=120)
    kv = dict(l.split(None, 1) for l in r.stdout.splitlines() if len(l.split(None, 1)) == 2)
    keys = {"C": "hidden_size", "L": "num_hidden_layers", "NH": "num_attention_heads", "NKV": "num_key_value_heads",
            "HS": "head_dim", "FF": "intermediate_size", "V": "vocab_size"}
    try:
        return {k: int(kv[v].split()[0]) for k, v in keys.items()}
    except (KeyError, ValueError):
        return None


def train_flops(c, method, T):
    """2 x the multiply-adds of the step's matrix products (see the module docstring)"""
    C, L, NH, NKV, HS, FF, V = (c[k] for k in ("C", "L", "NH", "NKV", "HS", "FF", "V"))
    P = P_VIRTUAL if method in ("prompt", "prefix", "llama-adapter") else 0
    rows = T + (P if method == "prompt" else 0)
    keys = rows / 2 + (P if method in ("prefix", "llama-adapter") else 0)  # causal: half the keys on average
    lin = C * (NH * HS + 2 * NKV * HS) + NH * HS * C + 3 * C * FF  # per layer and row
    att = 2 * NH * HS * keys  # QK^T and PV per row (T <= Gemma's 512-token window: every layer alike)
    fwd = 2 * rows * (L * (lin + att) + V * C)
    bwd_in = 2 * rows * (L * (lin + 2 * att) + V * C)  # input gradients; attention's backward is two products each
    bwd_w = 2 * rows * (L * lin + V * C) if method == "full" else 0  # weight gradients (the tied embedding's too)
    return fwd + bwd_in + bwd_w


def fmt(x, nd=0):
    return "—" if x is None else f"{x:,.{nd}f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--affix", default="build/affix")
    ap.add_argument("--probe", default=None, help="build/bench/probe's JSON (FMA peak, triad bandwidth)")
    ap.add_argument("--python", default=sys.executable, help="an interpreter with torch + transformers + peft")
    ap.add_argument("--seqs", default="256,512")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--compile", choices=["off", "on", "auto"], default="auto")
    ap.add_argument("--sides", default="affix,torch,llama.cpp")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per row")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    ap.add_argument("--torch-row", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--llama-cpp-row", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seq", type=int, default=256, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.torch_row:
        return torch_row(a)
    if a.llama_cpp_row:
        return llama_cpp_row(a)

    seqs = [int(s) for s in a.seqs.split(",")]
    methods = [m for m in a.methods.split(",") if m]
    sides = a.sides.split(",")
    probe = {}
    if a.probe and os.path.exists(a.probe):
        with open(a.probe) as f:
            probe = json.load(f)
    peak = probe.get("peak_gflops")
    triad = probe.get("triad_gbs")
    have_torch = "torch" in sides and subprocess.run([a.python, "-c", "import torch, transformers, peft"],
                                                     capture_output=True).returncode == 0
    have_lcpp = "llama.cpp" in sides and subprocess.run([a.python, "-c", "import llama_cpp"],
                                                        capture_output=True).returncode == 0
    me = os.path.abspath(__file__)
    base_torch = [a.python, me, "--model", a.model, "--steps", str(a.steps), "--warmup", str(a.warmup),
                  "--threads", str(a.threads)]
    rows = []  # (row, T, {side: result})
    plan = [(m, T) for T in seqs for m in methods] + [("forward", seqs[0]), ("prefill", seqs[-1]), ("decode", DEC_PROMPT)]
    compile_choice = a.compile
    for row, T in plan:
        r = {}
        if "affix" in sides:
            r["affix"] = run_row([a.affix, "bench", "--model", a.model, "--row", row, "--seq", str(T), "--steps",
                                  str(a.steps), "--warmup", str(a.warmup)], a.timeout)
        if have_torch:
            comp = compile_choice if row in METHODS else ("on" if compile_choice == "on" else "off")
            if row == "decode":
                comp = "off"
            r["torch"] = run_row(base_torch + ["--torch-row", row, "--seq", str(T), "--compile", comp], a.timeout)
            # --compile auto: decided on the first training row PEFT can run, kept for the rest
            if compile_choice == "auto" and row in METHODS and "step_s" in r["torch"]:
                compile_choice = "on" if r["torch"].get("compiled") else "off"
        if have_lcpp and row in ("prefill", "decode"):
            r["llama.cpp"] = run_row([a.python, me, "--model", a.model, "--llama-cpp-row", row, "--seq", str(T),
                                      "--steps", str(a.steps), "--warmup", str(a.warmup), "--threads", str(a.threads)],
                                     a.timeout)
        rows.append((row, T, r))
        print(f"model_bench: {row} T={T}: " + "; ".join(f"{k} {v.get('tok_s', v.get('error'))}" for k, v in r.items()),
              file=sys.stderr, flush=True)

    c = gemma_shape(a.affix, a.model)
    print(f"## Gemma 3 270M ({os.path.basename(a.model)}), batch 1\n")
    print(f"FMA peak {fmt(peak, 1)} GFLOP/s, triad bandwidth {fmt(triad, 1)} GB/s ({probe.get('threads', '?')} threads); "
          f"PyTorch: {'transformers Gemma3ForCausalLM + PEFT, float32 (dequantized from the GGUF), sdpa' if have_torch else 'not installed'}; "
          f"llama.cpp: {'llama-cpp-python on the same GGUF' if have_lcpp else 'not installed (pip install llama-cpp-python)'}.\n")
    print("| row | T | affix tok/s | affix peak RSS MB | PyTorch tok/s | PyTorch peak RSS MB (run / with load) | "
          "affix / PyTorch | llama.cpp tok/s | affix / llama.cpp | affix of FMA peak | notes |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for row, T, r in rows:
        af, tr, lc = r.get("affix", {}), r.get("torch", {}), r.get("llama.cpp", {})
        at, tt, lt = af.get("tok_s") or None, tr.get("tok_s"), lc.get("tok_s")
        frac = None
        notes = []
        if at and peak and c and row in METHODS:
            frac = train_flops(c, row, T) * at / T / (peak * 1e9)
        if row == "decode" and at and triad and af.get("weight_bytes"):
            bound = triad * 1e9 / af["weight_bytes"]
            notes.append(f"bound {bound:.1f} tok/s ({af['weight_bytes'] / 1e6:.0f} MB read per token): {at / bound:.2f} of it")
        if tr.get("error") or af.get("error"):
            notes.append("; ".join(f"{k}: {v['error']}" for k, v in (("affix", af), ("torch", tr)) if v.get("error")))
        if tt:
            notes.append("torch compiled" if tr.get("compiled") else "torch eager" +
                         (f" (compiled {tr['compiled_step_s']:.2f} s/step vs eager {tr['eager_step_s']:.2f})"
                          if tr.get("compiled_step_s") and tr.get("eager_step_s") else ""))
        rss_t = (f"{fmt(tr.get('run_peak_rss_mb'))} / {fmt(tr.get('peak_rss_mb'))}" if tr.get("peak_rss_mb") else "—")
        print(f"| {row} | {T} | {fmt(at, 1)} | {fmt(af.get('peak_rss_mb'))} | {fmt(tt, 1)} | {rss_t} | "
              f"{fmt(at / tt if at and tt else None, 2)} | {fmt(lt, 1)} | {fmt(at / lt if at and lt else None, 2)} | "
              f"{fmt(frac, 2)} | {'; '.join(notes)} |")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"probe": probe, "rows": [{"row": row, "T": T, **r} for row, T, r in rows]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
