"""ldae probe against scikit-learn on the same features.

Ten overlapping Gaussian classes in 64 dimensions, with feature scales spread over four orders
of magnitude (so standardisation matters), written as one Parquet table with a `split` column;
ldae reads it through DataFusion with --train-where / --test-where. The linear probe's top-1 must
agree with StandardScaler + LogisticRegression within one point, and the kNN probe with a
direct numpy implementation of the same weighted vote.
"""
import json
import os
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from common import ldae

rng = np.random.default_rng(7)
classes, dim, n_train, n_test = 10, 64, 6000, 2000
means = rng.normal(size=(classes, dim)) * 0.35
scales = 10.0 ** rng.uniform(-2, 2, size=dim)
n = n_train + n_test
labels = rng.integers(0, classes, size=n)
x = ((means[labels] + rng.normal(size=(n, dim))) * scales).astype(np.float32)
split = np.array(["train"] * n_train + ["test"] * n_test)

with tempfile.TemporaryDirectory() as tmp:
    table_dir = os.path.join(tmp, "features")
    os.makedirs(table_dir)
    feats = pa.FixedSizeListArray.from_arrays(pa.array(x.reshape(-1)), dim)
    table = pa.table({
        "id": pa.array([f"row{i:05d}" for i in range(n)]),
        "label": pa.array(labels.astype(np.int64)),
        "split": pa.array(split),
        "features": feats,
    })
    pq.write_table(table, os.path.join(table_dir, "part-00000.parquet"))
    out = os.path.join(tmp, "results.json")
    start = time.time()
    ldae("probe", "--train", table_dir, "--test", table_dir,
         "--train-where", "split = 'train'", "--test-where", "split = 'test'",
         "--knn", "--out", out)
    ldae_seconds = time.time() - start
    res = json.load(open(out))
    assert res["train_rows"] == n_train and res["test_rows"] == n_test, res
    preds = pq.read_table(os.path.join(tmp, "results.predictions.parquet"))
    assert preds.num_rows == n_test
    for pic in ("results.linear-confusion.png", "results.knn-confusion.png"):
        assert os.path.getsize(os.path.join(tmp, pic)) > 0, pic

xtr, ytr = x[:n_train], labels[:n_train]
xte, yte = x[n_train:], labels[n_train:]
start = time.time()
scaler = StandardScaler().fit(xtr)
clf = LogisticRegression(max_iter=5000).fit(scaler.transform(xtr), ytr)
sk_seconds = time.time() - start
sk_top1 = (clf.predict(scaler.transform(xte)) == yte).mean()
ldae_top1 = res["linear"]["top1"]
print(f"linear top-1: ldae {ldae_top1:.4f} (whole command {ldae_seconds:.1f} s, "
      f"fit {res['linear']['seconds']:.1f} s), scikit-learn {sk_top1:.4f} ({sk_seconds:.1f} s)")
assert 0.3 < sk_top1 < 0.95, f"the check's data should be neither trivial nor hopeless: {sk_top1}"
assert abs(ldae_top1 - sk_top1) <= 0.01, (ldae_top1, sk_top1)

# kNN: standardise with training statistics (biased variance, eps 1e-5), unit rows, cosine
# similarity, 20 neighbours voting exp(sim / 0.07).
mean, var = xtr.astype(np.float64).mean(0), xtr.astype(np.float64).var(0)
def unit(a):
    z = (a - mean) / np.sqrt(var + 1e-5)
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
sims = unit(xte) @ unit(xtr).T
top = np.argsort(-sims, axis=1, kind="stable")[:, :20]
votes = np.zeros((n_test, classes))
for i in range(n_test):
    np.add.at(votes[i], ytr[top[i]], np.exp(sims[i, top[i]] / 0.07))
np_knn = (votes.argmax(1) == yte).mean()
print(f"kNN top-1: ldae {res['knn']['top1']:.4f}, numpy {np_knn:.4f}")
assert abs(res["knn"]["top1"] - np_knn) <= 0.002, (res["knn"]["top1"], np_knn)
print("probe agrees with scikit-learn and numpy")
