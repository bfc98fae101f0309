#!/usr/bin/env python3
"""Single-threaded matrix-product throughput: ldae's kernels (gemm's, through
ldae_operators::cpu::matmul) beside torch.matmul (MKL / oneDNN), at each instruction-set
level, on the shapes of training steps (tiny: 1024-row blocks of width 128 / 512; small:
1568 rows of width 384 / 1536).

    python3 benches/matmul_compare.py [--isa avx2|avx512 ...] [M,N,K ...]

Builds the `matmul` bench in the release profile. Needs: torch.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from bench_build import ISA_CAPS, bench_binary, machine_header

SHAPES = ["1024,128,128", "1024,512,128", "1024,128,512", "1568,384,384", "1568,1536,384", "1568,384,1536"]

PEER = """
import sys, time, torch
torch.set_num_threads(1)
for shape in sys.argv[1:]:
    m, n, k = map(int, shape.split(","))
    a, b = torch.randn(m, k), torch.randn(k, n)
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
    print("| M, N, K | level | ldae GFLOP/s | torch.matmul GFLOP/s | ratio |")
    print("|---|---|---|---|---|")
    for isa in args.isa or ["avx512", "avx2"]:
        env = {**os.environ, **ISA_CAPS[isa]}
        out = subprocess.run([ours, *args.shapes], env=env, check=True, capture_output=True, text=True).stdout
        mine = {f"{r['m']},{r['n']},{r['k']}": r for r in map(json.loads, out.splitlines())}
        out = subprocess.run([sys.executable, "-c", PEER, *args.shapes], env=env, check=True,
                             capture_output=True, text=True).stdout
        peer = dict(line.split() for line in out.splitlines())
        for shape in args.shapes:
            a, b = mine[shape]["gflops"], float(peer[shape])
            print(f"| {shape} | {mine[shape]['isa']} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
