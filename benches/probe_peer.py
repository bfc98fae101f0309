#!/usr/bin/env python3
"""Probe benchmark: `ldae probe` beside scikit-learn on the same feature tables, in the same run.

    python3 benches/probe_peer.py NAME=TRAIN_DIR,TEST_DIR [NAME=...] [--ldae target/release/ldae]

For each pair of feature tables (outputs of `ldae features`), runs `ldae probe --knn` and
scikit-learn's StandardScaler + LogisticRegression (lbfgs, max_iter 1000, C = 1) on the same
rows, and prints top-1 and fit seconds of both with the time ratio. (The kNN's agreement with a
numpy reference is a test: tests/python/check_probe.py.)
Needs: pip install numpy pyarrow scikit-learn.
"""
import argparse
import json
import os
import subprocess
import tempfile
import time

import numpy as np
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler


def load(folder):
    t = pq.read_table(folder)
    x = t.column("features").combine_chunks().to_numpy_ndarray().reshape(t.num_rows, -1)
    return x, np.array(t.column("label").to_pylist())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pairs", nargs="+", help="NAME=TRAIN_DIR,TEST_DIR")
    ap.add_argument("--ldae", default="target/release/ldae")
    args = ap.parse_args()
    rows = []
    for pair in args.pairs:
        name, dirs = pair.split("=", 1)
        train, test = dirs.split(",")
        with tempfile.TemporaryDirectory() as tmp:
            out = os.path.join(tmp, "r.json")
            start = time.time()
            subprocess.run([args.ldae, "probe", "--train", train, "--test", test, "--knn",
                            "--out", out], check=True, capture_output=True)
            whole = time.time() - start
            r = json.load(open(out))
        xtr, ytr = load(train)
        xte, yte = load(test)
        start = time.time()
        scaler = StandardScaler().fit(xtr)
        clf = LogisticRegression(max_iter=1000).fit(scaler.transform(xtr), ytr)
        sk_secs = time.time() - start
        sk = (clf.predict(scaler.transform(xte)) == yte).mean()
        rows.append((name, xtr.shape[1], r["linear"]["top1"], r["linear"]["seconds"], whole,
                     r["knn"]["top1"], r["knn"]["seconds"], sk, sk_secs))
    print(f"{'features':<12} {'dim':>5} | {'ldae linear':>11} {'fit s':>7} {'cmd s':>7} | "
          f"{'ldae kNN':>8} {'s':>6} | {'sklearn':>8} {'fit s':>7} | {'time ratio':>10}")
    for n, d, lt, ls, w, kt, ks, st, ss in rows:
        print(f"{n:<12} {d:>5} | {100 * lt:>10.2f}% {ls:>7.1f} {w:>7.1f} | {100 * kt:>7.2f}% "
              f"{ks:>6.1f} | {100 * st:>7.2f}% {ss:>7.1f} | {ss / ls:>9.1f}x")
    print("time ratio = scikit-learn fit seconds / ldae linear fit seconds (grid of 9 included)")


if __name__ == "__main__":
    main()
