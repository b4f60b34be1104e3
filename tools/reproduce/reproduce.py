#!/usr/bin/env python3
"""reproduce.py — the paper's experiment in miniature on Gemma 3 270M: `make reproduce`, `make
reproduce-quick`.

Trained on English only, do prefix-based methods (soft prompt, prefix tuning, Llama-Adapter)
transfer to other languages better than LoRA and full fine-tuning? Every number comes from
build/affix (train, eval); this script only plans the runs, keeps them resumable and writes the
report. Python 3 standard library only.

The protocol (README "Results on a real model" states it; change it only with a reason there):
  model     Gemma 3 270M base (the GGUF of `make gemma3`), no instruction tuning, no few-shot
  methods   prompt (10 virtual tokens), prefix (10 tokens, all 18 layers, PEFT's window rule),
            llama-adapter (10 tokens, all 18 layers), lora (r 4 on q,v), full; base = no training
  tasks     nli   XNLI-en dev minus a held-out slice  -> XNLI test de en ko my sw ur zh (loglik)
            qa    SQuAD v1.1 train slice (3807 q.)    -> XQuAD, 12 languages (greedy, F1/EM)
            rc    Belebele en, even passages          -> Belebele en, de on the odd passages (loglik)
            math  GSM8K train                         -> MGSM, 11 languages (off by default: budget)
  lr        per method from {3e-3, 1e-3, 3e-4} (full fine-tuning: {3e-4, 1e-4, 3e-5}) by a short
            sweep on the held-out English NLI slice; reused for every task
  batch 4, AdamW (0.9, 0.999, 1e-8, no weight decay), cosine schedule, clip 1.0, seed 42

Every run lives in OUT/runs/NAME/ with a done.json (its command, wall time, peak RSS, exit code).
A run with a done.json is never redone (unless its command changed); a training run killed midway
resumes from its last checkpoint (--save-every). The report (tables, results.json, SVG charts,
RUNS.md) is rewritten after every finished run, so a partial reproduction is already readable.

The core protocol (sweep + NLI, QA, reading) is budgeted at about 4 hours of compute on 2 cores;
REPRO_EXTRAS=1 (`make reproduce-extras`) adds the ablations, the practitioner's tries (one-token NLI
answers), the LoRA + prefix hybrid and the forgetting / CKA tables, about 1.5 hours more.

Scale knobs (environment): REPRO_TRAIN=full (every example, 2 epochs; SQuAD/Belebele/GSM8K whole),
REPRO_EVAL=N (examples per language for every task) or full, REPRO_TASKS=nli,qa,rc,math,
REPRO_METHODS=..., REPRO_DATA=DIR (another copy of tools/reproduce/data), AFFIX_THREADS / OMP_NUM_THREADS.
REPRO_ONLY=research: only the forgetting / CKA tables, for the NLI runs already done (nothing trained).
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import report  # noqa: E402  (tables, charts, RUNS.md)

METHODS = {  # name -> affix train method options
    "prompt": ["--method", "prompt", "--num-virtual-tokens", "10"],
    "prefix": ["--method", "prefix", "--num-virtual-tokens", "10"],
    "llama-adapter": ["--method", "llama-adapter", "--adapter-len", "10", "--adapter-layers", "18"],
    "lora": ["--method", "lora", "--r", "4", "--targets", "q,v"],
    "full": ["--method", "full"],
}
LR_GRID = {m: ["3e-3", "1e-3", "3e-4"] for m in METHODS}
LR_GRID["full"] = ["3e-4", "1e-4", "3e-5"]  # reason in the README: the paper's grid destroys a pretrained model's weights
ABLATIONS = {  # NLI only, prefix tuning: the paper's layer-subset and length questions
    "prefix-top6": ["--method", "prefix", "--num-virtual-tokens", "10", "--layers", "top:6"],
    "prefix-top12": ["--method", "prefix", "--num-virtual-tokens", "10", "--layers", "top:12"],
    "prefix-P5": ["--method", "prefix", "--num-virtual-tokens", "5"],
    "prefix-P20": ["--method", "prefix", "--num-virtual-tokens", "20"],
    # the paper's open question on hybrids: LoRA (r 4, q,v) and prefix (10 tokens) trained together,
    # at prefix tuning's learning rate
    "lora+prefix": ["--method", "lora+prefix", "--r", "4", "--targets", "q,v", "--num-virtual-tokens", "10"],
}
XNLI_LANGS = {  # language -> file as distributed (rows parallel across languages)
    "de": "xnli/de-xglue/test.txt", "en": "xnli/myxnli/my.genre.test.tsv", "ko": "xnli/ko-kornli/xnli.test.ko.tsv",
    "my": "xnli/myxnli/my.genre.test.tsv", "sw": "xnli/myxnli/sw.genre.test.tsv", "ur": "xnli/myxnli/ur.genre.test.tsv",
    "zh": "xnli/zh-ernie/test.tsv",
}
XQUAD_LANGS = ["ar", "de", "el", "en", "es", "hi", "ro", "ru", "th", "tr", "vi", "zh"]
MGSM_LANGS = ["bn", "de", "en", "es", "fr", "ja", "ru", "sw", "te", "th", "zh"]
NLI_HELDOUT_EVERY = 10  # every 10th English dev pair (249 of 2490, across all ten genres) is the sweep's dev set

# the scales: steps are optimizer steps of batch 4; eval = examples per language (spread evenly)
SCALES = {
    "default": dict(sweep_steps=60, sweep_dev=100, nli_epochs=1, nli_eval=120, qa_steps=80, qa_eval=30,
                    rc_steps=30, rc_eval=100, math_steps=100, math_eval=20, tasks="nli,qa,rc", ablations=True,
                    methods=",".join(METHODS)),
    "quick": dict(sweep_steps=0, sweep_dev=0, nli_epochs=0, nli_steps=100, nli_eval=40, tasks="nli", ablations=False, research=False,
                  methods="prefix,lora", lr="3e-3"),
    "full": dict(sweep_steps=150, sweep_dev=249, nli_epochs=2, nli_eval=0, qa_epochs=2, qa_eval=0, rc_epochs=2,
                 rc_eval=0, math_epochs=1, math_eval=0, tasks="nli,qa,rc,math", ablations=True, methods=",".join(METHODS)),
}
SEQ = {"nli": 256, "qa": 512, "rc": 512, "math": 512}


def log(msg):
    print(f"[reproduce {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def same_command(a, b):
    """The same run, whichever affix binary ran it and wherever the model file was cached (a run done
    on another machine, committed with its results, is not redone)."""
    def norm(argv):
        out = list(argv[1:])
        for i, x in enumerate(out[:-1]):
            if x == "-m":
                out[i + 1] = os.path.basename(out[i + 1])
        return out
    return norm(a) == norm(b)


class Runner:
    """Runs affix commands once each; done.json marks a finished run (its record)."""

    def __init__(self, out, affix):
        self.out, self.affix, self.records = out, affix, []

    def version(self):  # `affix version` of the binary that ran (one line), asked once
        if not hasattr(self, "_version"):
            try:
                self._version = subprocess.run([self.affix, "version"], capture_output=True, text=True, cwd=ROOT,
                                               timeout=60).stdout.strip().replace("\n", "; ")
            except (OSError, subprocess.SubprocessError):
                self._version = "?"
        return self._version

    def records_by_name(self):  # (see keep: names are unique)
        return {r["name"]: r for r in self.records}

    def run(self, name, argv, resumable=False):
        d = os.path.join(self.out, "runs", name)
        done = os.path.join(d, "done.json")
        if os.path.exists(done):
            with open(done) as f:
                rec = json.load(f)
            if same_command(rec["argv"], argv):
                self.keep(rec)
                return rec
            log(f"{name}: the command changed, running it again")
            shutil.rmtree(d)
        os.makedirs(d, exist_ok=True)
        full = list(argv)
        if resumable and os.path.exists(os.path.join(d, "train", "checkpoint.safetensors")):
            full += ["--resume", os.path.join(d, "train")]
            log(f"{name}: resuming from its checkpoint")
        log(f"{name}: {' '.join(full)}")
        t0 = time.time()
        with open(os.path.join(d, "stderr.txt"), "a") as err:
            p = subprocess.Popen(full, stdout=err, stderr=err, cwd=ROOT)
            _, status, ru = os.wait4(p.pid, 0)
        wall = time.time() - t0
        rc = os.waitstatus_to_exitcode(status)
        if rc < 0:
            raise SystemExit(f"{name}: killed by signal {-rc}; run again to continue")
        with open(os.path.join(d, "stderr.txt")) as f:
            lines = [l.strip() for l in f.read().replace("\r", "\n").splitlines() if l.strip()]
        rec = {"name": name, "argv": argv, "affix": self.version(), "resumed": len(full) > len(argv), "rc": rc,
               "wall_s": round(wall, 1),
               "max_rss_mb": round(ru.ru_maxrss / 1024, 1), "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
               "error": next((l for l in reversed(lines) if "error" in l), None) if rc else None}
        tmp = done + ".tmp"
        with open(tmp, "w") as f:
            json.dump(rec, f, indent=1)
        os.replace(tmp, done)
        log(f"{name}: rc {rc}, {wall:.0f} s, {rec['max_rss_mb']:.0f} MB" + (f" — {rec['error']}" if rc else ""))
        self.keep(rec)
        return rec

    def keep(self, rec):  # one record per run name (a run loaded up front and met again is not counted twice)
        self.records = [r for r in self.records if r["name"] != rec["name"]] + [rec]


def prepare_data(data, work):
    """The derived inputs, deterministic: language-named links for eval, the NLI train/dev split, the
    Belebele passage halves."""
    os.makedirs(work, exist_ok=True)

    def link(src, name):
        dst = os.path.join(work, name)
        if not os.path.lexists(dst):
            os.symlink(os.path.abspath(os.path.join(data, src)), dst)
        return dst

    files = {"xnli": [link(p, f"xnli.test.{l}.tsv") for l, p in sorted(XNLI_LANGS.items())],
             "xquad": [link(f"xquad/xquad.{l}.json", f"xquad.{l}.json") for l in XQUAD_LANGS],
             "mgsm": [link(f"mgsm/mgsm_{l}.tsv", f"mgsm_{l}.tsv") for l in MGSM_LANGS],
             "squad": [link("squad/train-v1.1.first11articles.json", "squad-train.json")],
             "gsm8k": [link("gsm8k/train.jsonl", "gsm8k-train.jsonl")]}
    # NLI: the English columns of the myXNLI dev file; every 10th row held out (the sweep's dev set)
    tr, dv = os.path.join(work, "nli-train.en.tsv"), os.path.join(work, "nli-dev.en.tsv")
    with open(os.path.join(data, "xnli/myxnli/my.genre.dev.tsv"), encoding="utf-8") as f:
        head, *rows = f.read().split("\n")
    rows = [r for r in rows if r]
    for path, keep in ((tr, lambda i: i % NLI_HELDOUT_EVERY != NLI_HELDOUT_EVERY - 1),
                       (dv, lambda i: i % NLI_HELDOUT_EVERY == NLI_HELDOUT_EVERY - 1)):
        with open(path + ".tmp", "w", encoding="utf-8") as f:
            f.write("\n".join([head] + [r for i, r in enumerate(rows) if keep(i)]) + "\n")
        os.replace(path + ".tmp", path)
    files["nli-train"], files["nli-dev"] = [tr], [dv]
    # Belebele: passages (lines) 0, 2, 4, ... train (English); 1, 3, 5, ... evaluate (en, de)
    os.makedirs(os.path.join(work, "belebele-eval"), exist_ok=True)
    for lang, half, name in (("eng", 0, "belebele-train.eng_Latn.jsonl"), ("eng", 1, "belebele-eval/eng_Latn.jsonl"),
                             ("deu", 1, "belebele-eval/deu_Latn.jsonl")):
        with open(os.path.join(data, f"belebele/{lang}_Latn.jsonl"), encoding="utf-8") as f:
            lines = [l for l in f.read().split("\n") if l]
        p = os.path.join(work, name)
        with open(p + ".tmp", "w", encoding="utf-8") as f:
            f.write("\n".join(lines[half::2]) + "\n")
        os.replace(p + ".tmp", p)
    files["belebele-train"] = [os.path.join(work, "belebele-train.eng_Latn.jsonl")]
    files["belebele"] = [os.path.join(work, "belebele-eval", f"{l}_Latn.jsonl") for l in ("deu", "eng")]
    return files


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="make reproduce-quick: XNLI, prefix vs LoRA vs base")
    ap.add_argument("--model", required=True)
    ap.add_argument("--affix", default=os.path.join(ROOT, "build", "affix"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from the finished runs")
    ap.add_argument("--anchor", metavar="PYTHON", help="only the PEFT anchor: affix's first --anchor-steps of the NLI "
                    "prefix and LoRA runs, replayed in transformers + peft by PYTHON (the oracle's interpreter)")
    ap.add_argument("--anchor-steps", type=int, default=100)
    ap.add_argument("--anchor-epoch", action="store_true", help="with --anchor: also replay the whole NLI epoch of the "
                    "main prefix and LoRA runs in PEFT and score PEFT's adapters like affix's (nli-*-peft-eval)")
    a = ap.parse_args()

    scale_name = "quick" if a.quick else ("full" if os.environ.get("REPRO_TRAIN") == "full" else "default")
    sc = dict(SCALES[scale_name])
    ev = os.environ.get("REPRO_EVAL")
    if ev:
        n = 0 if ev == "full" else int(ev)
        for k in ("nli_eval", "qa_eval", "rc_eval", "math_eval"):
            sc[k] = n
    tasks = os.environ.get("REPRO_TASKS", sc["tasks"]).split(",")
    # the extras (ablations, the practitioner's tries, the forgetting and CKA tables) run after the
    # core protocol: `make reproduce-extras` (REPRO_EXTRAS=1); `make reproduce` is the core alone
    extras = os.environ.get("REPRO_EXTRAS", "0") == "1"
    sc["ablations"] = sc["ablations"] and extras
    sc["research"] = sc.get("research", True) and extras
    only_research = os.environ.get("REPRO_ONLY") == "research"
    if only_research:
        sc["research"], sc["ablations"] = True, False
    methods = os.environ.get("REPRO_METHODS", sc["methods"]).split(",")
    for m in methods:
        if m not in METHODS:
            raise SystemExit(f"reproduce: unknown method {m!r} in REPRO_METHODS ({', '.join(METHODS)})")
    data = os.environ.get("REPRO_DATA", os.path.join(HERE, "data"))
    # the reproduction's results are committed; the quick run's are scratch (build/)
    out = a.out or (os.path.join(ROOT, "build", "reproduce", "quick") if a.quick else os.path.join(HERE, "results", "gemma3-270m"))
    # paths in the commands relative to the repository (the runs' records stay valid if it moves)
    rel = lambda p: os.path.relpath(os.path.abspath(p), ROOT) if os.path.abspath(p).startswith(ROOT + os.sep) else os.path.abspath(p)
    out, a.affix, a.model, data = rel(out), rel(a.affix), os.path.abspath(a.model), os.path.abspath(data)
    os.chdir(ROOT)
    work = "build/reproduce/data"
    files = prepare_data(data, work)
    R = Runner(out, a.affix)
    G = a.model
    common = ["--batch", "4", "--seed", "42", "--schedule", "cosine", "--clip", "1.0", "--quiet"]
    log(f"scale {scale_name}: {json.dumps(sc)}; tasks {tasks}; methods {methods}; out {out}")
    plan = {"scale": scale_name, "knobs": sc, "tasks": tasks, "methods": methods, "model": G,
            "lr_grid": {m: LR_GRID[m] for m in methods}, "nli_heldout_every": NLI_HELDOUT_EVERY}

    def write_report():
        if not a.anchor:  # (the anchor runs beside the main reproduction: its report is the main run's)
            report.write(out, plan, R.records)

    # every finished run on disk is in the report, whatever this invocation runs (REPRO_TASKS=qa must not
    # drop the NLI tables); a run met again below replaces its loaded record (Runner.keep)
    runs_dir = os.path.join(out, "runs")
    for name in sorted(os.listdir(runs_dir)) if os.path.isdir(runs_dir) and not a.anchor else []:
        p = os.path.join(runs_dir, name, "done.json")
        if os.path.exists(p):
            with open(p) as f:
                R.keep(json.load(f))
    done_tasks = {r["name"].split("-")[0] for r in R.records}
    plan["tasks"] = [t for t in ("nli", "qa", "rc", "math") if t in tasks or t in done_tasks]
    if only_research:  # the runs already done stand in for sections 1-3
        tasks = [t for t in tasks if t == "nli"]

    def n_args(n):  # examples per language, spread evenly over the file (0 = every one)
        return ["--sample", str(n)] if n else []

    def train(name, method_opts, task, data_files, lr, steps=0, epochs=0, extra=()):
        argv = [a.affix, "train", "-m", G] + method_opts + ["--task", task, "--data"] + data_files + (
            ["--lang", "en"] if task == "nli" else []) + ["--seq-len", str(SEQ[{"squad": "qa", "belebele": "rc", "gsm8k": "math"}.get(task, task)]),
            "--lr", lr, "--save-every", "50", "--out", os.path.join(out, "runs", name, "train")] + common + list(extra)
        argv += ["--max-steps", str(steps)] if steps else ["--epochs", str(epochs or 1)]
        return R.run(name, argv, resumable=True)

    def evaluate(name, task, adapter, data_files, n, scoring=None, lang=None, extra=()):
        argv = [a.affix, "eval", "-m", G] + (["--adapter", adapter] if adapter else []) + [
            "--task", task, "--data"] + data_files + n_args(n) + (["--scoring", scoring] if scoring else []) + (
            ["--lang", lang] if lang else []) + ["--out", os.path.join(out, "runs", name, "eval"), "--quiet"] + list(extra)
        if task == "xquad":
            argv += ["--max-new-tokens", "32", "--seq-len", "1024"]
        if task == "mgsm":
            argv += ["--max-new-tokens", "256", "--seq-len", "1024"]
        if task == "lm":
            argv += ["--seq-len", "512"]
        return R.run(name, argv)

    def prune(rec, keep_adapter):
        """After its evaluation, a run's large files go: the checkpoint (Adam state), and a full fine-tuning's
        weights unless kept (the main runs keep theirs)."""
        if not rec or rec["rc"] != 0:
            return
        d = rec["argv"][rec["argv"].index("--out") + 1]
        for p in [os.path.join(d, "checkpoint.safetensors")] + ([] if keep_adapter else [os.path.join(d, "adapter", "model.safetensors")]):
            if os.path.exists(p):
                os.remove(p)

    def probe(name, adapter, data_files, n):
        argv = [a.affix, "probe", "-m", G] + (["--adapter", adapter] if adapter else []) + [
            "--task", "xnli", "--data"] + data_files + n_args(n) + ["--out", os.path.join(out, "runs", name, "probe"), "--quiet"]
        return R.run(name, argv)

    def adapter_of(rec):
        return os.path.join(rec["argv"][rec["argv"].index("--out") + 1], "adapter") if rec and rec["rc"] == 0 else None

    # 1. learning rates: a short sweep on the held-out English NLI slice
    def swept_best(m):  # (accuracy, lr) of the best finished sweep run of m, or None
        best = None
        for lr in LR_GRID[m]:
            e = R.records_by_name().get(f"sweep-{m}-lr{lr}-dev")
            acc = report.primary_of(e) if e and e["rc"] == 0 else None
            if acc is not None and (best is None or acc > best[0]):
                best = (acc, lr)
        return best

    lrs = {}
    for m in methods:
        if sc.get("lr"):
            lrs[m] = sc["lr"]
            continue
        best = None
        for lr in LR_GRID[m]:
            if a.report_only:  # nothing runs: the sweep's finished records decide
                best = swept_best(m)
                break
            t = train(f"sweep-{m}-lr{lr}", METHODS[m], "nli", files["nli-train"], lr, steps=sc["sweep_steps"])
            ad = adapter_of(t)
            if ad:
                e = evaluate(f"sweep-{m}-lr{lr}-dev", "xnli", ad, files["nli-dev"], sc["sweep_dev"], "loglik", "en")
                prune(t, keep_adapter=False)
                acc = report.primary_of(e)
                if acc is not None and (best is None or acc > best[0]):
                    best = (acc, lr)
            write_report()
        lrs[m] = best[1] if best else LR_GRID[m][-1]
    report_lrs = dict(lrs)  # the report names every method's chosen rate, also those not planned here
    for m in METHODS:
        if m not in report_lrs and not sc.get("lr") and swept_best(m):
            report_lrs[m] = swept_best(m)[1]
    plan["lr"] = report_lrs
    log(f"learning rates: {lrs}")
    if a.report_only:
        write_report()
        return

    if a.anchor:  # the PEFT anchor (make reproduce-anchor): the NLI runs' first steps, both sides
        n_train = sum(1 for _ in open(files["nli-train"][0], encoding="utf-8")) - 1
        total = -(-n_train // 4)  # one epoch of batch 4: the main run's schedule
        for m in ("prefix", "lora"):
            name = f"anchor-{m}"
            t = train(name, METHODS[m], "nli", files["nli-train"], lrs[m], epochs=sc.get("nli_epochs", 1),
                      extra=["--stop-at", str(a.anchor_steps), "--save-init", "--dump-batches",
                             os.path.join(out, "runs", name, "batches.jsonl")])
            pdir = os.path.join(out, "runs", name, "peft")
            if t["rc"] == 0 and not os.path.exists(os.path.join(pdir, "anchor.json")):
                log(f"{name}: PEFT replays {a.anchor_steps} steps ({a.anchor})")
                subprocess.run([a.anchor, os.path.join(HERE, "peft_anchor.py"), "--model", G, "--run",
                                os.path.join(out, "runs", name), "--out", pdir, "--total-steps", str(total),
                                "--threads", str(os.cpu_count() or 1)], check=True, cwd=ROOT)
        # the whole epoch (--anchor-epoch): the main NLI runs (trained if not yet), PEFT on the same batches
        # from the same step-0 adapter, then PEFT's adapter scored by affix eval beside affix's own
        for m in ("prefix", "lora") if a.anchor_epoch else ():
            name = f"nli-{m}"
            batches = os.path.join(out, "runs", name, "batches.jsonl")
            t = train(name, METHODS[m], "nli", files["nli-train"], lrs[m], steps=sc.get("nli_steps", 0),
                      epochs=sc.get("nli_epochs", 1), extra=["--save-init", "--dump-batches", batches])
            if t["rc"] != 0:
                continue
            if not os.path.exists(batches):  # (not committed: the run's batches again, nothing trained)
                argv = [x for x in t["argv"] if x != "--save-init"] + ["--dump-only"]
                argv[0], argv[argv.index("--out") + 1] = a.affix, os.path.join("build", "reproduce", "dump", name)
                log(f"{name}: its batches again (--dump-only) into {batches}")
                subprocess.run(argv, check=True, cwd=ROOT)
            pdir = os.path.join(out, "runs", name, "peft")
            if not os.path.exists(os.path.join(pdir, "anchor.json")):
                log(f"{name}: PEFT replays the epoch ({a.anchor})")
                subprocess.run([a.anchor, os.path.join(HERE, "peft_anchor.py"), "--model", G, "--run",
                                os.path.join(out, "runs", name), "--out", pdir,
                                "--threads", str(os.cpu_count() or 1)], check=True, cwd=ROOT)
            evaluate(f"nli-{m}-peft-eval", "xnli", os.path.join(pdir, "adapter"), files["xnli"], sc["nli_eval"], "loglik")
        return  # (the main run's report reads runs/anchor-*/peft/anchor.json and runs/nli-*/peft/anchor.json)

    # 2. each task: the untrained base, then every method trained on English and evaluated zero-shot
    TASKS = {  # task -> (train task, train files, eval task, eval files, scoring, steps, epochs, examples/lang)
        "nli": ("nli", files["nli-train"], "xnli", files["xnli"], "loglik", sc.get("nli_steps", 0), sc.get("nli_epochs", 1), sc["nli_eval"]),
        "qa": ("squad", files["squad"], "xquad", files["xquad"], None, sc.get("qa_steps", 0), sc.get("qa_epochs", 1), sc.get("qa_eval", 0)),
        "rc": ("belebele", files["belebele-train"], "belebele", files["belebele"], "loglik", sc.get("rc_steps", 0), sc.get("rc_epochs", 1), sc.get("rc_eval", 0)),
        "math": ("gsm8k", files["gsm8k"], "mgsm", files["mgsm"], None, sc.get("math_steps", 0), sc.get("math_epochs", 1), sc.get("math_eval", 0)),
    }
    for task in tasks if not only_research else []:
        ttask, tfiles, etask, efiles, scoring, steps, epochs, n = TASKS[task]
        evaluate(f"{task}-base-eval", etask, None, efiles, n, scoring)
        write_report()
        for m in methods:
            extra = ["--save-init", "--dump-batches", os.path.join(out, "runs", f"{task}-{m}", "batches.jsonl")] \
                if task == "nli" and m in ("prefix", "lora") else []
            t = train(f"{task}-{m}", METHODS[m], ttask, tfiles, lrs[m], steps=steps, epochs=epochs, extra=extra)
            ad = adapter_of(t)
            if ad:
                evaluate(f"{task}-{m}-eval", etask, ad, efiles, n, scoring)
                prune(t, keep_adapter=task == "nli")
            write_report()

    # 3. the paper's ablations that fit: prefix on the top-k layers, prefix length (XNLI)
    if sc["ablations"] and "nli" in tasks and "prefix" in methods:
        for name, opts in ABLATIONS.items():
            t = train(f"nli-{name}", opts, "nli", files["nli-train"], lrs["prefix"], steps=sc.get("nli_steps", 0),
                      epochs=sc.get("nli_epochs", 1))
            ad = adapter_of(t)
            if ad:
                evaluate(f"nli-{name}-eval", "xnli", ad, files["xnli"], sc["nli_eval"], "loglik")
                prune(t, keep_adapter=True)
            write_report()
    # 3b. what a practitioner tries when NLI stays at chance: one-token answers (yes / maybe / no),
    #     scored by log-likelihood, for prefix tuning and LoRA
    if sc["ablations"] and "nli" in tasks:
        for m in ("prefix", "lora"):
            if m not in methods:
                continue
            t = train(f"nli-{m}-yesno", METHODS[m], "nli", files["nli-train"], lrs[m], steps=sc.get("nli_steps", 0),
                      epochs=sc.get("nli_epochs", 1), extra=["--labels", "yes-no"])
            ad = adapter_of(t)
            if ad:
                e = evaluate(f"nli-{m}-yesno-eval", "xnli", ad, files["xnli"], sc["nli_eval"], "loglik", extra=["--labels", "yes-no"])
                prune(t, keep_adapter=True)
            write_report()

    # 4. the paper's open questions (issue "research tools"): forgetting and representations, for the
    #    NLI-trained adapters: NLL per token of XQuAD contexts per language (affix eval --task lm) and
    #    linear CKA with English per layer on parallel XNLI premises (affix probe)
    if sc.get("research", True) and "nli" in tasks:
        for m in ["base"] + [m for m in methods]:
            rec = R.records_by_name().get(f"nli-{m}") if m != "base" else None
            ad = adapter_of(rec) if m != "base" else None
            if m != "base" and not ad:
                continue
            if m == "full" and not os.path.exists(os.path.join(ad, "model.safetensors")):
                # (full fine-tuning's weights, 1 GB, are not committed: on a fresh clone, rerun nli-full first)
                log(f"lm/probe for full: {ad}/model.safetensors is not here (not committed); delete runs/nli-full to retrain")
                continue
            evaluate(f"lm-{m}-eval", "lm", ad, files["xquad"], sc.get("lm_eval", 20))
            if m in ("base", "prefix", "lora", "full", "prompt", "llama-adapter"):
                probe(f"probe-{m}", ad, files["xnli"], sc.get("probe_n", 100))
            write_report()
    write_report()
    for task in tasks:
        with open(os.path.join(out, f"{task}.md")) as f:
            print(f.read())
    total = sum(r["wall_s"] for r in R.records)
    log(f"done: {len(R.records)} runs, {total / 3600:.2f} h of compute in all; report in {out}")


if __name__ == "__main__":
    main()
