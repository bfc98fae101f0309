#!/usr/bin/env python3
"""The ldae denoiser in PyTorch, for throughput comparison with `cargo bench --bench train_step`.

    python3 benches/train_peer.py [PRESET] [BATCH] [STEPS] [--image-size S] [--patch P]

Same architecture (DiT-style blocks with adaLN-Zero, exact GELU, no class token, fixed 2D sin-cos
positions, LayerNorm without affine parameters), same loss (weighted, in a D x D basis), same
optimiser (AdamW), same shapes (by default 32x32 RGB, patch 4: 64 tokens of 48 values; 224 and
16 give the paper's 196 tokens of 768). Prints one JSON line.
Needs: pip install torch numpy.
"""
import argparse
import json
import math
import sys
import time

import numpy as np
import torch
from torch import nn

PRESETS = {"tiny": (128, 3, 4), "small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}


def pos_embed(grid, width):
    q = width // 4
    omega = 1.0 / 10000 ** (np.arange(q) / q)
    rows = []
    for r in range(grid):
        for c in range(grid):
            v = []
            for p in (r, c):
                v += list(np.sin(p * omega)) + list(np.cos(p * omega))
            rows.append(v)
    return torch.tensor(np.array(rows), dtype=torch.float32)[None]


def t_embed(t, dim=256):
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half) / half)
    args = t[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    def __init__(self, w, heads, conditioning="dit"):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.qkv = nn.Linear(w, 3 * w)
        self.proj = nn.Linear(w, w)
        self.fc1 = nn.Linear(w, 4 * w)
        self.fc2 = nn.Linear(4 * w, w)
        if conditioning == "mlp":  # the paper's: a two-layer MLP of hidden width w / 4
            self.ada = nn.Sequential(nn.SiLU(), nn.Linear(w, w // 4), nn.SiLU(), nn.Linear(w // 4, 6 * w))
        else:  # DiT's
            self.ada = nn.Sequential(nn.SiLU(), nn.Linear(w, 6 * w))
        nn.init.zeros_(self.ada[-1].weight)
        nn.init.zeros_(self.ada[-1].bias)

    def attn(self, x):
        b, n, w = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, w))

    def forward(self, x, c):
        sa, ca, ga, sm, cm, gm = self.ada(c).chunk(6, -1)
        x = x + ga[:, None] * self.attn(modulate(self.norm1(x), sa, ca))
        return x + gm[:, None] * self.fc2(nn.functional.gelu(self.fc1(modulate(self.norm2(x), sm, cm))))


class Denoiser(nn.Module):
    def __init__(self, width, depth, heads, patch_dim=48, grid=8, conditioning="dit"):
        super().__init__()
        self.depth = depth
        self.embed = nn.Linear(patch_dim, width)
        self.register_buffer("pos", pos_embed(grid, width))
        self.t_mlp = nn.Sequential(nn.Linear(256, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList([Block(width, heads, conditioning) for _ in range(2 * depth)])
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.final = nn.Linear(width, patch_dim)

    def tokens(self, x, t, blocks):
        c = self.t_mlp(t_embed(t))
        h = self.embed(x) + self.pos
        for blk in self.blocks[:blocks]:
            h = blk(h, c)
        return h, c

    def forward(self, x, t):
        h, c = self.tokens(x, t, len(self.blocks))
        shift, scale = self.final_ada(c).chunk(2, -1)
        return self.final(modulate(self.norm(h), shift, scale))


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
    width, depth, heads = PRESETS[preset]
    model = Denoiser(width, depth, heads, patch_dim, grid, args.conditioning)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)
    basis_t = torch.eye(patch_dim)
    weights = torch.tensor([1.0] * 16 + [0.1] * (patch_dim - 16))
    x = torch.randn(batch, grid * grid, patch_dim)
    clean = torch.randn(batch, grid * grid, patch_dim)
    sigma = torch.rand(batch) * 1.4
    t = sigma * 706.4
    train = float("inf")
    for _ in range(steps):
        start = time.perf_counter()
        y = model(x, t)
        r = (clean - y) @ basis_t
        loss = ((r ** 2 * weights).sum(-1).mean(1) / (1 + sigma ** 2)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        train = min(train, time.perf_counter() - start)
    train_peak_mb = peak_rss_mb()  # the training steps' peak: weights, grads, moments, activations
    infer = float("inf")
    with torch.inference_mode():
        for _ in range(steps):
            start = time.perf_counter()
            f = model.tokens(x, t, depth)[0].mean(1)
            f.sum().item()
            infer = min(infer, time.perf_counter() - start)
    print(json.dumps({"preset": preset, "params": params, "batch": batch, "threads": torch.get_num_threads(),
                      "image_size": args.image_size, "patch": args.patch, "tokens": grid * grid,
                      "train_images_per_s": round(batch / train, 1), "encoder_images_per_s": round(batch / infer, 1),
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
