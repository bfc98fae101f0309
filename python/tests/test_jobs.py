"""The jobs from Python: the CLI's flags as keyword arguments, its reports as dicts."""

import os

import numpy as np
import pyarrow as pa
import pytest

import ldae
from conftest import cli, image, read_table, tensor_numpy


def test_pca_fit_and_encode_report_what_they_wrote(dataset, tmp_path):
    fit = ldae.pca_fit(dataset[0], out=tmp_path / "pca.safetensors", image_size=16, patch=4)
    assert fit["rows"] == 24 and fit["rejected"] == 1
    ratio = fit["explained_variance_ratio"]
    assert len(ratio) == 48 and abs(sum(ratio) - 1) < 1e-6
    enc = ldae.encode(dataset[0], pca=fit["pca"], out=tmp_path / "latents", dim=8, latent_scale="none")
    assert enc["rows"] == 24 and enc["rejected"] == 1 and enc["complete"] is True
    # load_pca: the projection in numpy gives the encoded latents.
    model = ldae.load_pca(fit["pca"])
    assert model.components.shape == (48, 48)
    assert np.allclose(model.components @ model.components.T, np.eye(48), atol=1e-9)
    assert model.meta["patch_size"] == 4 and model.meta["image_size"] == 16
    patches = ldae.Pipeline([
        {"kind": "decode", "image_size": 16}, {"kind": "normalize"}, {"kind": "patchify", "patch": 4},
    ])(pa.table({"image": pa.array([open(f"{dataset[0]}/ant/00.jpg", "rb").read()])}))
    ours = model.project(tensor_numpy(patches["patches"]).reshape(16, 48), 8)
    table = read_table(tmp_path / "latents")
    row = table["id"].to_pylist().index("ant/00.jpg")
    theirs = tensor_numpy(table["latents"])[row].reshape(16, 8)
    assert np.allclose(ours, theirs, atol=1e-4)


def test_wrong_flags_raise_the_cli_message(dataset, tmp_path):
    with pytest.raises(ValueError) as e:
        ldae.pca_fit(dataset[0], out=tmp_path / "p.safetensors", image_size=16, patch=4, image_sise=16)
    r = cli("pca", "fit", "--input", dataset[0], "--out", tmp_path / "p.safetensors", "--image-size", 16,
            "--patch", 4, "--image-sise", 16, check=False)
    assert "unexpected argument '--image-sise'" in str(e.value)
    assert str(e.value).splitlines()[0] in r.stderr
    with pytest.raises(ldae.LdaeError, match="no-such-folder"):
        ldae.pca_fit(tmp_path / "no-such-folder", out=tmp_path / "p.safetensors", image_size=16, patch=4)


def test_train_features_probe_and_the_encoder(dataset, table, tmp_path):
    pca = ldae.pca_fit(dataset[0], out=tmp_path / "pca.safetensors", image_size=16, patch=4)["pca"]
    run = tmp_path / "run"
    trained = ldae.train(dataset[0], pca=pca, out=run, dim=8, width=32, depth=2, heads=2,
                         batch_size=8, epochs=1, progress="off")
    assert trained["run"] == str(run) and trained["steps"] >= 2
    assert trained["loss_last_20"] > 0 and trained["train_flops_per_image"] > 0
    feats = ldae.features(dataset[0], checkpoint=run, out=tmp_path / "feats")
    assert feats["rows"] == 24
    report = ldae.probe(tmp_path / "feats", tmp_path / "feats", knn=True, epochs=2)
    assert 0 <= report["linear"]["top1"] <= 1
    assert report["classes"] == ["ant", "bee", "cat"]
    # The encoder on Arrow rows equals `ldae features`, bit for bit.
    encoder = ldae.Encoder(run)
    ours = encoder(table)
    theirs = read_table(tmp_path / "feats")
    good = ours.filter(pa.compute.is_null(ours["error"]))
    order = {i: k for k, i in enumerate(good["id"].to_pylist())}
    mine = tensor_numpy(good["features"])[[order[i] for i in theirs["id"].to_pylist()]]
    assert np.array_equal(mine, tensor_numpy(theirs["features"]))
    # On numpy images: the same features as the same pixels handed over as PNG files.
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(3, 16, 16, 3), dtype=np.uint8)
    from io import BytesIO
    from PIL import Image
    pngs = []
    for im in images:
        buf = BytesIO()
        Image.fromarray(im).save(buf, format="PNG")
        pngs.append(buf.getvalue())
    from_numpy = encoder(images)
    assert from_numpy.shape == (3, 32) and from_numpy.dtype == np.float32
    from_png = tensor_numpy(encoder(pa.table({"image": pa.array(pngs)}))["features"])
    assert np.array_equal(from_numpy, from_png)


def test_ctrl_c_stops_a_job_cleanly(dataset, tmp_path):
    """An interrupt raised while a job runs stops it and leaves no complete-looking table."""
    import _thread
    import signal
    import threading

    pca = ldae.pca_fit(dataset[0], out=tmp_path / "pca.safetensors", image_size=16, patch=4)["pca"]
    # Python's own Ctrl-C handler, whatever the launcher left: a shell's background job starts
    # with SIGINT ignored, and interrupt_main() then does nothing.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    out = tmp_path / "latents"
    try:
        with pytest.raises(KeyboardInterrupt):
            # A large synthetic input that takes many seconds: the interrupt arrives mid-job.
            ldae.encode("synthetic:2000000", pca=pca, out=out, dim=8, batch_size=64)
    finally:
        timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert not (out / "_SUCCESS").exists()


def test_the_encoder_of_a_timm_folder_equals_timm(tmp_path, monkeypatch):
    """ldae.Encoder(timm_dir) on numpy images: timm's eval transform and features; the same
    model named by its hub id in a Hugging Face cache."""
    import timm
    import torch
    from PIL import Image
    from timm.models import save_for_hf

    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0,
                              global_pool="avg").eval()
    save_for_hf(model, tmp_path / "vit", safe_serialization=True)
    rng = np.random.default_rng(2)
    images = np.stack([image(rng, 240, 300) for _ in range(3)])
    ours = ldae.Encoder(tmp_path / "vit")(images)
    assert ours.shape == (3, 192) and ours.dtype == np.float32
    cfg = timm.data.resolve_data_config({}, model=model)
    transform = timm.data.create_transform(**cfg)
    x = torch.stack([transform(Image.fromarray(im)) for im in images])
    with torch.no_grad():
        ref = model.forward_head(model.forward_features(x), pre_logits=True).numpy()
    assert np.abs(ours - ref).max() <= 1e-3 * np.abs(ref).max()

    # The same model by its hub id, from a Hugging Face cache laid out as `hf download` leaves
    # it (snapshots/COMMIT/FILE -> ../../blobs/HASH; refs/main names COMMIT).
    repo = tmp_path / "hub" / "models--acme--vit-tiny"
    commit = "89abcdef" * 5
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for f in (tmp_path / "vit").iterdir():
        blob = repo / "blobs" / f"blob-{f.name}"
        blob.write_bytes(f.read_bytes())
        (snapshot / f.name).symlink_to(os.path.relpath(blob, snapshot))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    assert np.array_equal(ldae.Encoder("acme/vit-tiny")(images), ours)


def test_docstrings_list_the_cli_flags_with_their_defaults():
    # Generated from the CLI's definitions: required flags say so, defaults are the CLI's.
    fit = ldae.pca_fit.__doc__
    assert "``image_size`` (--image-size, required)" in fit
    assert "``patch`` (--patch, required)" in fit
    assert "``latent_scale`` (--latent-scale, default global)" in fit
    assert "``limit`` (--limit, optional): Read at most N rows" in fit
    assert "``dim`` (--dim, required)" in ldae.encode.__doc__
    assert "``on_error`` (--on-error, default skip)" in ldae.encode.__doc__
    assert "``overwrite`` (--overwrite, optional)" in ldae.encode.__doc__
    assert "Keyword arguments (the flags of ``ldae train``)" in ldae.train.__doc__
