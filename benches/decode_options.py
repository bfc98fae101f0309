#!/usr/bin/env python3
"""Accuracy effect of the JPEG decode options (`decode`'s jpeg_region and jpeg_dct_scaling).

    python3 benches/decode_options.py --cifar ~/data/train --photos ~/photos [--work DIR]
        [--per-class 1000] [--test-per-class 200] [--epochs 2]

Each option is compared with the exact mode (`jpeg_region = false`, `jpeg_dct_scaling =
false`: every JPEG decoded whole, at full size, as Pillow does):

- CIFAR-10 (class folders of 32x32 JPEGs): the images are upscaled 4x (bicubic) and centred
  on a 160x128 grey canvas, saved as JPEG (quality 90), so that the centre crop is the upscaled
  image, the region decode has columns to leave out and the DCT scaling decodes at 1/4. A
  `tiny` l-DAE is trained on the original 32 px images (PCA fit, `ldae train`); its features of
  the upscaled copies, decoded with each option, are probed (`ldae probe --knn`: linear and kNN
  top-1, trained on the first `--per-class` files of each class, scored on the last
  `--test-per-class`).
- Photos (a flat folder, e.g. 500 ImageNet validation JPEGs): PCA latents at 224 px / patch 16
  (d = 32, PCA fitted on the photos in the exact mode) of the photos as they are and of copies
  upscaled 2x (so the DCT scaling decodes at 1/2), with each option: the cosine between each
  photo's latents and the exact mode's, and how often a photo's nearest other photo (cosine of
  the mean latent) stays the same.

Prints a Markdown table per dataset. Needs numpy, pyarrow and Pillow; builds nothing: `ldae`
is taken from PATH or `$CARGO_TARGET_DIR/release/ldae` (`cargo build --release` first).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

# tag (file names) -> (label, decode settings)
OPTIONS = {
    "exact": ("exact (whole image, full size)", {"jpeg_region": False, "jpeg_dct_scaling": False}),
    "region": ("jpeg_region (default)", {"jpeg_region": True, "jpeg_dct_scaling": False}),
    "region-dct": ("jpeg_region + jpeg_dct_scaling", {"jpeg_region": True, "jpeg_dct_scaling": True}),
}


def ldae_binary():
    found = shutil.which("ldae")
    if found:
        return found
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path(__file__).resolve().parents[1] / "target"))
    path = target / "release" / "ldae"
    if not path.exists():
        sys.exit(f"no ldae on PATH and no {path}: run cargo build --release first")
    return str(path)


LDAE = ldae_binary()


def ldae(*args):
    done = subprocess.run([LDAE, *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"ldae {' '.join(map(str, args))} failed:\n{done.stderr}")


def with_options(command, spec_path, options):
    """Print the spec of `command`, set the decode options, run it with `ldae run`."""
    spec = subprocess.run([LDAE, *map(str, command), "--print-spec"], check=True,
                          capture_output=True, text=True).stdout
    lines = []
    for line in spec.splitlines():
        key = line.split("=")[0].strip()
        if key in options:
            line = f"{key} = {str(options[key]).lower()}"
        lines.append(line)
    assert sum(line.split("=")[0].strip() in options for line in lines) == len(options), spec
    Path(spec_path).write_text("\n".join(lines) + "\n")
    ldae("run", spec_path)


def vectors(folder, name):
    """Rows of `name` (a tensor or list column) as a [rows, values] float64 array, sorted by id."""
    table = pq.read_table(folder).sort_by("id")
    col = table.column(name).combine_chunks()
    if hasattr(col, "to_numpy_ndarray"):
        values = col.to_numpy_ndarray()
    else:
        values = np.array(col.to_pylist())
    return np.asarray(values, dtype=np.float64).reshape(len(table), -1)


def cosine_rows(a, b):
    num = (a * b).sum(1)
    return num / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def relative_diff(a, b):
    """Each row's ||a - b|| / ||b||."""
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def upscale_cifar(src, dst, per_class, test_per_class):
    for split in ("train", "test"):
        for cls in sorted(p.name for p in Path(src).iterdir() if p.is_dir()):
            files = sorted((Path(src) / cls).iterdir())
            chosen = files[:per_class] if split == "train" else files[-test_per_class:]
            out = Path(dst) / split / cls
            out.mkdir(parents=True, exist_ok=True)
            for f in chosen:
                big = Image.open(f).convert("RGB").resize((128, 128), Image.BICUBIC)
                canvas = Image.new("RGB", (160, 128), (128, 128, 128))
                canvas.paste(big, (16, 0))
                canvas.save(out / (f.stem + ".jpg"), quality=90)


def upscale_photos(src, dst):
    Path(dst).mkdir(parents=True, exist_ok=True)
    for f in sorted(Path(src).iterdir()):
        im = Image.open(f).convert("RGB")
        im.resize((im.width * 2, im.height * 2), Image.LANCZOS).save(Path(dst) / (f.stem + ".jpg"), quality=90)


def probe(train, test, out):
    ldae("probe", "--train", train, "--test", test, "--knn", "--out", out)
    return json.loads(Path(out).read_text())


def cifar(args, work):
    up = work / "cifar-up"
    if not (up / "test").exists():
        print("upscaling CIFAR-10 copies ...", file=sys.stderr)
        upscale_cifar(args.cifar, up, args.per_class, args.test_per_class)
    run = work / "run"
    if not (run / "config.json").exists():
        print("training the tiny model ...", file=sys.stderr)
        ldae("pca", "fit", "--input", args.cifar, "--image-size", 32, "--patch", 4,
             "--out", work / "cifar-pca.safetensors", "--overwrite", "-q")
        ldae("train", "--input", args.cifar, "--pca", work / "cifar-pca.safetensors", "--dim", 16,
             "--preset", "tiny", "--epochs", args.epochs, "--batch-size", 128, "--lr", "1e-3",
             "--warmup-epochs", "0.2", "--out", run, "-q")
    rows = []
    exact = {}
    for tag, (name, options) in OPTIONS.items():
        feats = {}
        for split in ("train", "test"):
            out = work / f"cifar-{tag}-{split}"
            with_options(["features", "--input", up / split, "--checkpoint", run, "--out", out,
                          "--overwrite", "-q"], work / f"cifar-{tag}-{split}.toml", options)
            feats[split] = vectors(out, "features")
        res = probe(work / f"cifar-{tag}-train", work / f"cifar-{tag}-test", work / f"probe-{tag}.json")
        if not exact:
            exact = feats
        cos = cosine_rows(np.concatenate([feats["train"], feats["test"]]),
                          np.concatenate([exact["train"], exact["test"]]))
        rel = relative_diff(np.concatenate([feats["train"], feats["test"]]),
                            np.concatenate([exact["train"], exact["test"]]))
        rows.append((name, res, cos, rel))
    print(f"\nCIFAR-10 upscaled 4x onto 160x128 JPEGs, decoded to 32 px: tiny l-DAE ({args.epochs} "
          f"epochs on the 50k originals), probes trained on {10 * args.per_class}, scored on "
          f"{10 * args.test_per_class}\n")
    print("| decode | linear top-1 | kNN top-1 | cosine to exact: mean / min | relative difference: mean / max |")
    print("|---|---|---|---|---|")
    for name, res, cos, rel in rows:
        print(f"| {name} | {res_line(res, 'linear')} | {res_line(res, 'knn')} | "
              f"{cos.mean():.6f} / {cos.min():.6f} | {rel.mean():.4f} / {rel.max():.4f} |")


def res_line(res, kind):
    return f"{100 * res[kind]['top1']:.2f}%"


def photos(args, work):
    up = work / "photos-2x"
    if not up.exists():
        print("upscaling the photos 2x ...", file=sys.stderr)
        upscale_photos(args.photos, up)
    pca = work / "photos-pca.safetensors"
    with_options(["pca", "fit", "--input", args.photos, "--image-size", 224, "--patch", 16,
                  "--out", pca, "--overwrite", "-q"], work / "photos-fit.toml",
                 OPTIONS["exact"][1])
    print("\nPhotos, PCA latents at 224 px / patch 16, d = 32 (PCA fitted in the exact mode)\n")
    print("| photos | decode | cosine to exact: mean / min | relative difference: mean / max | nearest photo unchanged |")
    print("|---|---|---|---|---|")
    for label, folder in (("as they are", Path(args.photos)), ("upscaled 2x", up)):
        exact = None
        for tag, (name, options) in OPTIONS.items():
            out = work / f"photos-{label.split()[0]}-{tag}"
            with_options(["pca", "encode", "--input", folder, "--pca", pca, "--dim", 32,
                          "--out", out, "--overwrite", "-q"], work / f"{out.name}.toml", options)
            lat = vectors(out, "latents")
            if exact is None:
                exact = lat
            cos = cosine_rows(lat, exact)
            same = (nearest(lat) == nearest(exact)).mean()
            rel = relative_diff(lat, exact)
            print(f"| {label} | {name} | {cos.mean():.6f} / {cos.min():.6f} | "
                  f"{rel.mean():.4f} / {rel.max():.4f} | {100 * same:.1f}% |")


def nearest(latents):
    pooled = latents.reshape(len(latents), -1, 32).mean(1)
    unit = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    return sim.argmax(1)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cifar", type=Path)
    ap.add_argument("--photos", type=Path)
    ap.add_argument("--work", type=Path, default=Path("decode-options-work"))
    ap.add_argument("--per-class", type=int, default=1000)
    ap.add_argument("--test-per-class", type=int, default=200)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"ldae: {subprocess.run([LDAE, '--version'], capture_output=True, text=True).stdout.strip()}")
    if args.photos:
        photos(args, args.work)
    if args.cifar:
        cifar(args, args.work)


if __name__ == "__main__":
    main()
