"""PCA latents of a sharded Parquet image dataset with Ray Data and ldae's pipeline.

    python examples/python/ray_encode.py SHARDS_DIR PCA.safetensors OUT_DIR [--dim 16]

SHARDS_DIR holds Parquet files with an `image` column (Hugging Face layout: a {bytes, path}
struct, or binary) and optionally `label`. Each Ray task runs the ldae pipeline on its batches
(in Rust, without copies, the GIL released); OUT_DIR gets Parquet files of `id, label, latents`
plus `error_stage, error` for rows that could not be read. Run on a local cluster by default
(`ray.init()`), or set RAY_ADDRESS to use an existing one. The PCA file must be readable on
every worker.
"""

import argparse
import json
import os
import time

import pyarrow.compute as pc
import ray

import ldae


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("shards")
    ap.add_argument("pca")
    ap.add_argument("out")
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--num-cpus", type=int, default=None)
    args = ap.parse_args()

    meta = ldae.load_pca(args.pca).meta
    pipeline = ldae.Pipeline([
        {"kind": "decode", "image_size": meta["image_size"], "channels": meta["channels"]},
        {"kind": "patchify", "patch": meta["patch_size"]},
        {"kind": "normalize"},
        {"kind": "pca_project", "pca": os.path.abspath(args.pca), "dim": args.dim},
    ])
    ray.init(num_cpus=args.num_cpus, include_dashboard=False)
    start = time.time()
    ds = ray.data.read_parquet(args.shards).map_batches(
        pipeline, batch_format="pyarrow", batch_size=args.batch_size
    )
    ds.write_parquet(args.out)
    seconds = time.time() - start
    out = ray.data.read_parquet(args.out)
    rows = out.count()
    rejected = out.filter(expr="error IS NOT NULL").count() if rows else 0
    print(json.dumps({"rows": rows, "rejected": rejected, "seconds": round(seconds, 2),
                      "images_per_second": round(rows / seconds, 1), "out": args.out}))


if __name__ == "__main__":
    main()
