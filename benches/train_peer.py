#!/usr/bin/env python3
"""The ldae denoiser in PyTorch, for throughput comparison with `cargo bench --bench train_step`.

    python3 benches/train_peer.py [PRESET] [BATCH] [STEPS] [--image-size S] [--patch P]

Same architecture (DiT-style blocks with adaLN-Zero, exact GELU, no class token, fixed 2D sin-cos
positions, LayerNorm without affine parameters), same loss (weighted, in a D x D basis), same
optimiser (AdamW), same shapes (by default 32x32 RGB, patch 4: 64 tokens of 48 values; 224 and
16 give the paper's 196 tokens of 768). Prints one JSON line.
Needs: pip install "./python[torch]" (the ldae package with torch).
"""
import argparse
import json
import sys
import time

import torch

# The network is the package's (ldae.torch, tested for parity with ldae's own train step).
from ldae.torch import PRESETS, Denoiser, pca_loss, timesteps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("preset", nargs="?", default="tiny")
    ap.add_argument("batch", nargs="?", type=int, default=128)
    ap.add_argument("steps", nargs="?", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--conditioning", choices=["dit", "mlp"], default="dit")
    args = ap.parse_args()
    preset, batch, steps = args.preset, args.batch, args.steps
    patch_dim, grid = args.patch * args.patch * 3, args.image_size // args.patch
    torch.manual_seed(0)
    assert preset in PRESETS, f"preset {preset}: one of {sorted(PRESETS)}"
    model = Denoiser.preset(preset, patch_dim, grid, args.conditioning).initialise(0)
    depth = model.config["encoder_depth"]
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    components = torch.eye(patch_dim)
    x = torch.randn(batch, grid * grid, patch_dim)
    clean = torch.randn(batch, grid * grid, patch_dim)
    sigma = torch.rand(batch) * 1.4
    t = timesteps(sigma)
    train = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        loss = pca_loss(clean, model(x, t), sigma, components, 16)
        opt.zero_grad()
        loss.backward()
        opt.step()
        train = min(train, time.perf_counter() - start)
    train_peak_mb = peak_rss_mb()  # the training steps' peak: weights, grads, moments, activations
    infer = float("inf")
    with torch.inference_mode():
        for _ in range(steps):
            start = time.perf_counter()
            f = model.features(x, t, depth)
            f.sum().item()
            infer = min(infer, time.perf_counter() - start)
    print(json.dumps({"preset": preset, "params": params, "batch": batch, "threads": torch.get_num_threads(),
                      "image_size": args.image_size, "patch": args.patch, "tokens": grid * grid,
                      "train_images_per_s": round(batch / train, 3), "encoder_images_per_s": round(batch / infer, 2),
                      "train_peak_rss_mb": round(train_peak_mb)}))


def peak_rss_mb():
    """This process's peak resident memory so far (VmHWM), in MB, as the Rust bench reads it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
