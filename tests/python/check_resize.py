"""ldae's decode (centre square crop, antialiased bilinear resize to S) against Pillow's
BILINEAR resize of the same crop, on large generated JPEG and PNG photos (RGB and grayscale).

Tolerance (documented in README, Conventions): mean absolute difference <= 0.5 of a level and
at most 1% of values differing by more than 2 levels. Pillow and ldae both use 8-bit fixed
point and a triangle filter widened by the scale factor; they differ in rounding and in how the
filter is cut at the crop's edges."""
import io
import os
import sys

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from common import ldae, scratch_dir

S = 224
rng = np.random.default_rng(5)


def photo(w, h):
    """A smooth scene with edges and texture, like a photo (not white noise)."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / 37.0) * np.cos(y / 53.0)
    g = 128 + 90 * np.cos((x + y) / 71.0)
    b = 255 * ((x // 97 + y // 89) % 2)
    img = np.stack([r, g, b], -1) + rng.normal(0, 12, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def main():
    tmp = scratch_dir("ldae-resize-")
    folder = os.path.join(tmp, "photos")
    os.makedirs(folder)
    cases = {}
    for name, (w, h), fmt, mode in [
        ("wide.jpg", (1200, 900), "JPEG", "RGB"),
        ("tall.png", (500, 1333), "PNG", "RGB"),
        ("odd.jpg", (731, 467), "JPEG", "RGB"),
        ("gray.png", (900, 640), "PNG", "L"),
        ("small.png", (160, 120), "PNG", "RGB"),
    ]:
        img = Image.fromarray(photo(w, h)).convert(mode)
        buf = io.BytesIO()
        img.save(buf, fmt, quality=92)
        open(os.path.join(folder, name), "wb").write(buf.getvalue())
        # The reference: Pillow decodes the same file, crops the centre square, resizes.
        ref = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        ref = ref.resize((S, S), Image.BILINEAR, box=(left, top, left + side, top + side))
        cases[name] = np.asarray(ref)
    spec = os.path.join(tmp, "decode.toml")
    out = os.path.join(tmp, "pixels")
    open(spec, "w").write(f"""
[source]
input = "{folder}"
[[operator]]
kind = "decode"
image_size = {S}
[sink]
kind = "parquet"
out = "{out}"
""")
    ldae("run", spec, "--progress", "off")
    table = pq.read_table(out)
    ids = table.column("id").to_pylist()
    pixels = np.stack([np.asarray(p, np.uint8).reshape(S, S, 3) for p in table.column("pixels").to_pylist()])
    failures = []
    for name, ref in cases.items():
        ours = pixels[ids.index(name)].astype(np.int32)
        diff = np.abs(ours - ref.astype(np.int32))
        mean, far = diff.mean(), (diff > 2).mean()
        print(f"{name:10} mean |diff| {mean:.3f}, max {diff.max()}, > 2 levels: {100 * far:.2f}%")
        if mean > 0.5 or far > 0.01:
            failures.append(name)
    if failures:
        sys.exit(f"outside the tolerance: {failures}")
    print("decode matches Pillow's BILINEAR within the tolerance")


if __name__ == "__main__":
    main()
