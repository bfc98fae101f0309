#!/usr/bin/env python3
"""Draw a table of u8 image columns (e.g. examples/denoise-pictures.toml's output) as a PNG grid.

usage: show_pictures.py TABLE_DIR OUT.png [COLUMN ...]
Each row of the grid is one table row; each column one u8 [S, S, C] tensor column (default:
every u8 tensor column). Needs pyarrow and numpy only.
"""
import struct
import sys
import zlib

import numpy as np
import pyarrow.parquet as pq


def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(png)


def main():
    table = pq.read_table(sys.argv[1])
    names = sys.argv[3:] or [
        f.name for f in table.schema
        if hasattr(f.type, "storage_type") and f.type.value_type == "uint8"
    ]
    columns = [table[n].combine_chunks().to_numpy_ndarray() for n in names]
    rows, s = columns[0].shape[0], columns[0].shape[1]
    zoom, gap = 4, 2
    cell = s * zoom
    grid = np.full((rows * (cell + gap) + gap, len(columns) * (cell + gap) + gap, 3), 255, np.uint8)
    for c, images in enumerate(columns):
        for r in range(rows):
            img = images[r]
            if img.shape[2] == 1:
                img = np.repeat(img, 3, axis=2)
            big = img.repeat(zoom, axis=0).repeat(zoom, axis=1)
            y, x = gap + r * (cell + gap), gap + c * (cell + gap)
            grid[y:y + cell, x:x + cell] = big
    write_png(sys.argv[2], grid)
    print(f"wrote {sys.argv[2]}: {rows} rows x columns {', '.join(names)}")


if __name__ == "__main__":
    main()
