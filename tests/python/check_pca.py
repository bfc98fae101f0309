"""PCA fitted by ldae equals numpy's eigh of the same covariance, at patch 4 (D = 48) and at the
paper's patch 16 (D = 768)."""
import os
import sys
import tempfile

import numpy as np

from common import cifar_like, ldae, patches_f32, read_safetensors, write_idx


def check(images, patch, min_separated):
    d = patch * patch * 3
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "cifar-like.idx")
        write_idx(data, images)
        model = os.path.join(tmp, "pca.safetensors")
        ldae("pca", "fit", "--input", data, "--image-size", images.shape[1], "--patch", patch, "--out", model)
        t, meta = read_safetensors(model)

    P = patches_f32(images, patch).reshape(-1, d).astype(np.float64)
    cov = np.cov(P, rowvar=False)
    w, V = np.linalg.eigh(cov)
    w, V = w[::-1], V[:, ::-1].T  # descending, rows = components

    print(f"patch {patch} (D = {d}, {len(P)} patches):")
    ok = True
    # Relative to each eigenvalue, but no finer than 1e-9 of the largest (the smallest ones of a
    # 768-d covariance are rounding-level).
    rel = np.abs(t["eigenvalues"] - w) / np.maximum(np.abs(w), 1e-9 * w[0])
    print(f"  eigenvalues: max relative difference {rel.max():.2e} (limit 1e-6)")
    ok &= rel.max() < 1e-6
    mean_diff = np.abs(t["mean"] - P.mean(0)).max()
    print(f"  mean: max difference {mean_diff:.2e}")
    ok &= mean_diff < 1e-9

    # Components up to sign. A component is only defined up to rotation within a
    # (near-)degenerate eigenspace, so compare those whose eigenvalue is separated from its
    # neighbours.
    gaps = np.minimum(np.abs(np.diff(w, prepend=np.inf)), np.abs(np.diff(w, append=-np.inf))) / w[0]
    C = t["components"]
    worst = 0.0
    checked = 0
    for k in range(d):
        if gaps[k] < 1e-6:
            continue
        s = np.sign(C[k] @ V[k])
        worst = max(worst, np.abs(C[k] - s * V[k]).max())
        checked += 1
    print(f"  components: {checked}/{d} well-separated compared, max difference up to sign {worst:.2e} (limit 1e-5)")
    ok &= worst < 1e-5 and checked >= min_separated
    orth = np.abs(C @ C.T - np.eye(d)).max()
    print(f"  basis orthonormality error {orth:.2e}")
    ok &= orth < 1e-10
    return ok


def smooth_images(n, side, seed):
    """n side x side RGB images of smoothed noise, smoothed more along x than y and with
    correlated channels, so the patch covariance is full rank with a decaying spectrum."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, side, side, 3))
    for axis, width in ((1, 3), (2, 5)):
        x = sum(np.roll(x, k, axis=axis) for k in range(width)) / width
    x = x @ np.array([[1.0, 0.6, 0.3], [0.0, 0.8, 0.4], [0.0, 0.0, 0.6]])
    return np.clip(128 + 60 * x, 0, 255).astype(np.uint8)


ok = check(cifar_like(1000), 4, 44)
# The paper's patch 16: 1000 images of 64 px, 16,000 patches of 768 values.
ok &= check(smooth_images(1000, 64, 1), 16, 384)
sys.exit(0 if ok else 1)
