"""Operators and pipelines on Arrow batches give the CLI's tables, row for row, bit for bit."""

import os

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import ldae
from conftest import cli, read_table, tensor_numpy


def chain(pca):
    return [
        {"kind": "decode", "image_size": 16},
        {"kind": "normalize"},
        {"kind": "patchify", "patch": 4},
        {"kind": "pca_project", "pca": pca, "dim": 8},
    ]


def noise_chain(pca):
    return chain(pca)[:3] + [{"kind": "noise", "pca": pca, "dim": 8, "seed": 3}]


def spec_toml(input, operators, out):
    lines = [f'[source]\ninput = "{input}"\n']
    for op in operators:
        lines.append("[[operator]]")
        for k, v in op.items():
            lines.append(f"{k} = {v!r}".replace("'", '"'))
        lines.append("")
    lines.append(f'[sink]\nkind = "parquet"\nout = "{out}"\n')
    return "\n".join(lines)


def cli_table(tmp_path, input, operators):
    spec = tmp_path / "spec.toml"
    out = tmp_path / "out"
    spec.write_text(spec_toml(input, operators, out))
    cli("run", spec)
    return read_table(out), pa.parquet.read_table(out / "_errors.parquet")


def assert_same_rows(ours, theirs):
    """Same ids, labels and every value of every column the CLI wrote, bit for bit."""
    good = ours.filter(pc.is_null(ours["error"]))
    assert sorted(good["id"].to_pylist()) == sorted(theirs["id"].to_pylist())
    order = {id_: i for i, id_ in enumerate(good["id"].to_pylist())}
    index = pa.array([order[i] for i in theirs["id"].to_pylist()])
    good = good.take(index)
    for name in theirs.column_names:
        a, b = good[name], theirs[name]
        if pa.types.is_fixed_size_list(b.type) or hasattr(b.type, "storage_type"):
            x, y = tensor_numpy(a), tensor_numpy(b)
            assert x.dtype == y.dtype and x.shape == y.shape, name
            assert np.array_equal(x.view(np.uint8), y.view(np.uint8)), f"column {name} differs"
        else:
            assert a.to_pylist() == b.to_pylist(), f"column {name} differs"


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_each_operator_equals_the_cli(dataset, table, pca, tmp_path, length):
    operators = chain(pca)[:length]
    theirs, their_errors = cli_table(tmp_path, dataset[0], operators)
    ours = ldae.Pipeline(operators)(table)
    assert isinstance(ours, pa.Table)
    assert_same_rows(ours, theirs)
    # The corrupt file comes back as a row, rejected by the same stage for the same reason.
    bad = ours.filter(pc.invert(pc.is_null(ours["error"])))
    assert bad["id"].to_pylist() == their_errors["id"].to_pylist() == ["bee/zz-broken.jpg"]
    assert bad["error_stage"].to_pylist() == their_errors["stage"].to_pylist()
    assert bad["error"].to_pylist() == their_errors["message"].to_pylist()
    assert bad["label"].to_pylist() == [1]
    assert ours.num_rows == table.num_rows


def test_noise_equals_the_cli_whatever_the_batching(dataset, table, pca, tmp_path):
    operators = noise_chain(pca)
    theirs, _ = cli_table(tmp_path, dataset[0], operators)
    pipeline = ldae.Pipeline(operators)
    assert_same_rows(pipeline(table), theirs)
    # Batch by batch (as an engine hands them over), in another order: the same rows.
    pieces = [pipeline(b) for b in table.to_batches(max_chunksize=5)[::-1]]
    assert all(isinstance(p, pa.RecordBatch) for p in pieces)
    assert_same_rows(pa.Table.from_batches(pieces), theirs)


def test_operator_and_spec_file_build_the_same_pipeline(dataset, table, pca, tmp_path):
    ops = chain(pca)
    spec = tmp_path / "spec.toml"
    spec.write_text(spec_toml(dataset[0], ops, tmp_path / "unused"))
    a = ldae.Pipeline([ldae.Operator(op["kind"], **{k: v for k, v in op.items() if k != "kind"}) for op in ops])(table)
    b = ldae.Pipeline.from_spec(spec)(table)
    c = ldae.Pipeline.from_spec({"operator": ops})(table)
    assert a.equals(b) and a.equals(c)


def test_plain_binary_images_without_path_get_positional_ids(dataset, pca):
    files = [f for f in dataset[1] if not f[0].endswith("broken.jpg")][:5]
    batch = pa.record_batch({"image": pa.array([b for _, _, b in files], type=pa.large_binary())})
    out = ldae.Operator("decode", image_size=16)(batch)
    assert out["id"].to_pylist() == ["0", "1", "2", "3", "4"]
    assert out["label"].null_count == 5


def test_a_rejected_row_raises_when_asked(table, pca):
    with pytest.raises(ldae.LdaeError, match=r"bee/zz-broken.jpg"):
        ldae.Pipeline(chain(pca), errors="raise")(table)


def test_rows_an_earlier_pipeline_rejected_stay_rejected(table, pca):
    """Engines chain pipelines (Ray Data's map_batches twice): the second hands the first's
    rejected rows on, rejected by their first stage for their first reason, in one pair of
    error columns; chained or whole, the same table."""
    first = ldae.Pipeline(chain(pca)[:2])(table)
    assert first["error_stage"].to_pylist()[-1] == "decode"
    second = ldae.Pipeline(chain(pca)[2:])(first)
    assert second.column_names.count("error") == 1
    assert second.equals(ldae.Pipeline(chain(pca))(table))
    bad = second.filter(pc.invert(pc.is_null(second["error"])))
    assert bad["id"].to_pylist() == ["bee/zz-broken.jpg"]
    assert bad["label"].to_pylist() == [1]
    assert bad["latents"].null_count == 1
    # Engines may hand the error columns on as large strings.
    large = first.cast(pa.schema([f.with_type(pa.large_string()) if f.name.startswith("error")
                                  else f for f in first.schema]))
    assert ldae.Pipeline(chain(pca)[2:])(large).equals(second)


def test_a_null_tensor_is_rejected_not_read_as_an_image(table, pca):
    decoded = ldae.Operator("decode", image_size=16)(table).combine_chunks()
    good = decoded.filter(pc.is_null(decoded["error"])).drop_columns(["error_stage", "error"])
    pixels = good["pixels"].chunk(0)
    storage = pa.concat_arrays([pa.nulls(1, pixels.storage.type), pixels.storage[1:]])
    holed = good.set_column(
        good.column_names.index("pixels"), "pixels",
        pa.ExtensionArray.from_storage(pixels.type, storage))
    out = ldae.Pipeline(chain(pca)[1:])(holed)
    assert out.num_rows == holed.num_rows
    bad = out.filter(pc.invert(pc.is_null(out["error"])))
    assert bad["id"].to_pylist() == [holed["id"][0].as_py()]
    assert bad["error_stage"].to_pylist() == ["source:arrow"]
    assert bad["error"].to_pylist() == ["its `pixels` tensor is null"]
    assert bad["label"].to_pylist() == [holed["label"][0].as_py()]
    # The other rows are those of the whole pipeline.
    whole = ldae.Pipeline(chain(pca))(table)
    kept = out.filter(pc.is_null(out["error"]))
    assert kept["latents"].equals(whole["latents"][1:kept.num_rows + 1])


def test_pipelines_pickle_for_engines(table, pca):
    import pickle

    p = ldae.Pipeline(chain(pca))
    q = pickle.loads(pickle.dumps(p))
    assert q(table).equals(p(table))


def test_wrong_settings_raise_the_cli_message(dataset, tmp_path):
    ops = [{"kind": "decode", "image_size": 16, "colour": 3}]
    with pytest.raises(ValueError) as e:
        ldae.Pipeline(ops)
    spec = tmp_path / "bad.toml"
    spec.write_text(spec_toml(dataset[0], ops, tmp_path / "out"))
    r = cli("run", spec, check=False)
    assert r.returncode != 0
    # The CLI names the spec component the same way and gives serde's reason.
    assert "unknown field `colour`" in str(e.value)
    assert "unknown field `colour`" in r.stderr
    with pytest.raises(ValueError, match="unknown operator kind|unknown kind|resize"):
        ldae.Operator("resize", size=3)
    # A plan error: patchify before decode has no pixels to read.
    with pytest.raises(ValueError, match="patchify"):
        ldae.Operator("patchify", patch=4)(pa.record_batch({"image": pa.array([b"x"])}))


def test_operator_kinds_describe_their_settings():
    kinds = ldae.operator_kinds()
    assert {"decode", "normalize", "patchify", "pca_project", "noise", "encoder"} <= set(kinds)
    assert "image_size" in kinds["decode"]["properties"]


def test_jpeg_decoder_is_the_one_the_cli_reports():
    version = cli("--version").stdout
    assert f"JPEG decoder: {ldae.jpeg_decoder()}" in version, version
