"""ldae probe on embeddings another tool wrote: a pandas DataFrame saved with to_parquet.

The training table holds float32 vectors in a list column named `embedding` and string labels
in `species`; the test table float64 vectors (pandas' default) and the same kind of labels;
neither has an `id` column. ldae finds the one vector column itself, maps the strings onto their
sorted values (recorded as the classes), and its linear probe must agree with scikit-learn's
StandardScaler + LogisticRegression on the same rows within 2 points. Broken tables (vectors of
differing length, a NaN or a null value, no label column) must fail with an error that names
the row or column.
"""
import json
import os
import subprocess
import tempfile

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from common import ldae

rng = np.random.default_rng(11)
names = ["wren", "heron", "owl", "kestrel", "finch"]
dim, n_train, n_test = 48, 3000, 1000
means = rng.normal(size=(len(names), dim)) * 0.3
scales = 10.0 ** rng.uniform(-1, 1, size=dim)


def draw(n):
    labels = rng.integers(0, len(names), size=n)
    x = (means[labels] + rng.normal(size=(n, dim))) * scales
    return x, [names[k] for k in labels]


x_train, y_train = draw(n_train)
x_test, y_test = draw(n_test)


def run_ldae(*args):
    exe = os.environ.get("LDAE_BIN", "ldae")
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True)


with tempfile.TemporaryDirectory() as tmp:
    train = os.path.join(tmp, "train.parquet")
    test = os.path.join(tmp, "test.parquet")
    pd.DataFrame({"embedding": list(x_train.astype(np.float32)), "species": y_train,
                  "note": "pandas"}).to_parquet(train)
    pd.DataFrame({"embedding": list(x_test), "species": y_test}).to_parquet(test)
    for path, item in [(train, pa.float32()), (test, pa.float64())]:
        t = pq.read_schema(path).field("embedding").type
        assert pa.types.is_list(t) and t.value_type == item, t

    out = os.path.join(tmp, "probe", "results.json")
    ldae("probe", "--train", train, "--test", test, "--label", "species", "--out", out)
    res = json.load(open(out))
    assert res["column"] == "embedding" and res["label"] == "species", res
    assert res["classes"] == sorted(names), res["classes"]
    assert res["string_labels"] is True
    assert res["train_rows"] == n_train and res["test_rows"] == n_test, res
    ours = res["linear"]["top1"]

    scaler = StandardScaler().fit(x_train.astype(np.float32))
    clf = LogisticRegression(max_iter=3000).fit(scaler.transform(x_train.astype(np.float32)), y_train)
    theirs = clf.score(scaler.transform(x_test), y_test)
    print(f"pandas-written embeddings, {len(names)} string classes: "
          f"ldae linear top-1 {100 * ours:.2f}%, scikit-learn {100 * theirs:.2f}%")
    assert abs(ours - theirs) <= 0.02, (ours, theirs)

    # The predictions name rows by position (no id column) with the sorted class indices.
    preds = pq.read_table(os.path.join(tmp, "probe", "results.predictions.parquet")).to_pandas()
    assert preds["id"].iloc[0] == "row 0" and len(preds) == n_test
    assert list(preds["label"][:5]) == [sorted(names).index(y) for y in y_test[:5]]

    # Integer labels of another width name the same rows' classes by number.
    small = os.path.join(tmp, "small.parquet")
    pd.DataFrame({"embedding": list(x_test), "label": np.array(
        [names.index(y) for y in y_test], dtype=np.uint8)}).to_parquet(small)
    ldae("probe", "--train", small, "--test", small, "--out", os.path.join(tmp, "u8", "r.json"))
    assert json.load(open(os.path.join(tmp, "u8", "r.json")))["classes"] == ["0", "1", "2", "3", "4"]

    # A row without a label and a row without a vector (a pipeline's rejected row, say) are
    # skipped, each counted under its own reason.
    holes = os.path.join(tmp, "holes.parquet")
    rows = [list(v) for v in x_test[:40]]
    rows[4] = None
    labels = [names.index(y) for y in y_test[:40]]
    labels[9] = None
    pq.write_table(pa.table({"embedding": pa.array(rows, type=pa.list_(pa.float64())),
                             "label": pa.array(labels, type=pa.int64())}), holes)
    out = os.path.join(tmp, "holes", "r.json")
    r = run_ldae("probe", "--train", holes, "--test", holes, "--out", out)
    assert r.returncode == 0, r.stderr
    assert "(38 rows, skipped 1 without a label and 1 without features)" in r.stdout, r.stdout
    res = json.load(open(out))
    assert res["train_rows"] == 38 and res["train_rows_unlabelled"] == 1, res
    assert res["train_rows_without_features"] == 1 and res["test_rows_without_features"] == 1, res

    # Broken tables: one clear error each, naming what is wrong.
    ragged = os.path.join(tmp, "ragged.parquet")
    rows = list(x_test[:10])
    rows[7] = rows[7][:5]
    pd.DataFrame({"embedding": rows, "label": [0, 1] * 5}).to_parquet(ragged)
    r = run_ldae("probe", "--train", ragged, "--test", ragged)
    assert r.returncode != 0 and "row 'row 7' has 5 values" in r.stderr, r.stderr

    nan = os.path.join(tmp, "nan.parquet")
    rows = list(x_test[:10])
    rows[3] = rows[3].copy()
    rows[3][2] = np.nan
    # pandas stores a NaN as a null value; pyarrow keeps it a NaN. Both are refused.
    pd.DataFrame({"embedding": rows, "label": [0, 1] * 5}).to_parquet(nan)
    r = run_ldae("probe", "--train", nan, "--test", nan)
    assert r.returncode != 0 and "row 'row 3' has a null value" in r.stderr, r.stderr
    pq.write_table(pa.table({"embedding": pa.array(rows, type=pa.list_(pa.float64())),
                             "label": [0, 1] * 5}), nan)
    r = run_ldae("probe", "--train", nan, "--test", nan)
    assert r.returncode != 0 and "row 'row 3' has NaN at position 2" in r.stderr, r.stderr

    r = run_ldae("probe", "--train", train, "--test", test)
    assert r.returncode != 0 and "no label column 'label'" in r.stderr and "--label" in r.stderr, r.stderr
print("foreign embeddings: OK")
