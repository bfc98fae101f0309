"""Helpers shared by the Python cross-checks: run ldae, read safetensors, make test images."""
import atexit
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import numpy as np


def ldae(*args):
    """Run the ldae binary (path in $LDAE_BIN), failing loudly with its output."""
    exe = os.environ.get("LDAE_BIN", "ldae")
    r = subprocess.run([exe, *map(str, args)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"ldae {' '.join(map(str, args))} failed:\n{r.stdout}\n{r.stderr}")
    return r.stdout


def scratch_dir(prefix):
    """A fresh temporary folder, removed when the check exits (whether it passed or not),
    unless LDAE_KEEP_TMP is set: then its path is printed and it stays for a look."""
    path = tempfile.mkdtemp(prefix=prefix)
    if os.environ.get("LDAE_KEEP_TMP"):
        print(f"keeping {path} (LDAE_KEEP_TMP)", file=sys.stderr)
    else:
        atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


def read_safetensors(path):
    """Tensors and metadata of a safetensors file, parsed by hand (no extra dependency)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    dtypes = {"F64": np.float64, "F32": np.float32}
    tensors = {}
    for name, t in header.items():
        a, b = t["data_offsets"]
        tensors[name] = np.frombuffer(data[base + a:base + b], dtype=dtypes[t["dtype"]]).reshape(t["shape"])
    return tensors, meta


def cifar_like(n, seed=0):
    """n 32x32 RGB uint8 images with CIFAR-like statistics: spatially smooth, anisotropic
    (so no two patch directions have the same variance), with correlated colour channels."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(32)[:, None]
    fx = np.fft.fftfreq(32)[None, :]

    def field(sy, sx):
        white = rng.normal(size=(n, 32, 32, 3))
        h = np.exp(-2 * np.pi**2 * (sy**2 * fy**2 + sx**2 * fx**2))
        out = np.real(np.fft.ifft2(np.fft.fft2(white, axes=(1, 2)) * h[None, :, :, None], axes=(1, 2)))
        return out / out.std()

    img = field(2.5, 1.5) + 0.4 * field(0.7, 0.45)
    img = img @ np.array([[1.0, 0.8, 0.6], [0.0, 0.5, 0.4], [0.0, 0.0, 0.3]])
    img = 128 + 40 * img
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


def write_idx(path, array):
    """Write a uint8 array as an IDX file (N x H x W [x C])."""
    with open(path, "wb") as f:
        f.write(bytes([0, 0, 8, array.ndim]))
        for d in array.shape:
            f.write(struct.pack(">I", d))
        f.write(array.tobytes())


def patches_f32(images, patch):
    """The pipeline's normalisation and patchify, in numpy, with the same f32 arithmetic."""
    x = images.astype(np.float32) * np.float32(1 / 127.5) + np.float32(-1.0)
    n, s, _, c = x.shape
    g = s // patch
    x = x.reshape(n, g, patch, g, patch, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(n, g * g, patch * patch * c)


def photo(w, h, rng):
    """A smooth scene with edges and texture, like a photo, of w x h pixels (RGB uint8)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / (17 + rng.uniform(0, 30))) * np.cos(y / 53.0)
    g = 128 + 90 * np.cos((x + y) / (31 + rng.uniform(0, 60)))
    b = 255 * ((x // 57 + y // 49) % 2)
    img = np.stack([r, g, b], -1) + rng.normal(0, 10, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def read_features(out, column="features"):
    """The file names (without folders) of a features table's ids, sorted, and its feature
    rows in that order."""
    import pyarrow.parquet as pq
    t = pq.read_table(out)
    col = t.column(column).combine_chunks()
    if hasattr(col, "storage"):
        col = col.storage
    values = col.flatten().to_numpy(zero_copy_only=False).reshape(t.num_rows, -1)
    ids = [os.path.basename(i) for i in t.column("id").to_pylist()]
    order = np.argsort(ids)
    return [ids[i] for i in order], values[order]


def refused(needle, *args):
    """Run ldae with `args`, which must fail with an error naming `needle`; returns stderr."""
    exe = os.environ.get("LDAE_BIN", "ldae")
    r = subprocess.run([exe, *map(str, args)], capture_output=True, text=True)
    assert r.returncode != 0, f"expected a failure naming {needle!r}"
    assert needle in r.stderr, f"error does not name {needle!r}:\n{r.stderr}"
    print(f"refused, naming {needle!r}: {r.stderr.strip().splitlines()[-1][:150]}")
    return r.stderr


def compare(label, ref, got, tolerance=1e-3, min_cosine=0.9999):
    """Print and check two (names, rows) feature sets: the same rows, max |diff| / max |value|
    within `tolerance`, every row's cosine at least `min_cosine`. Returns the relative error."""
    names_r, r = ref
    names_g, g = got
    assert names_r == names_g, (label, names_r, names_g)
    assert r.shape == g.shape, (label, r.shape, g.shape)
    rel = np.abs(r - g).max() / np.abs(r).max()
    cos = (r * g).sum(1) / np.linalg.norm(r, axis=1) / np.linalg.norm(g, axis=1)
    print(f"{label:44s} {str(r.shape):14s} max|diff|/max|value| {rel:.2e}  min cosine {cos.min():.7f}")
    assert rel <= tolerance, f"{label}: relative error {rel}"
    assert cos.min() >= min_cosine, f"{label}: cosine {cos.min()}"
    return rel
