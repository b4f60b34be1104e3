#!/usr/bin/env python3
"""peft_anchor.py — the reproduction's anchor: the same training in Hugging Face PEFT + transformers.

For an affix training run made with `--save-init --dump-batches FILE` (reproduce.py does this for
prefix tuning and LoRA on NLI), this replays the run in PEFT on transformers' Gemma3ForCausalLM (the
same GGUF, dequantized by transformers to float32, eager attention):
  * the same starting adapter: affix's own initial adapter (TRAIN/adapter-init, PEFT format, step 0);
  * the same examples in the same order: the token ids and labels of every micro-batch that affix
    trained on (batches.jsonl; right padding, attention mask 1 on the real tokens);
  * the same update: torch.optim.AdamW (betas 0.9/0.999, eps 1e-8, the run's weight decay), the
    run's learning rate with transformers' cosine schedule (no warmup unless the run had one),
    clip_grad_norm_ at the run's --clip, loss = mean over the answer tokens (HF's labels, −100 elsewhere).
It writes OUT/peft_log.csv (step, loss, affix's loss, difference, seconds), OUT/adapter (save_pretrained:
affix eval reads it, so both adapters are scored by the same evaluator) and OUT/anchor.json (the
agreement over the first 100 steps and over the run, wall time per step on each side).

Needs the pinned oracle stack (tools/oracle/requirements.txt): torch, transformers, peft, gguf.
  python tools/reproduce/peft_anchor.py --model GGUF --run RUN_DIR --out OUT [--steps N] [--threads 2]
RUN_DIR is the run's folder in results/.../runs/ (it holds train/ and batches.jsonl).
"""
import argparse
import csv
import json
import os
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the Gemma 3 GGUF affix trained on")
    ap.add_argument("--run", required=True, help="the affix run folder (train/, batches.jsonl)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--steps", type=int, default=0, help="replay only the first N steps (0 = all)")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "0") or 0))
    ap.add_argument("--total-steps", type=int, default=0,
                    help="the run's schedule length when it stopped early (--stop-at); default: its last logged step")
    a = ap.parse_args()

    import torch
    import transformers
    import peft
    from peft import PeftConfig, get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import Gemma3ForCausalLM

    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    done = json.load(open(os.path.join(a.run, "done.json")))
    argv = done["argv"]

    def opt(name, default):
        return argv[argv.index(name) + 1] if name in argv else default

    lr, clip, wd = float(opt("--lr", "1e-3")), float(opt("--clip", "1.0")), float(opt("--weight-decay", "0"))
    warmup, schedule = int(opt("--warmup", "0")), opt("--schedule", "cosine")
    train_dir = opt("--out", None)
    with open(os.path.join(train_dir, "train_log.csv")) as f:
        affix_log = {int(r["step"]): r for r in csv.DictReader(f)}
    total = a.total_steps or max(affix_log)  # the run's schedule length (a finished run: every step is logged)
    steps = {}
    with open(os.path.join(a.run, "batches.jsonl")) as f:
        for line in f:
            b = json.loads(line)
            steps.setdefault(b["step"], []).append(b)
    n_steps = min(a.steps or max(affix_log), total, max(affix_log))

    d, g = os.path.split(os.path.abspath(a.model))
    base = Gemma3ForCausalLM.from_pretrained(d, gguf_file=g, dtype=torch.float32, attn_implementation="eager")
    # a trainable PEFT model of the saved config, holding affix's step-0 tensors
    init = os.path.join(train_dir, "adapter-init")
    cfg = PeftConfig.from_pretrained(init)
    cfg.inference_mode = False
    model = get_peft_model(base, cfg)
    want = load_file(os.path.join(init, "adapter_model.safetensors"))
    set_peft_model_state_dict(model, want)
    got = get_peft_model_state_dict(model)  # what PEFT would save now: must be affix's tensors, bit for bit
    if set(got) != set(want) or any(not torch.equal(got[k].float(), want[k].float()) for k in want):
        raise SystemExit(f"peft_anchor: {init}: PEFT does not hold the saved tensors after loading "
                         f"(saved {sorted(want)[:3]}, held {sorted(got)[:3]})")
    model.train()  # Gemma 3 has no dropout on these paths; PEFT's dropouts are 0 in affix's configs
    params = [p for p in model.parameters() if p.requires_grad]
    optim = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    sched = {"cosine": transformers.get_cosine_schedule_with_warmup, "linear": transformers.get_linear_schedule_with_warmup}
    sched = sched[schedule](optim, warmup, total) if schedule in sched else transformers.get_constant_schedule_with_warmup(optim, warmup)
    pad = base.config.eos_token_id if isinstance(base.config.eos_token_id, int) else base.config.eos_token_id[0]

    os.makedirs(a.out, exist_ok=True)
    rows, t_all = [], time.time()
    for s in range(1, n_steps + 1):
        t0 = time.time()
        mbs = steps[s]
        n_targets = sum(1 for mb in mbs for row in mb["labels"] for t, l in enumerate(row) if t > 0 and l != -100)
        optim.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for mb in mbs:
            T = max(len(r) for r in mb["ids"])
            ids = torch.tensor([r + [pad] * (T - len(r)) for r in mb["ids"]])
            mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in mb["ids"]])
            labels = torch.tensor([r + [-100] * (T - len(r)) for r in mb["labels"]])
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            # sum of the answer tokens' cross-entropy over the step's answer tokens (HF num_items_in_batch)
            lp = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                                   ignore_index=-100, reduction="sum")
            (lp / n_targets).backward()
            loss_sum += lp.item()
        if clip > 0:
            torch.nn.utils.clip_grad_norm_(params, clip)
        optim.step()
        sched.step()
        loss = loss_sum / n_targets
        ref = float(affix_log[s]["loss"]) if s in affix_log else float("nan")
        rows.append((s, loss, ref, loss - ref, time.time() - t0))
        if s % 10 == 0 or s == n_steps:
            print(f"peft_anchor: step {s}/{n_steps} loss {loss:.6f} affix {ref:.6f} diff {loss - ref:+.2e}", flush=True)
    wall = time.time() - t_all
    with open(os.path.join(a.out, "peft_log.csv"), "w") as f:
        f.write("step,loss,affix_loss,diff,seconds\n")
        for r in rows:
            f.write(f"{r[0]},{r[1]:.6f},{r[2]:.6f},{r[3]:+.3e},{r[4]:.3f}\n")
    model.save_pretrained(os.path.join(a.out, "adapter"))

    def agree(k):
        d = [abs(r[3]) for r in rows[:k]]
        rel = [abs(r[3]) / max(abs(r[2]), 1e-12) for r in rows[:k]]
        return {"steps": len(d), "max_abs_diff": max(d), "mean_abs_diff": sum(d) / len(d), "max_rel_diff": max(rel)}

    # per-step times, medians (robust to another job sharing the cores for part of a run): affix's from
    # its log (tokens of the step / its tokens_per_s), PEFT's measured here
    def median(xs):
        xs = sorted(xs)
        return (xs[len(xs) // 2] + xs[(len(xs) - 1) // 2]) / 2 if xs else None
    affix_dt = []
    for s in range(1, n_steps + 1):
        tps = float(affix_log[s].get("tokens_per_s") or 0) if s in affix_log else 0
        if tps > 0:
            affix_dt.append(sum(len(r) for mb in steps[s] for r in mb["ids"]) / tps)
    affix_s = None
    if done.get("wall_s") and n_steps == max(affix_log):
        affix_s = done["wall_s"] / n_steps  # (includes affix's model load, as peft_s includes nothing but the steps)
    res = {"run": a.run, "method": json.load(open(os.path.join(train_dir, "adapter-init", "adapter_config.json")))["peft_type"],
           "lr": lr, "steps": n_steps, "schedule_steps": total, "first_100": agree(100), "all": agree(len(rows)),
           "peft_s_per_step": wall / n_steps, "affix_s_per_step": affix_s,
           "peft_over_affix_time": (wall / n_steps) / affix_s if affix_s else None,
           "affix_median_s_per_step": median(affix_dt), "peft_median_s_per_step": median([r[4] for r in rows]),
           "versions": {"torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
           "threads": torch.get_num_threads()}
    with open(os.path.join(a.out, "anchor.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    sys.exit(main())
