"""ldae: latent denoising autoencoder (l-DAE) pipelines, from Python.

Three layers, all running the same Rust code as the ``ldae`` command line:

* **Operators and pipelines on Arrow batches** -- :class:`Pipeline` and :class:`Operator` are
  callables from a ``pyarrow.RecordBatch`` or ``pyarrow.Table`` to the same kind, so they drop
  into Ray Data's ``map_batches``, Spark's ``mapInArrow`` or a Daft UDF. Batches cross into
  Rust through the Arrow C data interface without copies, and the GIL is released while they
  are processed.
* **Jobs** -- :func:`pca_fit`, :func:`encode`, :func:`train`, :func:`features`, :func:`probe`
  and :func:`run` take keyword arguments named like the CLI's flags, print what the CLI
  prints, and return the command's report as a dict. Ctrl-C stops a job cleanly.
* **Models** -- :func:`load_pca` (a PCA's arrays as numpy) and :class:`Encoder` (a trained
  run's encoder, or a timm ViT folder's, on numpy or Arrow images).
* **PyTorch** -- ``ldae.torch`` (imported on its own, needs the ``torch`` extra): the denoiser,
  its loss, run folders both ways, and ``LatentDataset`` for training in PyTorch.
"""

from ._native import LdaeError, jpeg_decoder
from .jobs import encode, features, pca_fit, probe, run, train
from .models import Encoder, PcaModel, load_pca
from .pipeline import Operator, Pipeline, operator_kinds

__all__ = [
    "Encoder",
    "LdaeError",
    "Operator",
    "PcaModel",
    "Pipeline",
    "encode",
    "features",
    "jpeg_decoder",
    "load_pca",
    "operator_kinds",
    "pca_fit",
    "probe",
    "run",
    "train",
]
