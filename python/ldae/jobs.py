"""The ldae commands as Python functions.

Each function takes keyword arguments named like the command's flags (``image_size=32`` is
``--image-size 32``; ``augment=True`` is ``--augment``; a list is comma-joined:
``block=[1, 3]`` is ``--block 1,3``; ``None`` and ``False`` leave a flag out), runs the same
code as the CLI (same defaults, checks and messages: a wrong flag or value raises
``ValueError`` with the CLI's text), prints what the CLI prints, and returns the command's
report as a dict. Each function's docstring lists its flags with their defaults, generated
from the CLI's definitions (``ldae <command> --help`` shows the same).

Ctrl-C stops a running job at its next batch: nothing unfinished is committed (a training
run keeps its last checkpoint, resumable with ``resume=True``) and KeyboardInterrupt is
raised.
"""

from __future__ import annotations

import json
import os
from typing import Any

from . import _native


def _argv(command: list, positional: list, flags: dict) -> list:
    argv = list(command) + [os.fspath(p) for p in positional]
    for key, value in flags.items():
        if value is None or value is False:
            continue
        flag = "--" + key.rstrip("_").replace("_", "-")
        if value is True:
            argv.append(flag)
        elif isinstance(value, (list, tuple)):
            argv += [flag, ",".join(str(v) for v in value)]
        else:
            argv += [flag, os.fspath(value) if isinstance(value, os.PathLike) else str(value)]
    return argv


def _run(command: list, positional: list, flags: dict) -> Any:
    report = _native.run_command(_argv(command, positional, flags))
    return json.loads(report)


def _document(command: list):
    """Append the CLI command's flags (keyword, default or "required", help) to a docstring."""

    def add(function):
        lines = [f"Keyword arguments (the flags of ``ldae {' '.join(command)}``):", ""]
        for keyword, flag, text, default, required in _native.command_flags(command):
            if required:
                when = "required"
            elif default is not None:
                when = f"default {default}"
            else:
                when = "optional"
            text = " ".join(text.split())
            lines.append(f"    ``{keyword}`` ({flag}, {when}): {text}")
        function.__doc__ = (function.__doc__ or "").rstrip() + "\n\n" + "\n".join(lines) + "\n"
        return function

    return add


@_document(["pca", "fit"])
def pca_fit(input, *, out, **flags) -> dict:
    """Fit the patch PCA of a dataset: ``ldae pca fit --input INPUT --out OUT ...``.

    Returns ``{"pca": path, "rows": images read, "rejected": n, "errors": errors table,
    "explained_variance_ratio": [...]}``.
    """
    return _run(["pca", "fit"], [], {"input": input, "out": out, **flags})


@_document(["pca", "encode"])
def encode(input, *, pca, out, **flags) -> dict:
    """PCA latents of a dataset into a Parquet table: ``ldae pca encode``.

    Returns the table's report (``out``, ``rows``, ``rejected``, ``errors``, ``complete``).
    """
    return _run(["pca", "encode"], [], {"input": input, "pca": pca, "out": out, **flags})


@_document(["train"])
def train(input=None, *, out, pca=None, **flags) -> dict:
    """Pre-train an l-DAE: ``ldae train`` (``resume=True`` continues the run in ``out``).

    Returns what the training sink reports (the run folder, steps, the last loss).
    """
    return _run(["train"], [], {"input": input, "pca": pca, "out": out, **flags})


@_document(["features"])
def features(input, *, out, **flags) -> dict:
    """Feature vectors of a dataset's images: ``ldae features``.

    ``block`` may be one block or a list. Returns the table's report.
    """
    return _run(["features"], [], {"input": input, "out": out, **flags})


@_document(["probe"])
def probe(train, test, **flags) -> dict:
    """Linear (and with ``knn=True`` kNN) probes of feature tables: ``ldae probe``.

    ``where_`` (the CLI's ``--where``), ``train_where`` and ``test_where`` filter rows with
    SQL. Returns the full report: ``linear`` and ``knn`` scores (top-1, top-5, per class),
    the learning-rate grid, row counts and class names.
    """
    return _run(["probe"], [], {"train": train, "test": test, **flags})


@_document(["run"])
def run(spec, **flags) -> Any:
    """Run a pipeline spec file (TOML): ``ldae run SPEC``. Returns what its sink reports."""
    return _run(["run"], [spec], flags)
