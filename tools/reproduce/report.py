"""report.py — the reproduction's report from its finished runs: one markdown table per task,
results.json, SVG charts (per-language bars per method, method means per script and family, loss
curves) and RUNS.md (every command, its wall time and peak RSS). Python 3 standard library only;
called by reproduce.py after every run, so a partial reproduction is already readable.
"""
import csv
import html
import json
import os
import platform
import random
import subprocess
import time

# Resource classes of Joshi et al. 2020 ("The State and Fate of Linguistic Diversity"): classes 4-5
# are "high", 0-3 "low". Stated here once; the README repeats it.
JOSHI = {"en": 5, "de": 5, "zh": 5, "es": 5, "fr": 5, "ja": 5, "ar": 5, "ru": 4, "ko": 4, "vi": 4, "tr": 4,
         "hi": 4, "el": 3, "ro": 3, "th": 3, "ur": 3, "bn": 3, "sw": 2, "te": 1, "my": 1}
EVAL_TASK = {"nli": "xnli", "qa": "xquad", "rc": "belebele", "math": "mgsm"}
TASK_TITLE = {"nli": "XNLI (accuracy %, log-likelihood of the label words)",
              "qa": "XQuAD (F1 %, greedy generation; zh and th character-level)",
              "rc": "Belebele (accuracy %, log-likelihood of the option letters; held-out passages)",
              "math": "MGSM (exact match %, last number of the greedy generation)"}
METHOD_ORDER = ["base", "prompt", "prefix", "llama-adapter", "lora", "full",
                "prefix-top6", "prefix-top12", "prefix-P5", "prefix-P20", "lora+prefix", "prefix-yesno", "lora-yesno",
                "prefix-peft", "lora-peft"]
COLORS = {"base": "#999999", "prompt": "#e6a000", "prefix": "#0072b2", "llama-adapter": "#009e73", "lora": "#d55e00",
          "full": "#cc79a7", "prefix-top6": "#56b4e9", "prefix-top12": "#3d8fc4", "prefix-P5": "#8fc7e8",
          "prefix-P20": "#1b4f72", "lora+prefix": "#7f3c8d", "prefix-yesno": "#003f5c", "lora-yesno": "#a33c00",
          "prefix-peft": "#6a9fc0", "lora-peft": "#e89a6a"}


def eval_results(rec):
    """results.json of an eval run (None if it failed or has none)."""
    if not rec or rec.get("rc") != 0 or "eval" not in rec["argv"]:
        return None
    out = rec["argv"][rec["argv"].index("--out") + 1]
    p = os.path.join(out, "results.json")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


def primary_of(rec):
    """The primary metric of a one-language eval run (the sweep's dev accuracy)."""
    r = eval_results(rec)
    if not r or not r["languages"]:
        return None
    return r["languages"][0][r["primary_metric"]]


def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def fmt(x, nd=1):
    return "—" if x is None else f"{x:.{nd}f}"


# Belebele names its languages FLORES-style (eng_Latn); the tables use the ISO 639-1 codes of the
# other tasks, so that English is "en" (the non-English means) and the resource classes apply
FLORES = {"eng_Latn": "en", "deu_Latn": "de", "fra_Latn": "fr", "spa_Latn": "es", "zho_Hans": "zh", "arb_Arab": "ar",
          "rus_Cyrl": "ru", "hin_Deva": "hi", "swh_Latn": "sw", "tha_Thai": "th", "vie_Latn": "vi", "tur_Latn": "tr"}


def lang_meta(recs):
    """{iso: (script, family)} from every finished eval that knows them (affix's language table)."""
    meta = {}
    for rec in recs.values():
        r = eval_results(rec) if "eval" in rec.get("argv", []) else None
        for l in (r or {}).get("languages", []):
            if l.get("script", "other") != "other":
                meta.setdefault(l["lang"], (l["script"], l.get("family", "other")))
    return meta


def task_table(task, recs):
    """{method: {"langs": {lang: {metric: value, n, script, family}}, "metric": name, ...}} of a task."""
    meta = lang_meta(recs)

    def norm(l):
        iso = FLORES.get(l["lang"], l["lang"])
        if iso == l["lang"]:
            return l
        script, family = meta.get(iso, (l.get("script"), l.get("family")))
        return {**l, "lang": iso, "script": script, "family": family}
    rows = {}
    for name, rec in recs.items():
        if not name.startswith(task + "-") or not name.endswith("-eval"):
            continue
        method = name[len(task) + 1:-len("-eval")]
        r = eval_results(rec)
        if not r:
            rows[method] = {"failed": rec.get("error") or f"exit {rec.get('rc')}"}
            continue
        rows[method] = {"metric": r["primary_metric"], "langs": {n["lang"]: n for n in map(norm, r["languages"])}}
    return rows


def summarize(row):
    """Means of a row: all languages, high/low resource, per script, per family."""
    m = row["metric"]
    L = row["langs"]
    s = {"mean": mean([v[m] for v in L.values()]),
         "high": mean([v[m] for k, v in L.items() if JOSHI.get(k, 0) >= 4]),
         "low": mean([v[m] for k, v in L.items() if JOSHI.get(k, 0) <= 3]),
         "non-en": mean([v[m] for k, v in L.items() if k != "en"])}
    for key in ("script", "family"):
        groups = {}
        for v in L.values():
            groups.setdefault(v.get(key, "?"), []).append(v[m])
        s[key] = {g: mean(xs) for g, xs in sorted(groups.items())}
    return s


def ordered(methods):
    return sorted(methods, key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99)


def markdown(task, rows, plan, lrs):
    langs = sorted({l for r in rows.values() if "langs" in r for l in r["langs"]})
    out = [f"## {TASK_TITLE[task]}", ""]
    if not langs:
        return "\n".join(out + ["(no finished evaluation yet)", ""])
    any_row = next(r for r in rows.values() if "langs" in r)
    ns = {l: any_row["langs"][l]["n"] for l in langs if l in any_row["langs"]}
    out.append("Examples per language: " + ", ".join(f"{l} {n}" for l, n in ns.items()) + ".")
    out.append("")
    head = ["method", "lr"] + langs + ["mean", "non-en", "high", "low"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + "---|" * 2 + "---:|" * (len(head) - 2))
    summ = {}
    for m in ordered(rows):
        r = rows[m]
        lr = lrs.get(m) or lrs.get(m[:-len("-yesno")] if m.endswith("-yesno") else "", "") or (
            lrs.get("prefix", "") if "prefix" in m else "")  # ablations and the hybrid: prefix's
        if "failed" in r:
            out.append(f"| {m} | {lr} | failed: {r['failed']} |" + " |" * (len(head) - 3))
            continue
        s = summ[m] = summarize(r)
        cells = [fmt(r["langs"].get(l, {}).get(r["metric"])) for l in langs]
        out.append(f"| {m} | {lr if m != 'base' else '—'} | " + " | ".join(cells) +
                   f" | {fmt(s['mean'])} | {fmt(s['non-en'])} | {fmt(s['high'])} | {fmt(s['low'])} |")
    if task == "qa":  # EM beside F1
        out += ["", "Exact match (%):", "", "| method | " + " | ".join(langs) + " | mean |", "|---|" + "---:|" * (len(langs) + 1)]
        for m in ordered(rows):
            r = rows[m]
            if "langs" in r:
                em = [r["langs"].get(l, {}).get("EM") for l in langs]
                out.append(f"| {m} | " + " | ".join(fmt(x) for x in em) + f" | {fmt(mean(em))} |")
    for key in ("script", "family"):
        groups = sorted({g for s in summ.values() for g in s[key]})
        if not groups:
            continue
        out += ["", f"Means per {key}:", "", f"| method | " + " | ".join(groups) + " |", "|---|" + "---:|" * len(groups)]
        for m in ordered(summ):
            out.append(f"| {m} | " + " | ".join(fmt(summ[m][key].get(g)) for g in groups) + " |")
    out.append("")
    return "\n".join(out)


def example_scores(rec):
    """{lang: {id: score in %}} from an eval run's predictions.jsonl: 100 x correct, or 100 x F1 (QA)."""
    if not eval_results(rec):
        return None
    p = os.path.join(rec["argv"][rec["argv"].index("--out") + 1], "predictions.jsonl")
    if not os.path.exists(p):
        return None
    by = {}
    with open(p, encoding="utf-8") as f:
        for line in f:
            j = json.loads(line)
            v = j["f1"] * 100.0 if "f1" in j else (100.0 if j.get("correct") else 0.0)
            by.setdefault(FLORES.get(j["lang"], j["lang"]), {})[j["id"]] = v
    return by


BOOT_N, BOOT_SEED = 1000, 1


def paired_bootstrap(a, b):
    """a - b, two runs' {lang: {id: score}} on the same examples: the observed difference of the mean
    over languages (all, non-English, English) and its 95% percentile interval, resampling the
    examples within each language (the same draw for both runs: paired), BOOT_N times, seeded."""
    langs = sorted(l for l in a if l in b)
    ids = {l: sorted(i for i in a[l] if i in b[l]) for l in langs}
    langs = [l for l in langs if ids[l]]
    if not langs:
        return None
    d = {l: [a[l][i] - b[l][i] for i in ids[l]] for l in langs}
    groups = {"mean": langs, "non-en": [l for l in langs if l != "en"], "en": [l for l in langs if l == "en"]}
    rng = random.Random(BOOT_SEED)
    draws = {g: [] for g in groups}
    for _ in range(BOOT_N):
        per = {}
        for l in langs:
            x = d[l]
            per[l] = sum(x[rng.randrange(len(x))] for _ in x) / len(x)
        for g, ls in groups.items():
            if ls:
                draws[g].append(sum(per[l] for l in ls) / len(ls))
    out = {}
    for g, ls in groups.items():
        if not ls:
            continue
        obs = sum(sum(d[l]) / len(d[l]) for l in ls) / len(ls)
        xs = sorted(draws[g])
        out[g] = (obs, xs[int(0.025 * BOOT_N)], xs[int(0.975 * BOOT_N) - 1])
    return out


def bootstrap_md(task, recs):
    """Each method against the base model, each prefix-based method (and the LoRA + prefix hybrid)
    against LoRA, and the PEFT anchor's adapters against affix's."""
    scores = {}
    for name, rec in recs.items():
        if name.startswith(task + "-") and name.endswith("-eval"):
            sc = example_scores(rec)
            if sc:
                scores[name[len(task) + 1:-len("-eval")]] = sc
    pairs = [(m, "base") for m in ordered(scores) if m != "base" and "base" in scores]
    pairs += [(m, "lora") for m in ("prompt", "prefix", "llama-adapter", "lora+prefix") if m in scores and "lora" in scores]
    # the PEFT anchor's adapters against affix's own (the same recipe, replayed in PEFT)
    pairs += [(m + "-peft", m) for m in ("prefix", "lora") if m + "-peft" in scores and m in scores]
    rows = []
    for m, ref in pairs:
        r = paired_bootstrap(scores[m], scores[ref])
        if r:
            cell = lambda g: f"{r[g][0]:+.1f} [{r[g][1]:+.1f}, {r[g][2]:+.1f}]" if g in r else "—"
            rows.append(f"| {m} − {ref} | {cell('mean')} | {cell('non-en')} | {cell('en')} |")
    if not rows:
        return ""
    return "\n".join(["", f"Paired bootstrap (points; 95% interval over {BOOT_N} resamples of the examples within each "
                      f"language, the same examples for both rows, seed {BOOT_SEED}); an interval that holds 0 is no "
                      "measured difference:", "", "| difference | mean | non-en | en |", "|---|---:|---:|---:|"] + rows) + "\n"


# ---- SVG ------------------------------------------------------------------------------------------

def svg_bars(title, groups, series, values, ymax=100, path=None):
    """Grouped bars: groups on x, one bar per series; values[series][group] (None = missing)."""
    W, H, L, B, T = max(640, 60 + len(groups) * (14 * len(series) + 18)), 360, 50, 60, 40
    gw = (W - L - 20) / max(1, len(groups))
    bw = (gw - 10) / max(1, len(series))
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<text x="{L}" y="20" font-size="14">{html.escape(title)}</text>']
    for k in range(0, 101, 20):
        y = H - B - (H - B - T) * k / 100
        s.append(f'<line x1="{L}" x2="{W - 20}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>')
        s.append(f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{ymax * k / 100:g}</text>')
    for gi, g in enumerate(groups):
        x0 = L + gi * gw + 5
        for si, name in enumerate(series):
            v = values.get(name, {}).get(g)
            if v is None:
                continue
            h = (H - B - T) * min(v, ymax) / ymax
            s.append(f'<rect x="{x0 + si * bw:.1f}" y="{H - B - h:.1f}" width="{bw - 1:.1f}" height="{h:.1f}" '
                     f'fill="{COLORS.get(name, "#444")}"><title>{html.escape(name)} {html.escape(g)}: {v:.1f}</title></rect>')
        s.append(f'<text x="{x0 + gw / 2 - 5:.1f}" y="{H - B + 14}" text-anchor="middle">{html.escape(g)}</text>')
    for si, name in enumerate(series):
        x = L + si * 110
        s.append(f'<rect x="{x}" y="{H - 24}" width="10" height="10" fill="{COLORS.get(name, "#444")}"/>'
                 f'<text x="{x + 14}" y="{H - 15}">{html.escape(name)}</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


def svg_lines(title, curves, path, window=20):
    """Loss curves: curves[name] = [(step, loss)]; a moving average over `window` steps, raw underneath."""
    W, H, L, B, T = 720, 360, 50, 50, 40
    pts = [p for c in curves.values() for p in c]
    if not pts:
        return
    xmax = max(p[0] for p in pts)
    ymax = max(sorted(p[1] for p in pts)[int(0.98 * (len(pts) - 1))], 1e-3)
    X = lambda x: L + (W - L - 20) * x / max(1, xmax)
    Y = lambda y: H - B - (H - B - T) * min(y, ymax) / ymax
    s = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11">',
         f'<text x="{L}" y="20" font-size="14">{html.escape(title)}</text>']
    for k in range(0, 6):
        y = ymax * k / 5
        s.append(f'<line x1="{L}" x2="{W - 20}" y1="{Y(y):.1f}" y2="{Y(y):.1f}" stroke="#ddd"/>'
                 f'<text x="{L - 6}" y="{Y(y) + 4:.1f}" text-anchor="end">{y:.2f}</text>')
    s.append(f'<text x="{W - 20}" y="{H - B + 16}" text-anchor="end">step (max {xmax})</text>')
    for i, (name, c) in enumerate(curves.items()):
        col = COLORS.get(name, "#444")
        raw = " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in c)
        sm = []
        for j in range(len(c)):
            w = c[max(0, j - window + 1):j + 1]
            sm.append((c[j][0], sum(p[1] for p in w) / len(w)))
        s.append(f'<polyline fill="none" stroke="{col}" stroke-opacity="0.25" points="{raw}"/>')
        s.append(f'<polyline fill="none" stroke="{col}" stroke-width="2" points="' +
                 " ".join(f"{X(x):.1f},{Y(y):.1f}" for x, y in sm) + '"/>')
        s.append(f'<rect x="{L + i * 110}" y="{H - 24}" width="10" height="10" fill="{col}"/>'
                 f'<text x="{L + i * 110 + 14}" y="{H - 15}">{html.escape(name)}</text>')
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


def train_curve(rec):
    if not rec or "train" not in rec["argv"]:
        return []
    p = os.path.join(rec["argv"][rec["argv"].index("--out") + 1], "train_log.csv")
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]


def anchor_table(out, recs):
    """The PEFT anchor (peft_anchor.py): affix's and PEFT's losses on the same batches from the same start —
    the first 100 steps (runs/anchor-*), and the whole NLI epoch of the main runs (runs/nli-*/peft) with
    both adapters scored by affix eval, language by language."""
    rows, epoch = {}, {}
    runs = os.path.join(out, "runs")
    for m in ("prefix", "lora"):
        for d, where in ((rows, f"anchor-{m}"), (epoch, f"nli-{m}")):
            p = os.path.join(runs, where, "peft", "anchor.json")
            if os.path.exists(p):
                with open(p) as f:
                    d[m] = json.load(f)
    if not rows and not epoch:
        return None
    md = ["## The anchor: the same training in Hugging Face PEFT", "",
          "affix's step-0 adapter and its exact batches (token ids and labels), replayed with transformers + peft "
          "(`tools/reproduce/peft_anchor.py`, torch.optim.AdamW, the same cosine schedule and clipping); the loss of "
          "every step on both sides.", "",
          "| method | run | lr | steps | max abs Δ loss | mean abs Δ loss | max relative Δ | PEFT s/step | affix s/step | PEFT / affix |",
          "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def line(m, r, run, a):
        ps, fs = r.get("peft_median_s_per_step") or r["peft_s_per_step"], r.get("affix_median_s_per_step") or r.get("affix_s_per_step")
        return (f"| {m} | {run} | {r['lr']:g} | {a['steps']} | {a['max_abs_diff']:.2e} | {a['mean_abs_diff']:.2e} | "
                f"{a['max_rel_diff']:.2e} | {ps:.2f} | {'—' if fs is None else format(fs, '.2f')} | "
                f"{'—' if not fs else format(ps / fs, '.1f')} |")
    for m, r in rows.items():
        md.append(line(m, r, "anchor (first 100)", r["first_100"]))
    for m, r in epoch.items():
        md.append(line(m, r, "main, first 100", r["first_100"]))
        md.append(line(m, r, "main, whole epoch", r["all"]))
    md += ["", "Times: medians per step where the record has them (else wall time / steps), each side on this "
           "machine, sometimes while other runs shared the 2 cores (a ratio, not a benchmark; `make bench` is the "
           "benchmark).", ""]
    side = {}
    for m in epoch:
        a, p = (eval_results(recs.get(n)) for n in (f"nli-{m}-eval", f"nli-{m}-peft-eval"))
        if a and p:
            side[m] = ({l["lang"]: l[a["primary_metric"]] for l in a["languages"]},
                       {l["lang"]: l[p["primary_metric"]] for l in p["languages"]})
    if side:
        langs = sorted({l for a, p in side.values() for l in a})
        md += ["XNLI accuracy (%) of the whole-epoch adapters, affix's and PEFT's, scored by the same `affix eval`:", "",
               "| method | side | " + " | ".join(langs) + " | mean |", "|---|---|" + "---:|" * (len(langs) + 1)]
        for m, (a, p) in side.items():
            for who, v in (("affix", a), ("PEFT", p)):
                md.append(f"| {m} | {who} | " + " | ".join(fmt(v.get(l)) for l in langs) + f" | {fmt(mean(list(v.values())))} |")
            md.append(f"| {m} | PEFT − affix | " + " | ".join(fmt(p[l] - a[l]) if l in a and l in p else "—" for l in langs) +
                      f" | {fmt(mean([p[l] - a[l] for l in langs if l in a and l in p]))} |")
        md.append("")
    return {"md": "\n".join(md), "data": {"first_100": rows, "epoch": epoch,
                                          "xnli_side_by_side": {m: {"affix": a, "peft": p} for m, (a, p) in side.items()}}}


def research_tables(recs):
    """Forgetting (NLL per token of XQuAD contexts, per language) and CKA with English per layer, for the
    base model and the NLI-trained adapters."""
    lm, probe = {}, {}
    for name, rec in recs.items():
        if name.startswith("lm-") and name.endswith("-eval"):
            r = eval_results(rec)
            if r:
                lm[name[3:-5]] = {l["lang"]: l["NLL"] for l in r["languages"]}
        if name.startswith("probe-") and rec.get("rc") == 0:
            p = os.path.join(rec["argv"][rec["argv"].index("--out") + 1], "results.json")
            if os.path.exists(p):
                with open(p) as f:
                    probe[name[6:]] = json.load(f)["probe"]["cka"]
    if not lm and not probe:
        return None
    md = []
    if lm:
        langs = sorted({l for v in lm.values() for l in v})
        base = lm.get("base", {})
        md += ["## Forgetting: NLL per token of XQuAD contexts (nats; lower = the language is modelled better)", "",
               "The adapters trained on English NLI, run as a language model on each language's XQuAD contexts "
               "(`affix eval --task lm`); Δ = mean change against the base model.", "",
               "| method | " + " | ".join(langs) + " | mean | Δ mean | Δ non-en |", "|---|" + "---:|" * (len(langs) + 3)]
        for m in ordered(lm):
            v = lm[m]
            d_all = mean([v[l] - base[l] for l in langs if l in v and l in base]) if base else None
            d_ne = mean([v[l] - base[l] for l in langs if l in v and l in base and l != "en"]) if base else None
            md.append(f"| {m} | " + " | ".join(fmt(v.get(l), 3) for l in langs) +
                      f" | {fmt(mean([v.get(l) for l in langs]), 3)} | {fmt(d_all, 3)} | {fmt(d_ne, 3)} |")
        md.append("")
    if probe:
        any_p = next(iter(probe.values()))
        langs = sorted(any_p)
        L = len(next(iter(any_p.values())))
        md += ["## Representations: linear CKA with English per layer (XNLI premises, mean over the languages)", "",
               "`affix probe`: mean-pooled residual stream per layer (0 = embeddings), CKA between English and each "
               "language on parallel premises, then the mean over " + ", ".join(langs) + ".", "",
               "| layer | " + " | ".join(ordered(probe)) + " |", "|---|" + "---:|" * len(probe)]
        for l in range(L):
            md.append(f"| {l} | " + " | ".join(fmt(mean([probe[m][g][l] for g in langs]), 3) for m in ordered(probe)) + " |")
        if "base" in probe:
            md += ["", "Base model, per language:", "", "| layer | " + " | ".join(langs) + " |", "|---|" + "---:|" * len(langs)]
            for l in range(L):
                md.append(f"| {l} | " + " | ".join(fmt(probe["base"][g][l], 3) for g in langs) + " |")
        md.append("")
    return {"md": "\n".join(md), "forgetting": lm, "probe": probe}


# ---- RUNS.md and results.json ---------------------------------------------------------------------

def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.machine()}"


def affix_version(affix):
    try:
        return subprocess.run([affix, "version"], capture_output=True, text=True, timeout=30).stdout.strip().replace("\n", "; ")
    except (OSError, subprocess.SubprocessError):
        return "?"


def git_commit(root):
    try:
        return subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def write(out, plan, records):
    recs = {r["name"]: r for r in records}
    lrs = plan.get("lr", {})
    os.makedirs(out, exist_ok=True)
    affix = records[0]["argv"][0] if records else "build/affix"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    res = {"plan": plan, "machine": machine(), "affix": affix_version(affix), "commit": git_commit(root),
           "written": time.strftime("%Y-%m-%d %H:%M:%S"), "sweep": {}, "tasks": {}, "runs": records}
    md = [f"# Gemma 3 270M: English-trained adapters, zero-shot in other languages ({plan['scale']} scale)", "",
          "Written by `tools/reproduce/reproduce.py` from the runs in `runs/` (README \"Results on a real model\" "
          "states the protocol). Numbers as measured; a dash is a run not (yet) finished.", ""]
    # the sweep
    sweep = {}
    for name, rec in recs.items():
        if name.startswith("sweep-") and name.endswith("-dev"):
            m, lr = name[len("sweep-"):-len("-dev")].rsplit("-lr", 1)
            sweep.setdefault(m, {})[lr] = primary_of(rec)
    for name, rec in recs.items():  # sweep runs that failed in training
        if name.startswith("sweep-") and not name.endswith("-dev") and rec["rc"] != 0:
            m, lr = name[len("sweep-"):].rsplit("-lr", 1)
            sweep.setdefault(m, {})[lr] = None
    if sweep:
        res["sweep"] = sweep
        k = plan["knobs"]
        md += ["## Learning rate sweep (held-out English NLI slice)", "",
               f"{k['sweep_steps']} steps of batch 4 on the English NLI training pairs, then accuracy (%) on "
               f"{k['sweep_dev'] or 'all'} of the held-out pairs (every {plan['nli_heldout_every']}th dev pair); the best "
               "is used for every task.", "", "| method | " + " | ".join(["lr 1", "lr 2", "lr 3"]) + " | chosen |",
               "|---|---:|---:|---:|---:|"]
        for m in ordered(sweep):
            cells = [f"{lr}: {fmt(sweep[m].get(lr))}" for lr in plan["lr_grid"].get(m, [])]
            md.append(f"| {m} | " + " | ".join(cells) + f" | {lrs.get(m, '—')} |")
        md.append("")
    for task in plan["tasks"]:
        rows = task_table(task, recs)
        res["tasks"][task] = {"eval": EVAL_TASK[task], "rows": {m: ({**r, "summary": summarize(r)} if "langs" in r else r)
                                                               for m, r in rows.items()}}
        tmd = markdown(task, rows, plan, lrs) + bootstrap_md(task, recs)
        md.append(tmd)
        with open(os.path.join(out, f"{task}.md"), "w") as f:
            f.write(tmd)
        ok = {m: r for m, r in rows.items() if "langs" in r}
        if ok:
            langs = sorted({l for r in ok.values() for l in r["langs"]})
            vals = {m: {l: r["langs"][l][r["metric"]] for l in r["langs"]} for m, r in ok.items()}
            svg_bars(f"{TASK_TITLE[task]} — per language", langs, ordered(ok), vals, path=os.path.join(out, f"{task}.svg"))
            groups = {}
            for m, r in ok.items():
                s = summarize(r)
                groups[m] = {**{f"script {g}": v for g, v in s["script"].items()},
                             **{f"family {g}": v for g, v in s["family"].items()}, "mean": s["mean"]}
            gnames = sorted({g for v in groups.values() for g in v})
            svg_bars(f"{EVAL_TASK[task]} — method means per script and family", gnames, ordered(ok), groups,
                     path=os.path.join(out, f"{task}-groups.svg"))
        curves = {m: train_curve(recs.get(f"{task}-{m}")) for m in METHOD_ORDER}
        curves = {m: c for m, c in curves.items() if c}
        if curves:
            svg_lines(f"training loss on English ({task}), mean over the answer tokens", curves,
                      os.path.join(out, f"{task}-loss.svg"))
    anchor = anchor_table(out, recs)
    if anchor:
        md.append(anchor["md"])
        res["anchor"] = anchor["data"]
    research = research_tables(recs)
    if research:
        md.append(research["md"])
        with open(os.path.join(out, "research.md"), "w") as f:
            f.write(research["md"])
        res["forgetting"], res["probe"] = research["forgetting"], research["probe"]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    tmp = os.path.join(out, "results.json.tmp")
    with open(tmp, "w") as f:
        json.dump(res, f, indent=1)
    os.replace(tmp, os.path.join(out, "results.json"))
    # RUNS.md
    total = sum(r["wall_s"] for r in records)
    lines = [f"# Runs ({plan['scale']} scale)", "", f"Machine: {res['machine']}. affix: {res['affix']}. Commit {res['commit']}.",
             f"{len(records)} runs, {total:.0f} s ({total / 3600:.2f} h) of wall time in all; peak RSS per run as "
             "measured by the kernel (`ru_maxrss`). Times were measured on a shared 2-core machine: another job "
             "running beside a run slows it.", "",
             "| run | wall s | peak RSS MB | exit | finished | command |", "|---|---:|---:|---:|---|---|"]
    for r in records:
        cmd = " ".join(os.path.relpath(a, root) if a.startswith(root) else a for a in r["argv"])
        note = " (resumed)" if r.get("resumed") else ""
        lines.append(f"| {r['name']}{note} | {r['wall_s']:.0f} | {r['max_rss_mb']:.0f} | {r['rc']} | {r['finished']} | `{cmd}` |")
    with open(os.path.join(out, "RUNS.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
