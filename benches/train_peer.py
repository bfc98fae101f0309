#!/usr/bin/env python3
"""The ldae denoiser in PyTorch, for throughput comparison with `cargo bench --bench train_step`.

    python3 benches/train_peer.py [PRESET] [BATCH] [STEPS] [--image-size S] [--patch P] [--device cpu|cuda]

Same architecture (DiT-style blocks with adaLN-Zero, exact GELU, no class token, fixed 2D sin-cos
positions, LayerNorm without affine parameters), same loss (weighted, in a D x D basis), same
optimiser (AdamW), same shapes (by default 32x32 RGB, patch 4: 64 tokens of 48 values; 224 and
16 give the paper's 196 tokens of 768). Prints one JSON line.
On a GPU (`--device cuda`) the products run in bf16 under autocast (as ldae's `--precision
bf16`: f32 weights, optimizer state, norms and softmax), each step is timed after a
synchronize, and the JSON adds the steps' median rate after the first third and the peak GPU
memory PyTorch allocated.
Needs: pip install "./python[torch]", or only torch: without the ldae package installed, the
module python/ldae/torch.py is loaded from this checkout (it needs nothing else of ldae).
"""
import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import torch

try:
    # The network is the package's (ldae.torch, tested for parity with ldae's own train step).
    from ldae.torch import PRESETS, Denoiser, pca_loss, timesteps
except ImportError:
    _path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "ldae", "torch.py")
    _spec = importlib.util.spec_from_file_location("ldae_torch", _path)
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    PRESETS, Denoiser, pca_loss, timesteps = (_module.PRESETS, _module.Denoiser, _module.pca_loss,
                                              _module.timesteps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("preset", nargs="?", default="tiny")
    ap.add_argument("batch", nargs="?", type=int, default=128)
    ap.add_argument("steps", nargs="?", type=int, default=5)
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--conditioning", choices=["dit", "mlp"], default="dit")
    ap.add_argument("--device", default="cpu", help="cpu or cuda (bf16 autocast)")
    args = ap.parse_args()
    preset, batch, steps = args.preset, args.batch, args.steps
    patch_dim, grid = args.patch * args.patch * 3, args.image_size // args.patch
    torch.manual_seed(0)
    assert preset in PRESETS, f"preset {preset}: one of {sorted(PRESETS)}"
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    model = Denoiser.preset(preset, patch_dim, grid, args.conditioning).initialise(0).to(device)
    depth = model.config["encoder_depth"]
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    components = torch.eye(patch_dim, device=device)
    x = torch.randn(batch, grid * grid, patch_dim, device=device)
    clean = torch.randn(batch, grid * grid, patch_dim, device=device)
    sigma = torch.rand(batch, device=device) * 1.4
    t = timesteps(sigma)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=gpu)

    def timed(work):
        if gpu:
            torch.cuda.synchronize()
        start = time.perf_counter()
        work()
        if gpu:
            torch.cuda.synchronize()
        return time.perf_counter() - start

    def train_step():
        with autocast:
            predicted = model(x, t)
        loss = pca_loss(clean, predicted.float(), sigma, components, 16)
        opt.zero_grad()
        loss.backward()
        opt.step()

    train = [timed(train_step) for _ in range(steps)]
    # The training steps' peak: weights, grads, moments, activations.
    train_peak_mb = torch.cuda.max_memory_allocated() / 2**20 if gpu else peak_rss_mb()

    def infer_step():
        with torch.inference_mode(), autocast:
            model.features(x, t, depth).float().sum().item()

    infer = [timed(infer_step) for _ in range(steps)]
    after_warmup = train[len(train) // 3:]
    print(json.dumps({"preset": preset, "params": params, "batch": batch, "threads": torch.get_num_threads(),
                      "device": str(device), "image_size": args.image_size, "patch": args.patch,
                      "tokens": grid * grid, "train_images_per_s": round(batch / min(train), 3),
                      "train_images_per_s_median": round(batch / statistics.median(after_warmup), 3),
                      "encoder_images_per_s": round(batch / min(infer), 2),
                      "train_peak_rss_mb" if not gpu else "train_peak_gpu_mb": round(train_peak_mb)}))


def peak_rss_mb():
    """This process's peak resident memory so far (VmHWM), in MB, as the Rust bench reads it."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


if __name__ == "__main__":
    main()
