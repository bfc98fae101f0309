#!/usr/bin/env python3
"""Ray Data benchmark: PCA latents of sharded Parquet images in `map_batches`, with ldae's
pipeline beside the same work in Pillow + numpy, in the same run on the same cores.

    python3 benches/ray_encode.py --images ~/data/train --pca cifar-pca.safetensors \
        [--count 10000] [--shards 4] [--dim 16] [--num-cpus 2] [--rounds 2]

IMAGES: a folder of class folders of JPEGs (CIFAR-10). The first COUNT files are written as
SHARDS Hugging Face-style Parquet shards (`image` {bytes, path}, `label`); then, alternating
for ROUNDS rounds, Ray Data reads them and maps each batch through
  ldae:   ldae.Pipeline([decode, normalize, patchify, pca_project])
  peer:   Pillow decode + bilinear resize + centre crop, numpy [-1, 1] + patchify + projection
and materialises the result. Prints images/s of each and the ratio. Needs ray[data], pillow,
numpy, pyarrow and the ldae package (pip install ./python).
"""
import argparse
import io
import os
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray
from PIL import Image

import ldae


def shards_of(root, count, shards, out):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    files = [(f"{c}/{f}", k) for k, c in enumerate(classes) for f in sorted(os.listdir(os.path.join(root, c)))]
    step = max(1, len(files) // count)
    files = files[::step][:count]
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    bounds = np.linspace(0, len(files), shards + 1).astype(int)
    for s in range(shards):
        part = files[bounds[s]:bounds[s + 1]]
        images = [{"bytes": open(os.path.join(root, p), "rb").read(), "path": p} for p, _ in part]
        pq.write_table(pa.table({"image": pa.array(images, type=image_type),
                                 "label": pa.array([l for _, l in part], pa.int64())}),
                       os.path.join(out, f"part-{s}.parquet"))
    return len(files)


class PillowPeer:
    """The same encode in Pillow + numpy: what a Ray user writes without ldae."""

    def __init__(self, pca, dim):
        model = ldae.load_pca(pca)
        self.size = model.meta["image_size"]
        self.patch = model.meta["patch_size"]
        scale = np.sqrt(model.eigenvalues[:dim].mean())  # ldae's default global latent scale
        self.weight = (model.components[:dim].T / scale).astype(np.float32)
        self.offset = (model.mean @ model.components[:dim].T / scale).astype(np.float32)

    def load(self, data):
        img = Image.open(io.BytesIO(data)).convert("RGB")
        s = self.size
        w, h = img.size
        if (w, h) != (s, s):
            k = s / min(w, h)
            img = img.resize((max(s, round(w * k)), max(s, round(h * k))), Image.BILINEAR)
            w, h = img.size
            left, top = (w - s) // 2, (h - s) // 2
            img = img.crop((left, top, left + s, top + s))
        return np.asarray(img)

    def __call__(self, batch):
        images = batch["image"].combine_chunks() if isinstance(batch, pa.Table) else batch["image"]
        data = images.field("bytes").to_pylist()
        x = np.stack([self.load(b) for b in data]).astype(np.float32) * np.float32(1 / 127.5) - 1
        n, s, p = x.shape[0], self.size, self.patch
        g = s // p
        x = x.reshape(n, g, p, g, p, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n, g * g, p * p * 3)
        z = x @ self.weight - self.offset
        return pa.table({"id": images.field("path"), "label": batch["label"],
                         "latents": pa.FixedShapeTensorArray.from_numpy_ndarray(np.ascontiguousarray(z))})


def timed(ds_fn):
    start = time.perf_counter()
    rows = sum(t.num_rows for t in ray.get(ds_fn().to_arrow_refs()))
    return rows, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--pca", required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--num-cpus", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    pca = os.path.abspath(args.pca)
    meta = ldae.load_pca(pca).meta
    pipeline = ldae.Pipeline([
        {"kind": "decode", "image_size": meta["image_size"]},
        {"kind": "patchify", "patch": meta["patch_size"]},
        {"kind": "normalize"},
        {"kind": "pca_project", "pca": pca, "dim": args.dim},
    ])
    peer = PillowPeer(pca, args.dim)
    with tempfile.TemporaryDirectory() as tmp:
        n = shards_of(args.images, args.count, args.shards, tmp)
        ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False)
        read = lambda: ray.data.read_parquet(tmp)  # noqa: E731
        runs = {"ldae": [], "peer": []}
        timed(lambda: read().map_batches(pipeline, batch_format="pyarrow", batch_size=args.batch_size))
        for r in range(args.rounds):
            for name, fn in (("ldae", pipeline), ("peer", peer)):
                rows, sec = timed(lambda: read().map_batches(fn, batch_format="pyarrow", batch_size=args.batch_size))
                assert rows == n, (name, rows, n)
                runs[name].append(n / sec)
                print(f"round {r + 1} {name}: {n / sec:.0f} images/s", flush=True)
        ray.shutdown()
    best = {k: max(v) for k, v in runs.items()}
    print(f"\n{n} images, {args.shards} shards, {args.num_cpus} Ray CPUs, batch {args.batch_size}")
    print("| map_batches | images/s (best of rounds) |\n|---|---|")
    print(f"| ldae.Pipeline | {best['ldae']:.0f} |\n| Pillow + numpy | {best['peer']:.0f} |")
    print(f"ratio ldae / peer: {best['ldae'] / best['peer']:.2f}x")


if __name__ == "__main__":
    main()
