"""Latents written by ldae open in pyarrow as fixed-shape tensors and equal numpy's projection."""
import os
import sys
import tempfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from common import cifar_like, ldae, patches_f32, read_safetensors, write_idx

ok = True
with tempfile.TemporaryDirectory() as tmp:
    images = cifar_like(300, seed=1)
    data = os.path.join(tmp, "imgs.idx")
    write_idx(data, images)
    model = os.path.join(tmp, "pca.safetensors")
    ldae("pca", "fit", "--input", data, "--image-size", 32, "--patch", 4, "--out", model)
    t, _ = read_safetensors(model)
    for scale in ["none", "global", "whiten"]:
        out = os.path.join(tmp, f"latents-{scale}")
        ldae("pca", "encode", "--input", data, "--pca", model, "--dim", 16, "--out", out,
             "--latent-scale", scale, "--batch-size", 64)
        # The folder as a user reads it: pyarrow skips the `_`-named metadata and job state.
        table = pq.read_table(out)
        typ = table.schema.field("latents").type
        print(f"{scale}: latents column type {typ}")
        ok &= isinstance(typ, pa.FixedShapeTensorType) and list(typ.shape) == [64, 16]
        z = table["latents"].combine_chunks().to_numpy_ndarray()
        ok &= z.shape == (300, 64, 16)
        ok &= table["id"].to_pylist()[:2] == ["imgs.idx:0", "imgs.idx:1"]
        # Independent projection in numpy from the saved model.
        P = patches_f32(images, 4).astype(np.float64)
        lam = t["eigenvalues"][:16]
        div = {"none": np.ones(16), "global": np.full(16, np.sqrt(lam.mean())), "whiten": np.sqrt(lam)}[scale]
        ref = (P - t["mean"]) @ t["components"][:16].T / div
        err = np.abs(z - ref).max() / np.abs(ref).max()
        print(f"{scale}: max relative difference to numpy {err:.2e}")
        ok &= err < 1e-5
        var = z.reshape(-1, 16).var(0)
        if scale == "global":
            print(f"global: average latent variance {var.mean():.4f}")
            ok &= abs(var.mean() - 1) < 0.05
        if scale == "whiten":
            ok &= np.all(np.abs(var - 1) < 0.05)
sys.exit(0 if ok else 1)
