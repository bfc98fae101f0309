#!/usr/bin/env python3
"""Training and encoder-inference throughput of ldae (candle) beside PyTorch, same run.

    python3 benches/train_compare.py [PRESET] [BATCH] [STEPS] [ROUNDS] [--image-size S] [--patch P]

(`--image-size 224 --patch 16` is the paper's geometry: 196 tokens of 768 values.)

Alternates `cargo bench --bench train_step` and `benches/train_peer.py` ROUNDS times (default
5; each reports its best step of STEPS), so both see the same machine state, and prints the
medians and their ratio. Needs: pip install torch numpy.
"""
import argparse
import json
import statistics
import subprocess
import sys


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
    args = ap.parse_args()
    preset, batch, steps, rounds = args.preset, args.batch, args.steps, args.rounds
    geometry = ["--image-size", str(args.image_size), "--patch", str(args.patch)]
    ours = ["cargo", "bench", "--quiet", "--bench", "train_step", "--", preset, batch, steps, *geometry]
    peer = [sys.executable, "benches/train_peer.py", preset, batch, steps, *geometry]
    subprocess.run(ours[:5] + ["--no-run"], check=True)
    runs = {"ldae": [], "pytorch": []}
    for _ in range(rounds):
        runs["ldae"].append(last_json(ours))
        runs["pytorch"].append(last_json(peer))
    tokens = (args.image_size // args.patch) ** 2
    print(f"{preset} preset, {args.image_size} px, patch {args.patch}: {tokens} tokens of "
          f"{args.patch * args.patch * 3} values; batch {batch}, best of {steps} steps, median of {rounds} rounds")
    print("| measure | ldae (candle) | PyTorch | ratio |")
    print("|---|---|---|---|")
    for key, name in [("train_images_per_s", "training step"),
                      ("encoder_images_per_s", "encoder inference")]:
        a = statistics.median(r[key] for r in runs["ldae"])
        b = statistics.median(r[key] for r in runs["pytorch"])
        print(f"| {name} | {a:.0f} images/s | {b:.0f} images/s | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
