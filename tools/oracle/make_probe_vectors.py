#!/usr/bin/env python3
"""make_probe_vectors.py — an expected value for `affix probe` on stories260K, computed without affix's
model code: layer 0 of the probe is the input embedding, so its linear CKA between English and
Chinese XNLI premises is numpy over rows of the GGUF's token_embd table (read with the `gguf`
package), mean-pooled over each text's tokens after BOS, with the texts chosen as affix chooses
them (distinct consecutive premises, --sample N spread evenly). Token ids come from `affix tokenize`
(the tokenizer has its own tests against Hugging Face). Writes tests/data/probe/stories260k.json.
    python tools/oracle/make_probe_vectors.py [--affix build/affix]
"""
import argparse
import csv
import json
import subprocess

import numpy as np
from gguf import GGUFReader

from make_cka_vectors import cka  # numpy's feature-space formula, the one the CKA vectors use

MODEL = "tests/data/stories260K/stories260K.gguf"
FILES = {"en": ("tests/data/demo/xnli.test.en.tsv", "sentence1_en"), "zh": ("tests/data/demo/xnli.test.zh.tsv", "text_a")}
SAMPLE = 16


def premises(path, col):
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    out = []
    for r in rows:
        if not out or out[-1] != r[col]:
            out.append(r[col])
    return [out[i * len(out) // SAMPLE] for i in range(SAMPLE)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--affix", default="build/affix")
    ap.add_argument("--out", default="tests/data/probe/stories260k.json")
    a = ap.parse_args()
    r = GGUFReader(MODEL)
    t = next(t for t in r.tensors if t.name == "token_embd.weight")
    E = np.array(t.data, dtype=np.float64).reshape(int(t.shape[1]), int(t.shape[0]))  # (vocab, C)
    pooled = {}
    for lang, (path, col) in FILES.items():
        reps = []
        for text in premises(path, col):
            ids = subprocess.run([a.affix, "tokenize", "-m", MODEL], input=text.encode(), capture_output=True,
                                 check=True).stdout.split()
            ids = [int(i) for i in ids][1:]  # BOS left out, as the probe does
            reps.append(E[ids].mean(0))
        pooled[lang] = np.array(reps)
    v = cka(pooled["en"], pooled["zh"])
    with open(a.out, "w") as f:
        json.dump({"about": "affix probe --task xnli --sample 16, stories260K, layer 0 (embeddings), CKA(en, zh); "
                   "tools/oracle/make_probe_vectors.py", "sample": SAMPLE, "layer0_cka_en_zh": v}, f, indent=1)
    print(f"layer 0 CKA(en, zh) = {v:.9f}")


if __name__ == "__main__":
    main()
