#!/usr/bin/env python3
"""make_cka_vectors.py — test vectors for affix's linear CKA (ref/tasks/metrics.c: cka_linear).

numpy computes CKA in feature space, the textbook formula of Kornblith et al. 2019,
    CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F)   (columns centered),
while affix computes it through the centered n x n Gram matrices: two formulations of one quantity.
Writes tests/data/probe/cka.json: cases {name, n, dx, dy, X, Y, cka} (X, Y row-major lists).
    python tools/oracle/make_cka_vectors.py [--out tests/data/probe/cka.json]
"""
import argparse
import json

import numpy as np


def cka(X, Y):
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    return float(np.linalg.norm(Yc.T @ Xc) ** 2 / (np.linalg.norm(Xc.T @ Xc) * np.linalg.norm(Yc.T @ Yc)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/data/probe/cka.json")
    a = ap.parse_args()
    rng = np.random.default_rng(2510)
    n, d = 12, 6
    X = rng.standard_normal((n, d))
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    cases = [
        ("rotated and scaled copy (1)", X, 3.0 * X @ Q + 0.5),
        ("noisy copy", X, X + 0.5 * rng.standard_normal((n, d))),
        ("independent", X, rng.standard_normal((n, d))),
        ("other width (dy 9)", X, np.tanh(X @ rng.standard_normal((d, 9)))),
        ("low rank", X, np.outer(X[:, 0], rng.standard_normal(4)) + 0.01 * rng.standard_normal((n, 4))),
    ]
    out = {"about": "linear CKA, numpy feature-space formula (tools/oracle/make_cka_vectors.py)",
           "numpy": np.__version__, "cases": []}
    for name, A, B in cases:
        out["cases"].append({"name": name, "n": n, "dx": A.shape[1], "dy": B.shape[1], "X": A.ravel().tolist(),
                             "Y": B.ravel().tolist(), "cka": cka(A, B)})
    with open(a.out, "w") as f:
        json.dump(out, f, indent=0)
    for c in out["cases"]:
        print(f"{c['name']}: {c['cka']:.12f}")


if __name__ == "__main__":
    main()
