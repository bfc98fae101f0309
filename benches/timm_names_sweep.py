#!/usr/bin/env python3
"""Every timm architecture name ldae runs, against timm itself: slow (about 40 minutes on 2
cores), so not part of the test command; run it after adding names.

    python3 benches/timm_names_sweep.py [--match SUBSTRING] [--ldae PATH]

For each name of timm's ViT modules (vision_transformer, deit, eva, beit) ldae is asked first
with only a config.json: a name it does not run is counted as refused and skipped. The others
are created by timm with one block (`depth=1`; every other setting the name's own), their norm
weights and biases perturbed, saved with `save_for_hf`, and `ldae features` is compared with
timm's `forward_head(forward_features(x), pre_logits=True)` on two generated JPEGs: max |diff|
/ max |value| must stay under 3e-3. Prints one line per name and a summary; exits non-zero if
any name disagrees or fails.
Needs: pip install torch timm pillow pyarrow numpy.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pyarrow.parquet as pq
import timm
import torch
from PIL import Image
from timm.data import create_transform, resolve_data_config
from timm.models import save_for_hf

sys.path.insert(0, os.path.dirname(__file__))
from bench_build import default_ldae  # noqa: E402

MODULES = ["vision_transformer", "deit", "eva", "beit"]
REFUSED = "is not a timm model ldae runs"


def ldae_run(ldae, model_dir, images, out):
    shutil.rmtree(out, ignore_errors=True)
    return subprocess.run([ldae, "features", "--checkpoint", model_dir, "--input", images,
                           "--out", out], capture_output=True, text=True,
                          env={**os.environ, "LDAE_LOG": "warn"})


def perturbed(name):
    m = timm.create_model(name, pretrained=False, num_classes=0, depth=1).eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n and n.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif n.endswith(("bias", "relative_position_bias_table")):
                p.copy_(0.05 * torch.randn_like(p))
    return m


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--match", default="", help="only names containing this")
    ap.add_argument("--ldae", default=default_ldae())
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(2)
    tmp = tempfile.mkdtemp(prefix="ldae-timm-sweep-")
    images = os.path.join(tmp, "images")
    os.makedirs(images)
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate([(500, 375), (300, 420)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            os.path.join(images, f"p{i}.jpg"), quality=95)
    names = sorted({n for m in MODULES for n in timm.list_models(module=m) if args.match in n})
    model_dir, out = os.path.join(tmp, "model"), os.path.join(tmp, "out")
    agree, refused, bad = [], [], []
    for name in names:
        shutil.rmtree(model_dir, ignore_errors=True)
        os.makedirs(model_dir)
        with open(os.path.join(model_dir, "config.json"), "w") as f:
            f.write('{"architecture": "%s"}' % name)
        open(os.path.join(model_dir, "model.safetensors"), "wb").close()
        if REFUSED in ldae_run(args.ldae, model_dir, images, out).stderr:
            refused.append(name)
            continue
        shutil.rmtree(model_dir)
        try:
            save_for_hf(perturbed(name), model_dir, safe_serialization=True)
            m = timm.create_model(f"local-dir:{model_dir}", pretrained=True).eval()
        except Exception as e:  # noqa: BLE001 (a name timm cannot build at depth 1)
            bad.append(name)
            print(f"{name:50s} timm could not build it: {str(e)[:120]}", flush=True)
            continue
        tf = create_transform(**resolve_data_config({}, model=m))
        files = sorted(os.listdir(images))
        x = torch.stack([tf(Image.open(os.path.join(images, f)).convert("RGB")) for f in files])
        with torch.no_grad():
            ref = m.forward_head(m.forward_features(x), pre_logits=True).reshape(len(files), -1).numpy()
        r = ldae_run(args.ldae, model_dir, images, out)
        if r.returncode != 0:
            bad.append(name)
            print(f"{name:50s} ldae failed: {r.stderr.strip()[-160:]}", flush=True)
            continue
        t = pq.read_table(out).to_pydict()
        rows = sorted(range(len(t["id"])), key=lambda i: str(t["id"][i]))
        got = np.array([np.asarray(t["features"][i], dtype=np.float32).reshape(-1) for i in rows])
        diff = float(np.abs(got - ref).max() / np.abs(ref).max())
        (agree if diff < 3e-3 else bad).append(name)
        print(f"{name:50s} {'agrees' if diff < 3e-3 else 'DIFFERS'}: {diff:.1e}", flush=True)
    print(f"\n{len(names)} names: {len(agree)} agree with timm, {len(bad)} do not or fail, "
          f"{len(refused)} refused by ldae (not run)")
    if refused:
        print("refused:", " ".join(refused))
    shutil.rmtree(tmp)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
