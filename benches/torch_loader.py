#!/usr/bin/env python3
"""The training loader: ldae.torch.LatentDataset beside torchvision (ImageFolder + transforms + a
numpy PCA projection in a DataLoader), on the same images, cores and batch size, in one run.

    python3 benches/torch_loader.py --images ~/data/train --pca cifar-pca.safetensors --dim 16
    python3 benches/torch_loader.py --images ~/photos --pca pca224.safetensors --dim 32

Both sides produce the same thing per image: the decoded image resized (shorter side) and
centre-cropped to the PCA's size S, normalised as the PCA was fitted, cut into p x p patches
and projected onto the first d components ([N, d] latents, as float32 torch tensors in
batches of --batch). ldae runs its pipeline in --workers threads per stage in the training
process; torchvision runs --workers DataLoader processes. Reported: images/s over one whole
pass (start-up included on both sides), and per core (divided by --workers).
Needs: pip install torch torchvision pillow numpy, and the ldae package.
"""
import argparse
import os
import sys
import time

import numpy as np
import torch
from PIL import Image

import ldae
import ldae.torch as lt

sys.path.insert(0, os.path.dirname(__file__))
from bench_build import machine_header, scratch_dir  # noqa: E402


class Peer(torch.utils.data.Dataset):
    """torchvision's way: PIL decode, Resize + CenterCrop + ToTensor + Normalize, then numpy
    patchify and projection."""

    def __init__(self, files, meta, components, mean, dim):
        from torchvision import transforms
        s, p = meta["image_size"], meta["patch_size"]
        norm = meta["normalization"]
        if norm.get("mode") == "mean_std":
            m, sd = norm["mean"], norm["std"]
        else:
            m, sd = [0.5] * meta["channels"], [0.5] * meta["channels"]
        self.files, self.s, self.p = files, s, p
        self.tf = transforms.Compose([
            transforms.Resize(s, interpolation=transforms.InterpolationMode.BILINEAR),
            transforms.CenterCrop(s), transforms.ToTensor(), transforms.Normalize(m, sd)])
        self.basis = components[:dim].T.astype(np.float32)  # [D, d]
        self.mean = mean.astype(np.float32)

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        x = self.tf(Image.open(self.files[i]).convert("RGB")).numpy()  # [C, S, S]
        c, s, p = x.shape[0], self.s, self.p
        g = s // p
        patches = x.transpose(1, 2, 0).reshape(g, p, g, p, c).transpose(0, 2, 1, 3, 4).reshape(g * g, p * p * c)
        return torch.from_numpy((patches - self.mean) @ self.basis)


def files_of(root):
    out = []
    for dirpath, _, names in os.walk(root):
        out += [os.path.join(dirpath, n) for n in names if n.lower().endswith((".jpg", ".jpeg", ".png"))]
    return sorted(out)


def timed(make):
    """Images/s over one whole pass, from making the iterator to the last batch (a pipeline's
    prefetch and a DataLoader's worker start-up both count), and the images seen."""
    start, n = time.perf_counter(), 0
    for b in make():
        n += len(b)
    return n / (time.perf_counter() - start), n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True)
    ap.add_argument("--pca", required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--limit", type=int, help="only the first N images")
    args = ap.parse_args()
    files = files_of(args.images)[: args.limit]
    pca = ldae.load_pca(args.pca)
    meta = pca.meta
    print(machine_header())
    print(f"{len(files)} images from {args.images}; S = {meta['image_size']}, p = {meta['patch_size']}, "
          f"d = {args.dim}; batch {args.batch}; {args.workers} workers/threads")

    # ldae reads a flat list of files as a folder; give it exactly the same files.
    folder = scratch_dir("ldae-loader-")
    for i, f in enumerate(files):
        os.symlink(f, os.path.join(folder, f"{i:07d}{os.path.splitext(f)[1]}"))
    ours = lt.LatentDataset(folder, args.pca, args.dim, output="latents", batch_size=args.batch,
                            shuffle=False, threads=args.workers)
    ldae_rate, ldae_n = timed(lambda: (b["latents"] for b in ours))

    peer = Peer(files, meta, pca.components, pca.mean, args.dim)
    loader = torch.utils.data.DataLoader(peer, batch_size=args.batch, num_workers=args.workers)
    peer_rate, peer_n = timed(lambda: loader)

    print()
    print("| loader | images/s | images/s per core |")
    print("|---|---|---|")
    print(f"| ldae.torch.LatentDataset ({args.workers} threads) | {ldae_rate:.0f} | {ldae_rate / args.workers:.0f} |")
    print(f"| torchvision + numpy PCA ({args.workers} workers) | {peer_rate:.0f} | {peer_rate / args.workers:.0f} |")
    print(f"\nratio: {ldae_rate / peer_rate:.2f}x ({ldae_n} and {peer_n} images)")


if __name__ == "__main__":
    main()
