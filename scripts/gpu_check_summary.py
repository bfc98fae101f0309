"""Summary table of scripts/gpu-check.sh: reads what the check's commands wrote and prints one
table; a measurement whose command failed or is missing says so instead of stopping the rest.

Usage: gpu_check_summary.py WORK_DIR DEVICE PRESETS   (PRESETS: "small base", as the check ran)
"""
import glob
import json
import os
import re
import statistics
import sys

import numpy as np
import pyarrow.parquet as pq

work, device, presets = sys.argv[1], sys.argv[2], sys.argv[3].split()
gpu = open(os.path.join(work, "gpu.txt")).read().strip()
# Dense bf16 peak of the SXM parts from NVIDIA's data sheet (the H200 has the H100's compute).
SPEC_PEAK = 989e12 if ("H100" in gpu or "H200" in gpu) else None
rows = []


def row(name, value="", target="", result=""):
    rows.append((name, value, target, result))


def check(name, value, target, ok):
    row(name, value, target, "ok" if ok else "FAIL")


def steps():
    """name -> (exit status, seconds, peak GPU MiB above idle or None), in the order run."""
    out = {}
    with open(os.path.join(work, "steps.tsv")) as f:
        next(f)
        for line in f:
            name, rc, secs, peak = line.rstrip("\n").split("\t")
            out[name] = (int(rc), float(secs), None if peak == "-" else int(peak))
    return out


STEPS = steps()


def output(name):
    return open(os.path.join(work, f"{name}.out"), errors="replace").read()


def measured(section, what):
    """Run `what` (a function giving rows); a missing or failed input becomes one FAIL row."""
    try:
        what()
    except Exception as e:  # noqa: BLE001 - every failure is reported in the table
        row(f"{section}: not measured", f"{type(e).__name__}: {e}"[:70], "", "FAIL")


def metrics(run):
    return pq.read_table(os.path.join(work, run, "metrics.parquet")).to_pydict()


def features(folder):
    t = pq.read_table(glob.glob(os.path.join(work, folder, "data", "part-*.parquet")))
    values = t.column("features").combine_chunks().to_numpy_ndarray().reshape(t.num_rows, -1)
    return np.array(t.column("id").to_pylist()), values


def rate_after_warmup(run):
    """Median images/s of the model step over the steps after the first third."""
    ips = metrics(run)["images_per_second"]
    return float(np.median(ips[len(ips) // 3:]))


def train_flops(name):
    """GFLOP per image trained, as `ldae train` printed it (three times the forward pass)."""
    m = re.search(r"\(([0-9.]+) GFLOP per image trained", output(name))
    if not m:
        raise ValueError(f"{name}: no 'GFLOP per image trained' in its output")
    return float(m.group(1)) * 1e9


def stage(name, stage_name):
    """The row of `stage_name` in the last stage table `name` printed, as a dict."""
    found = None
    for line in output(name).splitlines():
        parts = line.split()
        if parts and parts[0] == stage_name and len(parts) == 9:
            keys = ("workers", "rows_in", "rows_out", "rejected", "busy", "wait_in", "wait_out")
            found = {k: float(v) for k, v in zip(keys, parts[1:8])}
    if found is None:
        raise ValueError(f"{name}: no stage table row '{stage_name}'")
    return found


def host_memory(name):
    """The peak resident memory `name`'s process reported at the end of its stage table."""
    m = re.search(r"; peak memory ([0-9.]+ [MG]iB)", output(name))
    if not m:
        raise ValueError(f"{name}: no 'peak memory' at the end of its stage table")
    return m.group(1)


def peak_mib(name):
    p = STEPS.get(name, (0, 0, None))[2]
    return "-" if p is None else f"{p} MiB"


def matmul_peak():
    if "matmul-peak" not in STEPS or STEPS["matmul-peak"][0] != 0:
        return None
    return float(output("matmul-peak").split()[-1]) * 1e12


MATMUL_PEAK = matmul_peak()


def speed_run(preset):
    """The run folder of `preset`'s largest batch that fits."""
    return f"speed-{preset}-b{open(os.path.join(work, f'speed-{preset}.batch')).read().strip()}"


def loader_wait(name):
    """The model step's wait for the loader, as a share of its busy time (the train stage row)."""
    model = stage(name, "train")
    return f"{100 * model['wait_in'] / max(model['busy'], 1e-9):.0f}% of busy"


def correctness():
    at = len(metrics("check-trained")["loss"])  # where the three continuations of 8 steps begin
    cpu, dev, bf = (np.array(metrics(f"check-{k}")["loss"][at:], dtype=np.float64)
                    for k in ("cpu-f32", "dev-f32", "dev-bf16"))
    assert len(cpu) == len(dev) == len(bf) == 8, "a continuation did not train its 8 steps"
    for name, other, bound in ((f"{device} f32", dev, 1e-3), (f"{device} bf16", bf, 2e-2)):
        rel = np.abs(other - cpu) / np.abs(cpu)
        check(f"(a) loss, {name} vs cpu f32, step {at + 1} (same weights: the forward pass)",
              f"{rel[0]:.2e}", f"<= {bound:g}", rel[0] <= bound)
        check(f"(a) loss, {name} vs cpu f32, largest over steps {at + 1}-{at + 8}", f"{rel.max():.2e}",
              f"<= {bound:g}", rel.max() <= bound)
    ids, fc = features("feat-cpu-f32")
    for name, bound in (("f32", 1e-3), ("bf16", 2e-2)):
        idv, fd = features(f"feat-dev-{name}")
        assert (ids == idv).all(), "feature rows differ in order"
        rel = np.max(np.linalg.norm(fd - fc, axis=1) / np.linalg.norm(fc, axis=1))
        check(f"(a) features, {device} {name} vs cpu f32, largest relative difference of a row",
              f"{rel:.2e}", f"<= {bound:g}", rel <= bound)


def throughput(preset):
    tried = sorted((n for n in STEPS if n.startswith(f"speed-{preset}-b")),
                   key=lambda n: -int(n.rsplit("-b", 1)[1]))
    too_big = [n.rsplit("-b", 1)[1] for n in tried if STEPS[n][0] != 0]
    run = speed_run(preset)
    batch = run.rsplit("-b", 1)[1]
    rate = rate_after_warmup(run)
    flops = train_flops(run)
    note = f" (did not fit: {', '.join(too_big)})" if too_big else ""
    row(f"(b) {preset}: largest batch that fits{note}", batch)
    row(f"(b) {preset}: ldae images/s (median after warm-up)", f"{rate:.0f}")
    row(f"(b) {preset}: GFLOP per image trained", f"{flops / 1e9:.1f}")
    if SPEC_PEAK:
        mfu = rate * flops / SPEC_PEAK
        check(f"(b) {preset}: model FLOP utilisation of the bf16 data-sheet peak", f"{100 * mfu:.1f}%", ">= 40%", mfu >= 0.40)
    if MATMUL_PEAK:
        row(f"(b) {preset}: share of the measured bf16 matrix-product rate", f"{100 * rate * flops / MATMUL_PEAK:.1f}%")
    copy = re.search(r"([0-9.]+)% of the step copying batches to the device", output(run))
    row(f"(b) {preset}: share of the model step copying batches to the device",
        f"{copy.group(1)}%" if copy else "missing", "", "" if copy else "FAIL")
    row(f"(b) {preset}: ldae peak GPU memory (nvidia-smi, above idle)", peak_mib(run))
    row(f"(b) {preset}: ldae peak host memory (the process's resident set)", host_memory(run))
    row(f"(b) {preset}: model step waiting for the loader", loader_wait(run))
    peer_name = f"peer-{preset}"
    peer = json.loads([x for x in output(peer_name).splitlines() if x.startswith("{")][-1])
    peer_rate = peer["train_images_per_s_median"]
    row(f"(b) {preset}: PyTorch images/s, same batch (median after warm-up)", f"{peer_rate:.0f}")
    row(f"(b) {preset}: ldae / PyTorch", f"{rate / peer_rate:.2f}x")
    row(f"(b) {preset}: PyTorch peak GPU memory (nvidia-smi, above idle)", peak_mib(peer_name))


def tiny():
    rate = rate_after_warmup("speed-tiny")
    flops = train_flops("speed-tiny")
    row("(b) tiny 32 px: ldae images/s (median after warm-up)", f"{rate:.0f}")
    if SPEC_PEAK:
        row("(b) tiny 32 px: model FLOP utilisation of the bf16 data-sheet peak", f"{100 * rate * flops / SPEC_PEAK:.1f}%")


def own_kernels():
    """ldae's CUDA kernels: whether they passed their self-test, and what they gain."""
    largest = presets[-1]
    run = speed_run(largest)
    said = [line for line in output(run).splitlines() if "CUDA GELU-gradient kernel" in line]
    state = ("not run (CPU)" if not said else "passed" if "passed its self-test" in said[0]
             else "failed: not used")
    row("(b) ldae's CUDA kernel (GELU gradient): self-test", state, "", "FAIL" if "failed" in state else "")
    rate, composite = rate_after_warmup(run), rate_after_warmup("speed-composite")
    row(f"(b) {largest}: images/s with candle's composite forms instead (LDAE_CUDA_KERNELS=off)", f"{composite:.0f}")
    row(f"(b) {largest}: gain of ldae's CUDA kernels", f"{rate / composite:.2f}x")


def feature_speed():
    written = int(re.search(r"wrote (\d+) rows", output("feat-speed")).group(1))
    row(f"(b) features of {presets[-1]}, whole command: images/s", f"{written / STEPS['feat-speed'][1]:.0f}")
    row(f"(b) features of {presets[-1]}: peak GPU memory", peak_mib("feat-speed"))


def end_to_end():
    for name in ("e2e-pca", "e2e-run", "e2e-train", "e2e-test", "e2e-probe"):
        rc, secs, _ = STEPS[name]
        row(f"(c) {name}: seconds (whole command)", f"{secs:.1f}", "", "ok" if rc == 0 else "FAIL")
    row("(c) train: model step images/s (median)", f"{statistics.median(metrics('e2e-run')['images_per_second']):.0f}")
    row("(c) train: rows/s end to end", f"{stage('e2e-run', 'train')['rows_in'] / STEPS['e2e-run'][1]:.0f}")
    row("(c) train: model step waiting for the loader", loader_wait("e2e-run"))
    row("(c) train: peak GPU memory", peak_mib("e2e-run"))
    probe = json.load(open(os.path.join(work, "e2e-probe", "results.json")))
    row("(c) linear probe top-1 (tiny, 1 epoch)", f"{100 * probe['linear']['top1']:.1f}%")
    if probe.get("knn"):
        row("(c) kNN top-1", f"{100 * probe['knn']['top1']:.1f}%")


measured("(a)", correctness)
for preset in presets:
    measured(f"(b) {preset}", lambda: throughput(preset))
measured("(b) tiny", tiny)
measured("(b) own kernels", own_kernels)
measured("(b) features", feature_speed)
measured("(c)", end_to_end)
failed = [n for n, (rc, _, _) in STEPS.items() if rc != 0]

print(f"device: {gpu}")
if MATMUL_PEAK:
    print(f"measured bf16 matrix-product rate (PyTorch, 8192^3): {MATMUL_PEAK / 1e12:.0f} TFLOP/s")
width = max(len(r[0]) for r in rows)
print(f"| {'measure':<{width}} | {'value':>14} | {'target':>8} | result |")
print(f"|{'-' * (width + 2)}|{'-' * 16}|{'-' * 10}|--------|")
for name, value, target, result in rows:
    print(f"| {name:<{width}} | {value:>14} | {target:>8} | {result:>6} |")
print()
print("commands: exit status, seconds, peak GPU memory above idle (nvidia-smi)")
for name, (rc, secs, p) in STEPS.items():
    print(f"  {name:<22} {rc:>4} {secs:>8.1f} s {'-' if p is None else f'{p} MiB':>10}")
if failed:
    print(f"failed: {', '.join(failed)} (exit status 124: its time limit; 125: skipped, the check's time budget spent; the log has their output)")
sys.exit(1 if failed or any(r[3] == "FAIL" for r in rows) else 0)
