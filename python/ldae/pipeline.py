"""Operators and pipelines of the ldae engine, applied to Arrow batches."""

from __future__ import annotations

import json
import os
from typing import Any, Iterable, Mapping, Union

from . import _native

try:  # Python 3.11+
    import tomllib as _toml
except ModuleNotFoundError:  # pragma: no cover - older Pythons
    _toml = None


def operator_kinds() -> dict:
    """Every registered operator kind, with the JSON schema of its settings.

    Returns a dict ``{kind: schema}``; ``schema["properties"]`` lists the keys an operator of
    that kind takes (the same keys as a spec's ``[[operator]]`` table), with their types,
    defaults and descriptions.
    """
    return {kind: json.loads(schema) for kind, schema in _native.operator_kinds()}


class Pipeline:
    """Registered ldae operators applied in order to Arrow batches.

    ``Pipeline(operators)`` takes the same tables as a pipeline spec's ``[[operator]]`` list,
    as dicts (or :class:`Operator` objects)::

        latents = ldae.Pipeline([
            {"kind": "decode", "image_size": 32},
            {"kind": "patchify", "patch": 4},
            {"kind": "normalize"},
            {"kind": "pca_project", "pca": "pca.safetensors", "dim": 16},
        ])
        out = latents(batch)          # pyarrow.RecordBatch -> pyarrow.RecordBatch
        out = latents(table)          # pyarrow.Table -> pyarrow.Table

    **Input.** Batches come as engines read them. An ``image`` column of encoded image bytes
    (binary, or a Hugging Face ``{bytes, path}`` struct) is read as the CLI's sources read
    image files: an optional integer ``label`` column is kept, the ``id`` is the batch's ``id``
    column, else the image's ``path``, else the row's position in the batch; other columns are
    not carried. A batch without an ``image`` column (already decoded ``pixels``, say) goes to
    the first operator as it is, with an ``id`` column added when it has none.

    **Rejected rows are never lost.** With ``errors="column"`` (the default) every input row
    comes back: the rows that went through, in order, then one row per rejected row with its
    ``id`` (and ``label`` where known), nulls elsewhere, and the columns ``error_stage`` and
    ``error`` saying which stage rejected it and why (both null for good rows). Keep the good
    rows with ``out.filter(pyarrow.compute.is_null(out["error"]))``. With ``errors="raise"``
    the first rejected row raises :class:`LdaeError` naming the row and the stage, as the
    CLI's ``--on-error fail`` does.

    Relative paths in the settings (``pca = "pca.safetensors"``) are resolved against
    ``base`` (default: the current folder when the pipeline is made). A pipeline can be
    pickled (it is rebuilt from its settings where it is unpickled), so engines can ship it to
    their workers; the files it names must be readable there.

    Wrong settings (an unknown kind or key, a missing file, a column the operator cannot
    read) raise ``ValueError`` with the CLI's message.
    """

    def __init__(
        self,
        operators: Iterable[Union[Mapping[str, Any], "Operator"]],
        *,
        base: Union[str, os.PathLike, None] = None,
        errors: str = "column",
    ):
        tables = []
        for op in operators:
            if isinstance(op, Pipeline):
                tables.extend(op.operators)
            elif isinstance(op, Mapping):
                if "kind" not in op:
                    raise ValueError(f"every operator needs a 'kind': {dict(op)!r}")
                tables.append(dict(op))
            else:
                raise TypeError(f"an operator is a dict or an ldae.Operator, not {type(op).__name__}")
        self.operators = tables
        self.base = os.fspath(base) if base is not None else os.getcwd()
        self.errors = errors
        self._native = _native.NativePipeline(
            json.dumps(self.operators, default=os.fspath), self.base, errors
        )

    @classmethod
    def from_spec(cls, spec, *, errors: str = "column") -> "Pipeline":
        """The operators of a pipeline spec: a path to its TOML file, or the spec as a dict
        (its ``operator`` list). The spec's source and sink are not used. Relative paths are
        resolved against the spec file's folder."""
        base = None
        if not isinstance(spec, Mapping):
            if _toml is None:
                raise RuntimeError("reading a TOML spec needs Python 3.11+ (tomllib)")
            path = os.fspath(spec)
            with open(path, "rb") as f:
                spec = _toml.load(f)
            base = os.path.dirname(os.path.abspath(path))
        return cls(spec.get("operator", []), base=base, errors=errors)

    def __call__(self, data):
        """Run the operators on ``data`` (a ``pyarrow.RecordBatch``, a ``pyarrow.Table``, or
        any object with ``__arrow_c_array__`` / ``__arrow_c_stream__``); returns the same
        kind."""
        return self._native(data)

    def __reduce__(self):
        return (_rebuild, (self.operators, self.base, self.errors))

    def __repr__(self) -> str:
        kinds = ", ".join(op["kind"] for op in self.operators)
        return f"ldae.Pipeline([{kinds}], errors={self.errors!r})"


def _rebuild(operators, base, errors):
    return Pipeline(operators, base=base, errors=errors)


class Operator(Pipeline):
    """One registered operator: ``Operator(kind, **settings)``, a :class:`Pipeline` of one.

    ``ldae.Operator("decode", image_size=32)`` is ``ldae.Pipeline([{"kind": "decode",
    "image_size": 32}])``. :func:`operator_kinds` lists the kinds and their settings.
    """

    def __init__(self, kind: str, *, base=None, errors: str = "column", **settings):
        super().__init__([{"kind": kind, **settings}], base=base, errors=errors)

    def __reduce__(self):
        return (_rebuild, (self.operators, self.base, self.errors))
