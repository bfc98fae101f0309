"""`ldae export --format timm` round trip: a short l-DAE run exported as a timm folder, loaded
by timm with no ldae code, gives the features `ldae features --pooling mean` gives.

The run: a patch PCA and one epoch of the tiny preset (with EMA weights, recorded as the
feature default) on generated 32x32 PNGs in two class folders. The export is loaded with
`timm.create_model("local-dir:DIR", pretrained=True)`, the photos go through its own eval
transform (`resolve_data_config` + `create_transform`), and its pooled features are compared
with ldae's: max |diff| / max |value| <= 1e-3 and per-row cosine >= 0.9999, for the default
block and for `--block 2`. The model card must carry the run's probe report.
"""
import json
import os

import numpy as np
import pyarrow.parquet as pq
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config

from common import cifar_like, ldae, scratch_dir

torch.set_num_threads(2)
TMP = scratch_dir("ldae-export-")


def write_images():
    root = os.path.join(TMP, "images")
    images = cifar_like(96, seed=4)
    for i, img in enumerate(images):
        folder = os.path.join(root, f"class{i % 2}")
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(img).save(os.path.join(folder, f"{i:03d}.png"))
    return root


def ldae_features(run, images, tag, *flags):
    out = os.path.join(TMP, f"features-{tag}")
    ldae("features", "--checkpoint", run, "--input", images, "--out", out, "--pooling", "mean",
         *flags)
    t = pq.read_table(out)
    col = t.column("features").combine_chunks()
    col = col.storage if hasattr(col, "storage") else col
    values = col.flatten().to_numpy(zero_copy_only=False).reshape(t.num_rows, -1)
    ids = t.column("id").to_pylist()
    order = np.argsort(ids)
    return [ids[i] for i in order], values[order], out


def timm_features(model_dir, images, ids):
    m = timm.create_model(f"local-dir:{model_dir}", pretrained=True).eval()
    transform = create_transform(**resolve_data_config({}, model=m))
    x = torch.stack([transform(Image.open(os.path.join(images, i)).convert("RGB")) for i in ids])
    with torch.no_grad():
        return m.forward_head(m.forward_features(x), pre_logits=True).numpy(), m


def compare(label, ref, got):
    rel = np.abs(ref - got).max() / np.abs(ref).max()
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    print(f"{label:36s} {str(ref.shape):10s} max|diff|/max|value| {rel:.2e}  min cosine {cos.min():.7f}")
    assert rel <= 1e-3, f"{label}: relative error {rel}"
    assert cos.min() >= 0.9999, f"{label}: cosine {cos.min()}"


def main():
    images = write_images()
    pca = os.path.join(TMP, "pca.safetensors")
    run = os.path.join(TMP, "run")
    ldae("pca", "fit", "--input", images, "--image-size", "32", "--patch", "4", "--out", pca)
    ldae("train", "--input", images, "--pca", pca, "--dim", "16", "--preset", "tiny",
         "--epochs", "4", "--batch-size", "8", "--lr", "0.003", "--ema", "0.9", "--feature-ema", "--out", run)

    ids, ours, table = ldae_features(run, images, "default")
    ldae("probe", "--train", table, "--test", table, "--out", os.path.join(run, "probe-self.json"))
    exported = os.path.join(TMP, "timm")
    ldae("export", "--checkpoint", run, "--format", "timm", "--out", exported)
    ref, m = timm_features(exported, images, ids)
    compare("export (block 3, EMA, t = 10)", ref, ours)
    assert not any(n.endswith("norm.weight") and not n.startswith("blocks")
                   for n, _ in m.named_parameters()), "no final norm expected"

    _, ours2, _ = ldae_features(run, images, "block2", "--block", "2")
    moved = np.abs(ours2 - ours).max() / np.abs(ours).max()
    print(f"block 3 moves the features by {moved:.2e} of their largest value")
    assert moved > 1e-2, "block 3 must matter for the comparison to test it"
    exported2 = os.path.join(TMP, "timm-block2")
    ldae("export", "--checkpoint", run, "--out", exported2, "--block", "2")
    ref2, m2 = timm_features(exported2, images, ids)
    assert len(m2.blocks) == 2, len(m2.blocks)
    compare("export --block 2", ref2, ours2)

    config = json.load(open(os.path.join(exported, "config.json")))
    assert config["pretrained_cfg"]["mean"] == [0.5, 0.5, 0.5], config["pretrained_cfg"]
    card = open(os.path.join(exported, "README.md")).read()
    assert "probe-self.json" in card and "EMA" in card, card
    print("model card: " + " | ".join(line for line in card.splitlines() if "probe-self" in line))

    # The export is itself a timm folder ldae reads: the round trip through the import.
    _, again, _ = ldae_features(exported, images, "reimport")
    compare("ldae features of the export", ours, again)
    print("timm export: OK")


if __name__ == "__main__":
    main()
