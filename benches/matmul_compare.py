#!/usr/bin/env python3
"""Single-threaded matrix-product throughput: ldae's kernels (gemm's, through
ldae_operators::cpu::matmul) beside torch.matmul (MKL / oneDNN), at each instruction-set
level, on the products of training steps as each thread computes them: `tiny` (32 px, batch
128: 4096-row tiles of width 128 / 512, weight gradients over 2048-row chunks) and `small`
(224 px / 16, batch 8: 784-row tiles of width 384 / 1536, weight gradients over 1568 rows),
with the step's operand layouts.

    python3 benches/matmul_compare.py [--isa avx2|avx512 ...] [M,N,K[,AB] ...]

AB: `n` row-major, `t` stored transposed (A as K x M, B as N x K): `nt` is a linear layer's
forward (x W^T), `nn` its input gradient (g W), `tn` its weight gradient (g^T x).

Builds the `matmul` bench in the release profile. Needs: torch.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from bench_build import ISA_CAPS, bench_binary, machine_header

SHAPES = [
    # tiny: forward, input gradient, weight gradient (qkv, fc1, fc2)
    "4096,384,128,nt", "4096,512,128,nt", "4096,128,512,nt",
    "4096,128,384,nn", "4096,128,512,nn", "4096,512,128,nn",
    "384,128,2048,tn", "512,128,2048,tn", "128,512,2048,tn",
    # small: the same, each thread's half
    "784,1152,384,nt", "784,1536,384,nt", "784,384,1536,nt",
    "784,384,1152,nn", "784,384,1536,nn", "784,1536,384,nn",
    "576,384,1568,tn", "768,384,1568,tn", "192,1536,1568,tn",
]

PEER = """
import sys, time, torch
torch.set_num_threads(1)
for shape in sys.argv[1:]:
    m, n, k, *layout = shape.split(",")
    m, n, k, layout = int(m), int(n), int(k), (layout or ["nn"])[0]
    a = torch.randn(k, m).t() if layout[0] == "t" else torch.randn(m, k)
    b = torch.randn(n, k).t() if layout[1] == "t" else torch.randn(k, n)
    for _ in range(3):
        a @ b
    reps, best = max(1, int(0.05e9 / (2 * m * n * k))), float("inf")
    for _ in range(6):
        start = time.perf_counter()
        for _ in range(reps):
            a @ b
        best = min(best, (time.perf_counter() - start) / reps)
    print(f"{shape} {2 * m * n * k / best / 1e9:.1f}")
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("shapes", nargs="*", default=SHAPES)
    ap.add_argument("--isa", action="append", choices=sorted(ISA_CAPS),
                    help="levels to measure (repeatable); default: avx512 and avx2")
    args = ap.parse_args()
    ours = bench_binary("matmul")
    print(machine_header())
    print("| M, N, K, layout | level | ldae GFLOP/s | torch.matmul GFLOP/s | ratio | share of one core's peak (ldae / torch) |")
    print("|---|---|---|---|---|---|")
    for isa in args.isa or ["avx512", "avx2"]:
        env = {**os.environ, **ISA_CAPS[isa]}
        out = subprocess.run([ours, *args.shapes], env=env, check=True, capture_output=True, text=True).stdout
        mine = {r["shape"]: r for r in map(json.loads, out.splitlines())}
        out = subprocess.run([sys.executable, "-c", PEER, *args.shapes], env=env, check=True,
                             capture_output=True, text=True).stdout
        peer = dict(line.split() for line in out.splitlines())
        for shape in args.shapes:
            a, b = mine[shape]["gflops"], float(peer[shape])
            peak = mine[shape]["peak_gflops"]
            print(f"| {shape} | {mine[shape]['isa']} | {a:.1f} | {b:.1f} | {a / b:.2f}x | "
                  f"{100 * a / peak:.0f}% / {100 * b / peak:.0f}% of {peak:.0f} |")


if __name__ == "__main__":
    main()
