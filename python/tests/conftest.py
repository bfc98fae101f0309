"""Shared fixtures: a small labelled image folder (with one corrupt file), the same images as
a Hugging Face-style Arrow table, a PCA fitted on them, and a way to run the ldae CLI."""

import io
import os
import shutil
import subprocess

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

CLASSES = ["ant", "bee", "cat"]


def ldae_bin():
    """The CLI binary the package's results are compared with ($LDAE_BIN, else ldae on PATH)."""
    exe = os.environ.get("LDAE_BIN") or shutil.which("ldae")
    if not exe:
        pytest.fail("set LDAE_BIN to the ldae binary (cargo test does)")
    return exe


def cli(*args, check=True):
    """Run the CLI; returns the completed process (stdout, stderr as text)."""
    r = subprocess.run([ldae_bin(), *map(str, args)], capture_output=True, text=True,
                       env={**os.environ, "LDAE_LOG": "warn"})
    if check and r.returncode != 0:
        pytest.fail(f"ldae {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r


def read_table(folder):
    """A finished ldae table folder as one pyarrow Table."""
    parts = sorted(os.path.join(folder, "data", f) for f in os.listdir(os.path.join(folder, "data")))
    return pa.concat_tables([pq.read_table(p) for p in parts])


def tensor_numpy(column):
    """A tensor (fixed-size list) column as a numpy array, one row per row."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if hasattr(column, "storage"):
        column = column.storage
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.reshape(len(column), -1)


def image(rng, h, w):
    """A smooth random RGB image (so JPEG keeps it recognisable)."""
    small = rng.integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(small).resize((w, h), Image.BILINEAR))


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    """24 images in 3 class folders, sizes 20..27 x 24 (JPEG and PNG), plus one corrupt file.

    Returns (folder, files): files are (relative path, label, bytes) in the CLI's order.
    """
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(7)
    files = []
    for label, cls in enumerate(CLASSES):
        os.makedirs(root / cls)
        for i in range(8):
            arr = image(rng, 20 + i, 24)
            fmt = "JPEG" if i % 2 == 0 else "PNG"
            name = f"{cls}/{i:02d}.{'jpg' if fmt == 'JPEG' else 'png'}"
            buf = io.BytesIO()
            Image.fromarray(arr).save(buf, format=fmt)
            (root / name).write_bytes(buf.getvalue())
            files.append((name, label, buf.getvalue()))
    bad = "bee/zz-broken.jpg"
    (root / bad).write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    files.append((bad, 1, (root / bad).read_bytes()))
    files.sort()
    return str(root), files


def hf_table(files):
    """The files as a Hugging Face `image` table: struct {bytes, path}, int64 label."""
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    images = pa.array([{"bytes": b, "path": p} for p, _, b in files], type=image_type)
    labels = pa.array([l for _, l, _ in files], type=pa.int64())
    return pa.table({"image": images, "label": labels})


@pytest.fixture(scope="session")
def table(dataset):
    return hf_table(dataset[1])


@pytest.fixture(scope="session")
def pca(dataset, tmp_path_factory):
    """A PCA fitted by the CLI on the folder (16 px, patch 4)."""
    out = tmp_path_factory.mktemp("pca") / "pca.safetensors"
    cli("pca", "fit", "--input", dataset[0], "--image-size", 16, "--patch", 4, "--out", out)
    return str(out)
