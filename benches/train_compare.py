#!/usr/bin/env python3
"""Training and encoder-inference throughput of ldae (candle) beside PyTorch, same run.

    python3 benches/train_compare.py [PRESET] [BATCH] [STEPS] [ROUNDS]

Alternates `cargo bench --bench train_step` and `benches/train_peer.py` ROUNDS times (default
5; each reports its best step of STEPS), so both see the same machine state, and prints the
medians and their ratio. Needs: pip install torch numpy.
"""
import json
import statistics
import subprocess
import sys


def last_json(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("{")][-1])


def main():
    preset = sys.argv[1] if len(sys.argv) > 1 else "tiny"
    batch = sys.argv[2] if len(sys.argv) > 2 else "128"
    steps = sys.argv[3] if len(sys.argv) > 3 else "6"
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 5
    ours = ["cargo", "bench", "--quiet", "--bench", "train_step", "--", preset, batch, steps]
    peer = [sys.executable, "benches/train_peer.py", preset, batch, steps]
    subprocess.run(ours[:5] + ["--no-run"], check=True)
    runs = {"ldae": [], "pytorch": []}
    for _ in range(rounds):
        runs["ldae"].append(last_json(ours))
        runs["pytorch"].append(last_json(peer))
    print(f"{preset} preset, batch {batch}, best of {steps} steps, median of {rounds} rounds")
    print("| measure | ldae (candle) | PyTorch | ratio |")
    print("|---|---|---|---|")
    for key, name in [("train_images_per_s", "training step"),
                      ("encoder_images_per_s", "encoder inference")]:
        a = statistics.median(r[key] for r in runs["ldae"])
        b = statistics.median(r[key] for r in runs["pytorch"])
        print(f"| {name} | {a:.0f} images/s | {b:.0f} images/s | {a / b:.2f}x |")


if __name__ == "__main__":
    main()
