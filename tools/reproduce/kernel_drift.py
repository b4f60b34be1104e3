"""kernel_drift.py — how far two float32 runs of the same training drift apart when only the order
of their sums differs: the anchor's LoRA run (NLI, the first 100 steps) trained again by affix with
the AVX2 and with the AVX-512 kernel table (different vector widths, so different summation orders;
1 thread each, the same batches and seed), compared step by step with each other and with the
committed anchor (affix AVX-512 and PEFT). It answers the anchor's open question: is PEFT's growing
LoRA gap float32 noise amplified by Adam, or a real difference?

    python3 tools/reproduce/kernel_drift.py --model GGUF --affix build/affix [--out RESULTS_DIR]

Writes runs/anchor-lora/kernels/{avx2,avx512}/train_log.csv and drift.json, prints a markdown table.
A finished side (its train_log.csv has step 100) is not run again. Standard library only.
"""
import argparse
import csv
import json
import os
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
STEPS = 100


def losses(path):
    with open(path) as f:
        rows = csv.DictReader(f)
        return {int(r["step"]): float(r["loss"]) for r in rows if r.get("loss")}


def gap(a, b, upto):
    d = [abs(a[s] - b[s]) for s in range(1, upto + 1) if s in a and s in b]
    return (max(d), sum(d) / len(d)) if d else (None, None)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--affix", default="build/affix")
    ap.add_argument("--out", default=os.path.join(HERE, "results", "gemma3-270m"))
    a = ap.parse_args()
    run = os.path.join(a.out, "runs", "anchor-lora")
    with open(os.path.join(run, "done.json")) as f:
        argv = json.load(f)["argv"]
    # the anchor's own command, minus what only the anchor needs (its init dump, its batch dump)
    keep, skip = [], {"--save-init": 0, "--dump-batches": 1, "--out": 1}
    i = 1
    while i < len(argv):
        if argv[i] in skip:
            i += 1 + skip[argv[i]]
            continue
        keep.append(argv[i])
        i += 1
    logs = {}
    for k in ("avx2", "avx512"):
        d = os.path.join(run, "kernels", k)
        log = os.path.join(d, "train_log.csv")
        if not (os.path.exists(log) and STEPS in losses(log)):
            env = dict(os.environ, AFFIX_KERNELS=k, OMP_NUM_THREADS="1")
            cmd = [a.affix] + keep + ["--out", d]
            print("kernel_drift:", " ".join(cmd), f"(AFFIX_KERNELS={k})", flush=True)
            if subprocess.run(cmd, env=env, cwd=ROOT).returncode != 0:
                raise SystemExit(f"kernel_drift: the {k} run failed (does this CPU have {k}? `affix version` lists the tables)")
            for junk in ("checkpoint.safetensors", os.path.join("adapter", "adapter_model.safetensors")):
                if os.path.exists(os.path.join(d, junk)):
                    os.remove(os.path.join(d, junk))
        logs[k] = losses(log)
    logs["anchor affix"] = losses(os.path.join(run, "train", "train_log.csv"))
    logs["PEFT"] = losses(os.path.join(run, "peft", "peft_log.csv"))
    pairs = [("avx2", "avx512"), ("avx512", "anchor affix"), ("PEFT", "anchor affix")]
    res = {"steps": STEPS, "command": keep, "pairs": {}}
    lines = ["| pair | max \\|Δ loss\\| steps 1-10 | 1-30 | 1-100 | mean \\|Δ\\| 1-100 | Δ at step 1 |",
             "|---|---:|---:|---:|---:|---:|"]
    for x, y in pairs:
        g = {n: gap(logs[x], logs[y], n) for n in (10, 30, STEPS)}
        d1 = abs(logs[x][1] - logs[y][1])
        res["pairs"][f"{x} - {y}"] = {"max_10": g[10][0], "max_30": g[30][0], "max_100": g[STEPS][0],
                                      "mean_100": g[STEPS][1], "step1": d1}
        lines.append(f"| {x} − {y} | {g[10][0]:.1e} | {g[30][0]:.1e} | {g[STEPS][0]:.1e} | {g[STEPS][1]:.1e} | {d1:.1e} |")
    with open(os.path.join(run, "kernels", "drift.json"), "w") as f:
        json.dump(res, f, indent=1)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
