"""Trained models from Python: a patch PCA's arrays, a training run's encoder."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import numpy as np
import pyarrow as pa

from . import _native
from .pipeline import Pipeline


@dataclass(frozen=True)
class PcaModel:
    """A patch PCA (what ``ldae pca fit`` writes).

    ``mean`` (D,), ``components`` (D, D: one unit direction per row, largest eigenvalue
    first), ``eigenvalues`` (D,), ``explained_variance_ratio`` (D,), and ``meta`` (image size,
    patch size, channels, normalisation, the data it was fitted on). D = patch * patch *
    channels, with pixels in the patch order ``py, px, c``.
    """

    mean: np.ndarray
    components: np.ndarray
    eigenvalues: np.ndarray
    explained_variance_ratio: np.ndarray
    meta: dict

    def project(self, patches: np.ndarray, dim: int) -> np.ndarray:
        """Coordinates of ``patches`` (..., D) on the first ``dim`` components, without the
        latent scaling ``pca_project`` applies."""
        return (np.asarray(patches, dtype=np.float64) - self.mean) @ self.components[:dim].T


def load_pca(path: Union[str, os.PathLike]) -> PcaModel:
    """Read a PCA model file (``.safetensors`` from ``ldae pca fit``)."""
    raw = _native.load_pca(os.fspath(path))
    return PcaModel(
        mean=raw["mean"],
        components=raw["components"],
        eigenvalues=raw["eigenvalues"],
        explained_variance_ratio=raw["explained_variance_ratio"],
        meta=json.loads(raw["meta"]),
    )


def _images_batch(images: np.ndarray) -> pa.RecordBatch:
    """A batch of ``pixels`` (a UInt8 [H, W, C] tensor column) from (N, H, W[, C]) uint8."""
    arr = np.ascontiguousarray(images)
    if arr.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W[, C]), got {arr.dtype}")
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.ndim != 4:
        raise ValueError(f"images must be (N, H, W[, C]), got shape {arr.shape}")
    pixels = pa.FixedShapeTensorArray.from_numpy_ndarray(arr)
    return pa.RecordBatch.from_arrays([pixels], names=["pixels"])


def feature_matrix(column) -> np.ndarray:
    """A tensor column (``features``) as a 2-d float32 numpy array, one row per image."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if hasattr(column, "storage"):
        column = column.storage
    n = len(column)
    return column.flatten().to_numpy(zero_copy_only=False).reshape(n, -1)


class Encoder:
    """A training run's encoder, or a timm ViT folder's, as ``ldae features --checkpoint DIR``
    reads it.

    ``Encoder(run)`` uses the run's recorded feature settings (block, t, pooling, EMA
    weights); ``block`` (an int or a list of blocks), ``t``, ``pooling`` ("mean", "grid2",
    "grid4", "none", "token", "token_mean", "map" or "head") and ``ema`` override them. ``Encoder(timm_dir)`` (a folder
    with timm's ``config.json`` and ``model.safetensors``) uses the model's own eval
    preprocessing and pooling (see docs/timm.md). Call it on

    * a uint8 numpy array of images (N, H, W[, C]): returns the features as a float32 numpy
      array (N, F), rows in order (any size of image: they are resized as the run's PCA was
      fitted); with several blocks, a dict {block: array};
    * a ``pyarrow.RecordBatch`` / ``Table`` with an ``image`` column (as :class:`Pipeline`
      takes): returns the same kind with ``id``, ``label`` and ``features`` (and rejected rows
      with ``error``, as :class:`Pipeline` does).
    """

    def __init__(
        self,
        checkpoint: Union[str, os.PathLike],
        *,
        block: Union[int, Sequence[int], None] = None,
        t: Optional[float] = None,
        pooling: Optional[str] = None,
        ema: Optional[bool] = None,
        device: str = "cpu",
    ):
        blocks = [] if block is None else ([block] if isinstance(block, int) else list(block))
        path = os.fspath(checkpoint)
        # A hub id (``facebook/dinov2-small``) that is not a folder here is looked up in the
        # local Hugging Face cache, so it is passed on as it is.
        path = os.path.abspath(path) if os.path.exists(path) else path
        operators = json.loads(
            _native.encoder_operators(path, blocks, t, pooling, ema, device)
        )
        self.pipeline = Pipeline(operators)

    def __call__(self, data):
        if isinstance(data, np.ndarray):
            out = self.pipeline(_images_batch(data))
            bad = out["error"].drop_null()
            if len(bad):
                raise _native.LdaeError(f"an image was rejected: {bad[0]}")
            if "features" in out.column_names:
                return feature_matrix(out["features"])
            return {
                int(name.rsplit("_", 1)[1]): feature_matrix(out[name])
                for name in out.column_names
                if name.startswith("features_")
            }
        return self.pipeline(data)
