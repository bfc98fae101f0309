#!/usr/bin/env python3
"""Source-read benchmark: how fast ldae's sources hand rows to a pipeline, beside a Python
peer reading the same bytes in the same run, printed as a table.

    python3 benches/source_read.py --images ~/data/train [--ldae target/release/ldae] \
        [--rows-224 4000] [--cold]

IMAGES is a folder of class folders (CIFAR-10 JPEGs). The bench writes into a temporary
folder: a 224 px decoded-pixel Parquet table of synthetic images (`ldae run`: decode ->
parquet sink), stored both ways (`tensor_storage = "list"` and `"bytes"`), the same JPEGs as WebDataset shards, and a 16 px PCA. Each ldae row is a
pipeline `source -> patchify -> normalize -> pca_project (d = 8) -> parquet`, timed by its
stage table: the source's rows per busy second (what it could hand on) and the whole run's rows
per wall second. The peers read the same bytes and nothing more:

  - pixel table, in order and shuffled: pyarrow's `read_row_group` of the `pixels` column,
    one row group per core at once (shuffled: the row groups in a random order);
  - image folder: Python reading every file's bytes, 16 threads (`ThreadPoolExecutor`);
  - WebDataset shards: Python's `tarfile` reading every member's bytes.

`--cold` drops the page cache before each read (root only: writes /proc/sys/vm/drop_caches),
so that reading waits for the disk, as from a network file system; without it every read
after the first is served from memory. Needs: pip install pyarrow.
"""
import argparse
import concurrent.futures
import os
import random
import re
import subprocess
import sys
import tarfile
import time

import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from bench_build import default_ldae, machine_header, scratch_dir  # noqa: E402


def drop_caches(cold):
    if cold:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")


def run_ldae(ldae, *args):
    done = subprocess.run([ldae, *map(str, args)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"ldae {' '.join(map(str, args))} failed:\n{done.stderr}")
    return done.stderr


def read_spec(work, name, source_lines, size, patch):
    spec = os.path.join(work, f"{name}.toml")
    with open(spec, "w") as f:
        f.write("[source]\n" + "\n".join(source_lines) + "\n\n")
        f.write(f'[[operator]]\nkind = "decode"\nimage_size = {size}\nchannels = 3\n\n')
        f.write(f'[[operator]]\nkind = "patchify"\npatch = {patch}\n\n')
        f.write('[[operator]]\nkind = "normalize"\n\n')
        pca = os.path.join(work, f"pca{size}.safetensors")
        f.write(f'[[operator]]\nkind = "pca_project"\npca = "{pca}"\ndim = 8\n\n')
        out = os.path.join(work, f"out-{name}")
        f.write(f'[sink]\nkind = "parquet"\nout = "{out}"\noverwrite = true\n')
    return spec


def stage_rate(table, stage):
    """Rows per busy second of the stage-table line that starts with `stage`."""
    fields = next(line for line in table.splitlines() if line.startswith(stage)).split()
    rows, busy = int(fields[2]), float(fields[5])
    return rows / max(busy, 1e-9)


def ldae_read(ldae, spec, cold):
    """(source rows per busy second, rows per wall second) of one `ldae run`."""
    drop_caches(cold)
    table = run_ldae(ldae, "run", spec, "--progress", "off")
    rows = int(next(line for line in table.splitlines() if line.startswith("source:")).split()[2])
    total = re.search(r"in ([0-9.]+) s \(", table)
    return stage_rate(table, "source:"), rows / float(total.group(1))


def timed(cold, read):
    drop_caches(cold)
    start = time.perf_counter()
    rows = read()
    return rows / (time.perf_counter() - start)


def pyarrow_pixels(path, shuffle):
    """Every row group's `pixels`, one row group per core at once (pyarrow drops the GIL)."""
    files = sorted(os.path.join(path, "data", f) for f in os.listdir(os.path.join(path, "data")))
    groups = [(f, g) for f in files for g in range(pq.ParquetFile(f).num_row_groups)]
    if shuffle:
        random.Random(0).shuffle(groups)

    def read(group):
        f, g = group
        return pq.ParquetFile(f).read_row_group(g, columns=["pixels"]).num_rows
    with concurrent.futures.ThreadPoolExecutor(os.cpu_count()) as pool:
        return sum(pool.map(read, groups))


def python_files(paths):
    def read(path):
        with open(path, "rb") as f:
            return len(f.read())
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        return sum(1 for _ in pool.map(read, paths))


def python_tar(shards):
    rows = 0
    for shard in shards:
        with tarfile.open(shard) as t:
            for member in t:
                if member.name.endswith(".jpg"):
                    t.extractfile(member).read()
                    rows += 1
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", required=True, help="folder of class folders of JPEGs")
    ap.add_argument("--ldae", default=default_ldae())
    ap.add_argument("--rows-224", type=int, default=4000, help="rows of the 224 px pixel table")
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each read")
    args = ap.parse_args()
    print(machine_header(args.ldae))
    print(f"page cache: {'dropped before each read' if args.cold else 'warm'}")
    work = scratch_dir("ldae-source-read-")
    ldae = args.ldae
    for size, patch in ((224, 16), (32, 4)):
        run_ldae(ldae, "pca", "fit", "--input", "synthetic:64", "--image-size", size, "--patch", patch,
                 "--out", os.path.join(work, f"pca{size}.safetensors"), "-q")
    tables, writes = {}, []
    for storage in ("list", "bytes"):
        tables[storage] = os.path.join(work, f"pix224-{storage}")
        spec = os.path.join(work, f"pix-{storage}.toml")
        with open(spec, "w") as f:
            f.write(f'[source]\ninput = "synthetic:{args.rows_224}"\n\n'
                    '[[operator]]\nkind = "decode"\nimage_size = 224\nchannels = 3\n\n'
                    f'[sink]\nkind = "parquet"\nout = "{tables[storage]}"\ntensor_storage = "{storage}"\n')
        writes.append((storage, stage_rate(run_ldae(ldae, "run", spec, "--progress", "off"), "parquet")))
    classes = sorted(os.listdir(args.images))
    files = [os.path.join(args.images, c, f) for c in classes for f in sorted(os.listdir(os.path.join(args.images, c)))]
    shards = []
    per = 5000
    for s in range(0, len(files), per):
        shard = os.path.join(work, "wds", f"shard-{s // per:04d}.tar")
        os.makedirs(os.path.dirname(shard), exist_ok=True)
        with tarfile.open(shard, "w") as t:
            for k, path in enumerate(files[s:s + per]):
                t.add(path, arcname=f"{s + k:08d}.jpg")
        shards.append(shard)

    rows = []
    for storage, pixels in tables.items():
        for shuffle in (False, True):
            spec = read_spec(work, f"pix-{storage}-{shuffle}",
                             [f'input = "{pixels}"', f"shuffle = {str(shuffle).lower()}"], 224, 16)
            src, wall = ldae_read(ldae, spec, args.cold)
            peer = timed(args.cold, lambda: pyarrow_pixels(pixels, shuffle))
            rows.append((f"224 px pixel table ({storage}), {args.rows_224} rows, "
                         f"{'shuffled' if shuffle else 'in order'}",
                         src, wall, "pyarrow, a row group per core", peer))
    spec = read_spec(work, "folder", [f'input = "{args.images}"'], 32, 4)
    src, wall = ldae_read(ldae, spec, args.cold)
    peer = timed(args.cold, lambda: python_files(files))
    rows.append((f"image folder, {len(files)} JPEGs", src, wall, "Python, 16 threads", peer))
    spec = read_spec(work, "wds", [f'input = "{os.path.dirname(shards[0])}"', "shuffle = true"], 32, 4)
    src, wall = ldae_read(ldae, spec, args.cold)
    peer = timed(args.cold, lambda: python_tar(shards))
    rows.append((f"WebDataset, {len(shards)} shards, ldae shuffled", src, wall, "tarfile, in order", peer))

    print()
    print("| source | ldae source rows/s (busy) | ldae whole run rows/s | peer | peer rows/s | ratio (source / peer) |")
    print("|---|---|---|---|---|---|")
    for name, src, wall, peer_name, peer in rows:
        print(f"| {name} | {src:,.0f} | {wall:,.0f} | {peer_name} | {peer:,.0f} | {src / peer:.2f}x |")
    print()
    print("| 224 px pixel table written as | parquet sink rows/s (busy) |")
    print("|---|---|")
    for storage, rate in writes:
        print(f"| {storage} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
