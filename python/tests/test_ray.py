"""Ray Data: ldae's pipeline in map_batches over sharded Parquet equals `ldae pca encode`."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import ray

import ldae
from conftest import cli, read_table, tensor_numpy



def test_ray_map_batches_equals_pca_encode(dataset, table, pca, tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    n = table.num_rows
    bounds = np.linspace(0, n, 5).astype(int)
    for k in range(4):
        pq.write_table(table.slice(bounds[k], bounds[k + 1] - bounds[k]), shards / f"part-{k}.parquet")
    cli("pca", "encode", "--input", shards, "--pca", pca, "--dim", 8, "--out", tmp_path / "cli")
    theirs = read_table(tmp_path / "cli")
    # The CLI names rows file:index (index over the whole folder); map them to the image paths.
    paths = table["image"].combine_chunks().field("path").to_pylist()
    their_paths = [paths[int(i.rsplit(":", 1)[1])] for i in theirs["id"].to_pylist()]

    pipeline = ldae.Pipeline([
        {"kind": "decode", "image_size": 16},
        {"kind": "normalize"},
        {"kind": "patchify", "patch": 4},
        {"kind": "pca_project", "pca": pca, "dim": 8},
    ])
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        # The README's example: read the shards, map the pipeline, write Parquet.
        ds = ray.data.read_parquet(str(shards)).map_batches(pipeline, batch_format="pyarrow", batch_size=4)
        ds.write_parquet(str(tmp_path / "latents"))
        ours = pq.read_table(tmp_path / "latents")
    finally:
        ray.shutdown()
    assert ours.num_rows == n
    bad = ours.filter(pa.compute.invert(pa.compute.is_null(ours["error"])))
    assert bad["id"].to_pylist() == ["bee/zz-broken.jpg"]
    good = ours.filter(pa.compute.is_null(ours["error"]))
    order = {p: k for k, p in enumerate(good["id"].to_pylist())}
    mine = tensor_numpy(good["latents"])[[order[p] for p in their_paths]]
    assert np.array_equal(mine, tensor_numpy(theirs["latents"]))
