"""A killed job's folder never reads as a table in pyarrow: killed while committing parts (or
between publishing its rows and writing `_SUCCESS`), pyarrow sees either no row or every row,
never some; the resumed run reads as the whole table."""
import os
import subprocess
import sys
import tempfile

import pyarrow.parquet as pq

from common import ldae

ROWS = 300


def encode(out, kill_at=None, *extra):
    exe = os.environ.get("LDAE_BIN", "ldae")
    env = dict(os.environ)
    if kill_at:
        env["LDAE_FAULT_KILL_AT"] = kill_at
    args = [exe, "pca", "encode", "--input", f"synthetic:{ROWS}", "--pca", PCA, "--dim", "8",
            "--out", out, "--batch-size", "20", "--rows-per-file", "40", "--progress", "off",
            *extra]
    return subprocess.run(args, capture_output=True, text=True, env=env)


def rows_pyarrow_sees(out):
    try:
        return pq.read_table(out).num_rows
    except Exception as e:  # no data files at all: pyarrow finds nothing to read
        print(f"  pyarrow: {type(e).__name__}: {str(e)[:80]}")
        return 0


ok = True
with tempfile.TemporaryDirectory() as tmp:
    PCA = os.path.join(tmp, "pca.safetensors")
    ldae("pca", "fit", "--input", "synthetic:200", "--image-size", 32, "--patch", 4, "--out", PCA)
    for point in ["part-moved:1", "part-committed:1", "part-committed:5", "publish-renamed"]:
        out = os.path.join(tmp, "t-" + point.replace(":", "-"))
        r = encode(out, point)
        killed = r.returncode == -9
        seen = rows_pyarrow_sees(out)
        marker = os.path.exists(os.path.join(out, "_SUCCESS"))
        good = killed and not marker and seen in (0, ROWS)
        print(f"kill at {point}: exit {r.returncode}, _SUCCESS {marker}, pyarrow reads {seen} rows"
              f" -> {'ok' if good else 'FAIL'}")
        ok &= good
        r = encode(out, None)  # the default: resume after the committed parts, if any
        seen = rows_pyarrow_sees(out)
        good = r.returncode == 0 and seen == ROWS and os.path.exists(os.path.join(out, "_SUCCESS"))
        print(f"  resumed: exit {r.returncode}, pyarrow reads {seen} rows -> {'ok' if good else 'FAIL'}")
        ok &= good

sys.exit(0 if ok else 1)
