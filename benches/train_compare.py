#!/usr/bin/env python3
"""Training and encoder-inference throughput of ldae (candle) beside PyTorch, same run.

    python3 benches/train_compare.py [PRESET] [BATCH] [STEPS] [ROUNDS] [--image-size S] [--patch P] [--conditioning dit|mlp] [--isa avx2|avx512]

(`--image-size 224 --patch 16` is the paper's geometry: 196 tokens of 768 values.)

Builds the `train_step` bench in the release profile (`cargo build --release --bench
train_step`: it shares the release build's artifacts, where `cargo bench` would build a second
copy of every dependency), then alternates it and `benches/train_peer.py` ROUNDS times (default
5; each reports its best step of STEPS), so both see the same machine state, and prints the
medians and their ratio, each rate's share of the machine's measured f32 multiply-add peak at
that level (the network's GFLOP per image over the peak of the bench's threads), and the peak
resident memory of each side's training steps. Needs: pip install "./python[torch]" (the peer is ldae.torch's network).
"""
import argparse
import json
import statistics
import subprocess
import sys

from bench_build import add_isa_argument, apply_isa, bench_binary, machine_header


def last_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("preset", nargs="?", default="tiny")
    ap.add_argument("batch", nargs="?", default="128")
    ap.add_argument("steps", nargs="?", default="6")
    ap.add_argument("rounds", nargs="?", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--conditioning", choices=["dit", "mlp"], default="dit")
    add_isa_argument(ap)
    args = ap.parse_args()
    apply_isa(args.isa)
    preset, batch, steps, rounds = args.preset, args.batch, args.steps, args.rounds
    geometry = ["--image-size", str(args.image_size), "--patch", str(args.patch),
                "--conditioning", args.conditioning]
    ours = [bench_binary("train_step"), preset, batch, steps, *geometry]
    peer = [sys.executable, "benches/train_peer.py", preset, batch, steps, *geometry]
    runs = {"ldae": [], "pytorch": []}
    for _ in range(rounds):
        runs["ldae"].append(last_json(ours))
        runs["pytorch"].append(last_json(peer))
    tokens = (args.image_size // args.patch) ** 2
    params = runs["ldae"][0]["params"], runs["pytorch"][0]["params"]
    print(machine_header())
    print(f"ldae's kernels ran at: {runs['ldae'][0].get('isa', 'unknown')}; the multiply-add peak of "
          f"{runs['ldae'][0]['threads']} threads at that level, measured: "
          f"{max(r['fma_peak_gflops'] for r in runs['ldae']):.0f} GFLOP/s (f32, best of the rounds)")
    print(f"{preset} preset ({params[0]:,} parameters; PyTorch {params[1]:,}; {args.conditioning} conditioning), {args.image_size} px, patch {args.patch}: {tokens} tokens of "
          f"{args.patch * args.patch * 3} values; batch {batch}, best of {steps} steps, median of {rounds} rounds")
    print("| measure | ldae (candle) | PyTorch | ratio |")
    print("|---|---|---|---|")
    # The ceiling: the multiply-add peak of the kernels' threads at their level, measured by
    # the ldae bench (the highest of the rounds: on a shared machine a low reading is another
    # tenant's load, not a lower ceiling), and the work per image of the one network both sides
    # run.
    first = runs["ldae"][0]
    peak = max(r["fma_peak_gflops"] for r in runs["ldae"])
    for key, flops_key, name in [("train_images_per_s", "train_gflop_per_image", "training step"),
                                 ("encoder_images_per_s", "encoder_gflop_per_image", "encoder inference")]:
        a = statistics.median(r[key] for r in runs["ldae"])
        b = statistics.median(r[key] for r in runs["pytorch"])
        print(f"| {name} | {a:.4g} images/s | {b:.4g} images/s | {a / b:.2f}x |")
        shares = [f"{100 * rate * first[flops_key] / peak:.0f}% ({rate * first[flops_key]:.0f} GFLOP/s)"
                  for rate in (a, b)]
        print(f"| {name}: share of the multiply-add peak | {shares[0]} | {shares[1]} | |")
    a = max(r["train_peak_rss_mb"] for r in runs["ldae"])
    b = max(r["train_peak_rss_mb"] for r in runs["pytorch"])
    print(f"| peak resident memory of the training steps (largest of the rounds) | {a:.0f} MB | {b:.0f} MB | {a / b:.2f}x |")
    for side, rs in runs.items():
        print(f"{side} rounds (training / inference, peak memory): " + "; ".join(
            f"{r['train_images_per_s']} / {r['encoder_images_per_s']} images/s, {r['train_peak_rss_mb']} MB" for r in rs))


if __name__ == "__main__":
    main()
