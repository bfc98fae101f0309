"""Summary table of scripts/gpu-check.sh: reads what the check's runs wrote and prints one table.

Usage: gpu_check_summary.py WORK_DIR RESULTS_DIR DEVICE
"""
import glob
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq

work, results, device = sys.argv[1], sys.argv[2], sys.argv[3]
gpu = open(os.path.join(results, "gpu.txt")).read().strip()
# Dense bf16 peak of the SXM parts (the H200 has the H100's compute with more memory).
PEAK = 989e12 if ("H100" in gpu or "H200" in gpu) else None
rows = []


def check(name, value, target, ok):
    rows.append((name, value, target, "ok" if ok else "FAIL"))


def metrics(run):
    return pq.read_table(os.path.join(work, run, "metrics.parquet")).to_pydict()


def features(folder):
    t = pq.read_table(glob.glob(os.path.join(work, folder, "data", "part-*.parquet")))
    return np.array(t.column("id").to_pylist()), t.column("features").combine_chunks().to_numpy_ndarray().reshape(t.num_rows, -1)


# (a) correctness
cpu, dev, bf = (metrics(f"check-{k}") for k in ("cpu-f32", "dev-f32", "dev-bf16"))
lc, ld, lb = (np.array(m["loss"], dtype=np.float64) for m in (cpu, dev, bf))
n = min(len(lc), len(ld), len(lb))
rel = np.max(np.abs(ld[:n] - lc[:n]) / np.abs(lc[:n]))
check(f"train loss {device} f32 vs cpu ({n} steps), max rel diff", f"{rel:.2e}", "<= 1e-3", rel <= 1e-3)
relb = np.max(np.abs(lb[:n] - lc[:n]) / np.abs(lc[:n]))
check(f"train loss {device} bf16 vs cpu f32, max rel diff", f"{relb:.2e}", "<= 2e-2", relb <= 2e-2)
ic, fc = features("feat-cpu")
idv, fd = features(f"feat-{device}")
assert (ic == idv).all()
relf = np.max(np.linalg.norm(fd - fc, axis=1) / np.linalg.norm(fc, axis=1))
check(f"features {device} vs cpu (f32), max rel diff per row", f"{relf:.2e}", "<= 1e-3", relf <= 1e-3)


# (b) throughput and model FLOP utilisation
def train_flops_per_image(run):
    cfg = json.load(open(os.path.join(work, run, "config.json")))["model"]
    w, n, d = cfg["width"], cfg["grid"] ** 2, cfg["patch_dim"]
    depth = cfg["encoder_depth"] + cfg["decoder_depth"]
    hidden = w * cfg["mlp_ratio"]
    per_token = depth * 2 * (3 * w * w + w * w + 2 * w * hidden)  # qkv, proj, mlp
    per_token += depth * 2 * 2 * n * w  # q k^T and attn v
    per_token += 2 * 2 * d * w  # patch embedding and output head
    per_image = n * per_token + depth * 2 * w * 6 * w  # adaLN, once per image
    return 3 * per_image  # forward + backward (twice the forward)


for run, name in (("speed-base", "base"), ("speed-tiny", "tiny")):
    m = metrics(run)
    ips = np.array(m["images_per_second"])[len(m["images_per_second"]) // 3:]  # after warm-up
    rate = float(np.median(ips))
    flops = train_flops_per_image(run)
    mfu = rate * flops / PEAK if PEAK else float("nan")
    rows.append((f"train {name}: images/s (median after warm-up)", f"{rate:.0f}", "", ""))
    rows.append((f"train {name}: GFLOP per image (fwd+bwd)", f"{flops / 1e9:.2f}", "", ""))
    if name == "base":
        check("train base: model FLOP utilisation of bf16 peak", f"{100 * mfu:.1f}%", ">= 40%", mfu >= 0.40)
    else:
        rows.append(("train tiny: model FLOP utilisation of bf16 peak", f"{100 * mfu:.1f}%", "", ""))
images, t0, t1 = open(os.path.join(work, "feat-speed.time")).read().split()
rows.append(("features (base, whole command): images/s", f"{int(images) / (float(t1) - float(t0)):.0f}", "", ""))

# (c) end to end
probe = json.load(open(os.path.join(results, "e2e-probe.json")))
e2e = metrics("e2e-run")
rows.append(("CIFAR-10 e2e: train images/s (median)", f"{float(np.median(e2e['images_per_second'])):.0f}", "", ""))
rows.append(("CIFAR-10 e2e: linear top-1 (tiny, 1 epoch)", f"{100 * probe['linear']['top1']:.1f}%", "", ""))
if probe.get("knn"):
    rows.append(("CIFAR-10 e2e: kNN top-1", f"{100 * probe['knn']['top1']:.1f}%", "", ""))

print(f"GPU: {gpu}")
width = max(len(r[0]) for r in rows)
print(f"{'measure':<{width}}  {'value':>12}  {'target':>8}  result")
for name, value, target, ok in rows:
    print(f"{name:<{width}}  {value:>12}  {target:>8}  {ok}")
print("the loader-vs-model split of the tiny run is in tiny-stages.txt (the per-stage table)")
