"""PCA fitted by ldae equals numpy's eigh of the same covariance."""
import os
import sys
import tempfile

import numpy as np

from common import cifar_like, ldae, patches_f32, read_safetensors, write_idx

with tempfile.TemporaryDirectory() as tmp:
    images = cifar_like(1000)
    data = os.path.join(tmp, "cifar-like.idx")
    write_idx(data, images)
    model = os.path.join(tmp, "pca.safetensors")
    ldae("pca", "fit", "--input", data, "--image-size", 32, "--patch", 4, "--out", model)
    t, meta = read_safetensors(model)

P = patches_f32(images, 4).reshape(-1, 48).astype(np.float64)
cov = np.cov(P, rowvar=False)
w, V = np.linalg.eigh(cov)
w, V = w[::-1], V[:, ::-1].T  # descending, rows = components

ok = True
rel = np.abs(t["eigenvalues"] - w) / np.abs(w)
print(f"eigenvalues: max relative difference {rel.max():.2e} (limit 1e-6)")
ok &= rel.max() < 1e-6
mean_diff = np.abs(t["mean"] - P.mean(0)).max()
print(f"mean: max difference {mean_diff:.2e}")
ok &= mean_diff < 1e-9

# Components up to sign. A component is only defined up to rotation within a (near-)degenerate
# eigenspace, so compare those whose eigenvalue is separated from its neighbours.
gaps = np.minimum(np.abs(np.diff(w, prepend=np.inf)), np.abs(np.diff(w, append=-np.inf))) / w[0]
C = t["components"]
worst = 0.0
checked = 0
for k in range(48):
    if gaps[k] < 1e-6:
        continue
    s = np.sign(C[k] @ V[k])
    worst = max(worst, np.abs(C[k] - s * V[k]).max())
    checked += 1
print(f"components: {checked}/48 well-separated compared, max difference up to sign {worst:.2e} (limit 1e-5)")
ok &= worst < 1e-5 and checked >= 44
orth = np.abs(C @ C.T - np.eye(48)).max()
print(f"basis orthonormality error {orth:.2e}")
ok &= orth < 1e-10
sys.exit(0 if ok else 1)
