"""What the feature benches share: each side in its own measured process, ldae's side, and the
table (`timm_compare.py`, `transformers_compare.py`).

A peer side is a Python worker script run as `python WORKER MODEL_DIR IMAGES THREADS BATCH
OUT.npy` (with this folder importable): it loads its model and hands a function from image
paths to features to `measured_batches`, which writes the features in the sorted order of the
image names and prints, as its last line, JSON with `total` and `steady` seconds and
`steady_rows` (the rows after its first batch).
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def add_run_arguments(ap, default_ldae):
    """The options both feature benches take: the photos, threads, batch and ldae binary."""
    ap.add_argument("--images", required=True, help="a flat folder of photos (JPEG/PNG)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--ldae", default=default_ldae)


def image_names(folder):
    """The photos of a flat folder, sorted: the order both sides' features are compared in."""
    return sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_SUFFIXES))


def measured_batches(images, batch, features_of, start, out):
    """A peer worker's loop: the photos of `images`, sorted, `batch` at a time through
    `features_of(paths)` (a numpy array, one row per path) under torch.inference_mode; the
    features saved to `out`, the timing (since `start`, the worker's own) printed as JSON."""
    import torch
    names = image_names(images)
    feats, first = [], None
    with torch.inference_mode():
        for i in range(0, len(names), batch):
            feats.append(features_of([os.path.join(images, n) for n in names[i:i + batch]]))
            if first is None:
                first = time.time()
    end = time.time()
    np.save(out, np.concatenate(feats))
    print(json.dumps({"total": end - start, "steady": end - first,
                      "steady_rows": len(names) - min(batch, len(names)), "rows": len(names)}))


def run_measured(cmd, log):
    """Run cmd in a fresh process (output to the file log); return its stdout, wall time and
    its own peak resident memory in MB (os.wait4's rusage is that child's alone)."""
    with open(log, "w") as out:
        t = time.time()
        p = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.time() - t
    text = open(log).read()
    if status != 0:
        sys.exit(f"{cmd[0]} failed:\n{text}")
    return text, wall, usage.ru_maxrss / 1024


def compare_with_peer(peer, worker_source, model_dir, images, threads, batch, ldae, tmp):
    """Run the peer's worker and `ldae features --checkpoint model_dir`, one after the other on
    the same photos, threads and batch size, and print the table: features per second (whole
    run, and the peer's steady state), peak resident memory, the ratio, and the agreement."""
    rows = len(image_names(images))
    worker = os.path.join(tmp, f"{peer}_worker.py")
    # The worker imports measured_batches from this folder.
    open(worker, "w").write(f"import sys\nsys.path.insert(0, {os.path.dirname(__file__)!r})\n"
                            + worker_source)
    peer_out = os.path.join(tmp, f"{peer}.npy")
    out, peer_wall, peer_rss = run_measured(
        [sys.executable, worker, model_dir, images, str(threads), str(batch), peer_out],
        os.path.join(tmp, f"{peer}.log"))
    timing = json.loads(out.strip().splitlines()[-1])

    table = os.path.join(tmp, "features")
    _, ldae_wall, ldae_rss = run_measured(
        [ldae, "features", "--checkpoint", model_dir, "--input", images, "--out", table,
         "--threads", str(threads), "--batch-size", str(batch)],
        os.path.join(tmp, "ldae.log"))

    t = pq.read_table(table)
    col = t.column("features").combine_chunks()
    col = col.storage if hasattr(col, "storage") else col
    got = col.flatten().to_numpy(zero_copy_only=False).reshape(t.num_rows, -1)
    ids = [os.path.basename(i) for i in t.column("id").to_pylist()]
    got = got[np.argsort(ids)]
    ref = np.load(peer_out)
    rel = np.abs(ref - got).max() / np.abs(ref).max()
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1))

    print()
    print(f"| {'side':12s} | {'features/s (whole run)':>22s} | {'features/s (steady)':>19s} | {'peak RSS MB':>11s} |")
    print(f"|{'-' * 14}|{'-' * 24}|{'-' * 21}|{'-' * 13}|")
    steady = timing["steady_rows"] / timing["steady"] if timing["steady"] > 0 else float("nan")
    print(f"| {peer:12s} | {rows / peer_wall:22.1f} | {steady:19.1f} | {peer_rss:11.0f} |")
    print(f"| {'ldae':12s} | {rows / ldae_wall:22.1f} | {'':>19s} | {ldae_rss:11.0f} |")
    print()
    print(f"ldae / {peer}, whole run: {peer_wall / ldae_wall:.2f}x; peak memory "
          f"{ldae_rss / peer_rss:.2f}x")
    print(f"features agree: max |diff| / max |value| = {rel:.2e}, min per-row cosine {cos.min():.7f}")
