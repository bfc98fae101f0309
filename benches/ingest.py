#!/usr/bin/env python3
"""Ingest benchmark: ldae beside a Python peer (Pillow + numpy + pyarrow) doing the same work on
the same cores in the same run, printed as a table.

    python3 benches/ingest.py --images ~/data/train [--ldae target/release/ldae]
    python3 benches/ingest.py --images ~/photos --image-size 224 --patch 16 --dim 32
    python3 benches/ingest.py --images ~/photos --image-size 224 --patch 16 --dim 32 \
        --encode-vs-pillow 5 --pin 1 [--isa avx2]

IMAGES is a folder of class folders (CIFAR-10 JPEGs) or a flat folder of photos.

Measures
  0. decode + resize + centre crop alone: Pillow in 1 and 2 processes (the bar ldae's whole
     encode is held to at 224 px), and ldae's decode stage (its busy time in the stage table);
  1. encode: decode JPEG -> [-1,1] -> patchify (p) -> PCA project (d) -> zstd Parquet,
     images/s, for ldae (--threads 1 and 2) and for the peer (a multiprocessing pool of one
     process per core);
  2. PCA fit end to end (decode -> patch statistics -> eigendecomposition), both sides;
  3. PCA fit on the same in-memory patches: numpy (f64 X^T X + eigh) vs ldae's fit
     (the `pca_fit` bench, built in the release profile);
  4. peak resident memory of ldae encode at 10k and at all images.
`--encode-vs-pillow ROUNDS` measures only ldae's whole `pca encode --threads 1` against
Pillow's decode + resize + crop in one process, alternated ROUNDS times (medians); `--pin CPU`
runs both sides on that one core (the per-core comparison); `--isa` caps the kernels' level.
Needs: pip install numpy pyarrow pillow.
"""
import argparse
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
from common import read_safetensors  # noqa: E402
from bench_build import add_isa_argument, apply_isa, bench_binary, default_ldae, machine_header, scratch_dir  # noqa: E402

S, P, D_LAT = 32, 4, 16


def list_images(root):
    classes = sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d)))
    if not classes:
        return [(f, -1) for f in sorted(os.listdir(root)) if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    files = []
    for label, c in enumerate(classes):
        for f in sorted(os.listdir(os.path.join(root, c))):
            files.append((f"{c}/{f}", label))
    return files


def load_image(root, rel):
    img = Image.open(os.path.join(root, rel)).convert("RGB")
    w, h = img.size
    if (w, h) != (S, S):
        scale = S / min(w, h)
        img = img.resize((max(S, round(w * scale)), max(S, round(h * scale))), Image.BILINEAR)
        w, h = img.size
        left, top = (w - S) // 2, (h - S) // 2
        img = img.crop((left, top, left + S, top + S))
    return np.asarray(img)


def _pillow_chunk(chunk):
    for rel, _ in chunk:
        load_image(_STATE["root"], rel)
    return len(chunk)


def pillow_only(root, files, procs):
    """Decode + resize + crop with Pillow and nothing else, in `procs` processes."""
    start = time.perf_counter()
    with mp.Pool(procs, initializer=_init, initargs=(root, None, None)) as pool:
        done = sum(pool.imap(_pillow_chunk, chunks(files, 64)))
    assert done == len(files)
    return time.perf_counter() - start


def stage_rate(stdout, stage):
    """rows/s of busy time of `stage` in ldae's stage table."""
    for line in stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == stage:
            return float(parts[-1])
    return None


def patches(x):
    x = x.astype(np.float32) * np.float32(1 / 127.5) - np.float32(1)
    n = x.shape[0]
    g = S // P
    return x.reshape(n, g, P, g, P, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n, g * g, P * P * 3)


_STATE = {}


def _init(root, weight, offset):
    _STATE.update(root=root, weight=weight, offset=offset)


def _encode_chunk(chunk):
    imgs = np.stack([load_image(_STATE["root"], rel) for rel, _ in chunk])
    z = patches(imgs) @ _STATE["weight"] - _STATE["offset"]
    return [rel for rel, _ in chunk], [lab for _, lab in chunk], z.astype(np.float32)


def _stats_chunk(chunk):
    imgs = np.stack([load_image(_STATE["root"], rel) for rel, _ in chunk])
    x = patches(imgs).reshape(-1, P * P * 3).astype(np.float64)
    return x.shape[0], x.sum(0), x.T @ x


def chunks(files, size=256):
    return [files[i:i + size] for i in range(0, len(files), size)]


def peer_encode(root, files, model, out, procs):
    t = model["tensors"]
    lam = t["eigenvalues"][:D_LAT]
    s = np.sqrt(lam.mean())  # global latent scale, ldae's default
    weight = (t["components"][:D_LAT].T / s).astype(np.float32)
    offset = (t["mean"] @ t["components"][:D_LAT].T / s).astype(np.float32)
    start = time.perf_counter()
    typ = pa.fixed_shape_tensor(pa.float32(), [(S // P) ** 2, D_LAT])
    schema = pa.schema([("id", pa.string()), ("label", pa.int64()), ("latents", typ)])
    with mp.Pool(procs, initializer=_init, initargs=(root, weight, offset)) as pool, \
            pq.ParquetWriter(out, schema, compression="zstd") as writer:
        for ids, labels, z in pool.imap(_encode_chunk, chunks(files)):
            lat = pa.FixedShapeTensorArray.from_numpy_ndarray(z)
            writer.write_table(pa.table([pa.array(ids), pa.array(labels, pa.int64()), lat], schema=schema))
    return time.perf_counter() - start


def peer_fit(root, files, procs):
    start = time.perf_counter()
    n, s, xx = 0, 0.0, 0.0
    with mp.Pool(procs, initializer=_init, initargs=(root, None, None)) as pool:
        for k, ks, kxx in pool.imap(_stats_chunk, chunks(files)):
            n, s, xx = n + k, s + ks, xx + kxx
    mean = s / n
    cov = (xx - n * np.outer(mean, mean)) / (n - 1)
    np.linalg.eigh(cov)
    return time.perf_counter() - start


def run_rss(cmd):
    """Run a command, returning (seconds, peak RSS MB)."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    if status != 0:
        sys.exit(f"{' '.join(cmd)} failed")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def encode_vs_pillow(args, encode, root, files, tmp):
    """ldae's whole encode (`--threads 1`) against Pillow's decode + resize + crop alone (1
    process), alternated, medians printed."""
    n, ours, peer = len(files), [], []
    for r in range(args.encode_vs_pillow):
        t_enc, _ = run_rss(encode + ["--threads", "1", "--out", os.path.join(tmp, f"q{r}")])
        ours.append(n / t_enc)
        peer.append(n / pillow_only(root, files, 1))
        print(f"round {r + 1}: ldae {ours[-1]:.0f}, Pillow {peer[-1]:.0f} images/s", flush=True)
    a, b = statistics.median(ours), statistics.median(peer)
    pin = f"pinned to CPU {args.pin}" if args.pin is not None else "unpinned"
    print(f"\n{machine_header(args.ldae)}")
    print(f"{n} images, {S} px, patch {P}, d = {D_LAT}; {pin}; medians of {len(ours)} alternating rounds")
    print("| measure | ldae | Pillow | ratio |")
    print("|---|---|---|---|")
    print(f"| `pca encode --threads 1` whole vs Pillow decode + resize + crop (1 process) | "
          f"{a:.0f} images/s | {b:.0f} images/s | {a / b:.2f}x |")
    print("rounds: ldae " + ", ".join(f"{v:.0f}" for v in ours) + "; Pillow " + ", ".join(f"{v:.0f}" for v in peer))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", required=True, help="CIFAR-10 JPEG folder (train/<class>/*.jpg)")
    ap.add_argument("--ldae", default=default_ldae())
    ap.add_argument("--procs", type=int, default=os.cpu_count())
    ap.add_argument("--image-size", type=int, default=32)
    ap.add_argument("--patch", type=int, default=4)
    ap.add_argument("--dim", type=int, default=16)
    ap.add_argument("--encode-vs-pillow", type=int, metavar="ROUNDS",
                    help="only ldae's encode (1 thread) against Pillow's decode+resize+crop (1 process), ROUNDS alternations")
    ap.add_argument("--pin", type=int, metavar="CPU", help="run both sides on this one core")
    add_isa_argument(ap)
    args = ap.parse_args()
    apply_isa(args.isa)
    if args.pin is not None:
        os.sched_setaffinity(0, {args.pin})
    global S, P, D_LAT
    S, P, D_LAT = args.image_size, args.patch, args.dim
    root = os.path.expanduser(args.images)
    files = list_images(root)
    n = len(files)
    tmp = scratch_dir("ldae-bench-")
    pca = os.path.join(tmp, "pca.safetensors")
    common = ["--progress", "off"]
    rows = []

    class Rows(list):
        """Each row is printed as it is measured, so a long run shows progress."""
        def append(self, row):
            super().append(row)
            print("measured:", row, flush=True)

    rows = Rows()

    # Warm the page cache so both sides read from memory.
    for rel, _ in files:
        with open(os.path.join(root, rel), "rb") as f:
            f.read()

    # PCA fit, end to end.
    t_fit, _ = run_rss([args.ldae, "pca", "fit", "--input", root, "--image-size", str(S), "--patch", str(P), "--out", pca, *common])
    encode = [args.ldae, "pca", "encode", "--input", root, "--pca", pca, "--dim", str(D_LAT), *common]
    if args.encode_vs_pillow:
        encode_vs_pillow(args, encode, root, files, tmp)
        return
    t_peer_fit = peer_fit(root, files, args.procs)
    rows.append(("PCA fit end to end (decode + stats + eigh)", n / t_fit, n / t_peer_fit, "images/s"))

    # Peak memory against dataset size, measured before this process holds large arrays (a
    # forked child's peak RSS counts the parent's pages until it execs).
    _, rss_10k = run_rss(encode + ["--limit", "10000", "--out", os.path.join(tmp, "l10k")])
    _, rss_all = run_rss(encode + ["--out", os.path.join(tmp, "lall")])

    # Decode + resize + crop alone: Pillow, and ldae's decode stage.
    for procs in (1, 2):
        t_pil = pillow_only(root, files, procs)
        run = subprocess.run(encode + ["--threads", str(procs), "--out", os.path.join(tmp, f"t{procs}")],
                             capture_output=True, text=True, check=True)
        dec = stage_rate(run.stdout + run.stderr, "decode")
        rows.append((f"decode+resize+crop, {procs} core(s) (ldae: decode stage)", dec, n / t_pil, "images/s"))
    # ldae's whole encode against Pillow's decode + resize + crop alone, per core count.
    for procs in (1, 2):
        t_pil = pillow_only(root, files, procs)
        t_enc, _ = run_rss(encode + ["--threads", str(procs), "--out", os.path.join(tmp, f"e{procs}")])
        rows.append((f"ldae encode vs Pillow decode only, {procs} core(s)", n / t_enc, n / t_pil, "images/s"))

    # Encode to latents.
    tensors, meta = read_safetensors(pca)
    t_enc, _ = run_rss(encode + ["--out", os.path.join(tmp, "latents")])
    t_peer = peer_encode(root, files, {"tensors": tensors}, os.path.join(tmp, "peer.parquet"), args.procs)
    rows.append(("encode: decode->patchify->project->Parquet", n / t_enc, n / t_peer, "images/s"))

    # PCA fit on the same in-memory patches.
    imgs = np.stack([load_image(root, rel) for rel, _ in files])
    x32 = patches(imgs).reshape(-1, P * P * 3)
    path = os.path.join(tmp, "patches.f32")
    x32.tofile(path)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        x = x32.astype(np.float64)
        mean = x.mean(0)
        cov = (x.T @ x - len(x) * np.outer(mean, mean)) / (len(x) - 1)
        np.linalg.eigh(cov)
        best = min(best, time.perf_counter() - start)
    fit_bench = bench_binary("pca_fit", cwd=os.path.join(os.path.dirname(__file__), ".."))
    bench = subprocess.run([fit_bench, path, str(P * P * 3)], capture_output=True, text=True, check=True)
    ours = json.loads(bench.stdout.strip().splitlines()[-1])
    rows.append((f"PCA fit on {len(x32)/1e6:.1f}M in-memory patches", ours["fit_s"], best, "seconds"))
    if n > 10000:
        rows.append(("ldae encode peak RSS, 10k images", rss_10k, None, "MB"))
    rows.append((f"ldae encode peak RSS, {n} images", rss_all, None, "MB"))

    print(f"\n{machine_header(args.ldae)}")
    print(f"{n} images, {S} px, patch {P} (D = {P * P * 3}), d = {D_LAT}")
    print(f"{'measure':<56} {'ldae':>10} {'python peer':>12} {'ratio':>7}  unit")
    for name, a, b, unit in rows:
        ratio = "" if b is None else f"{(a / b if unit != 'seconds' else b / a):.2f}x"
        bs = "" if b is None else f"{b:.3f}" if unit == "seconds" else f"{b:.0f}"
        as_ = f"{a:.3f}" if unit == "seconds" else f"{a:.0f}"
        print(f"{name:<56} {as_:>10} {bs:>12} {ratio:>7}  {unit}")
    print(f"(ratio > 1: ldae faster; {args.procs} peer processes)")


if __name__ == "__main__":
    main()
