"""ldae.torch against ldae's own training step, from the same weights and the same noised batch.

A tiny run is created and saved before its first step (`--max-steps 0`: the seeded initial
weights, zero AdamW moments). ldae then takes one step (`train --resume --max-steps 1`, one
batch of all 64 rows, warm-up off so the step runs at the peak learning rate, weight decay on).
The same batch comes from the run's own recorded pipeline (decode -> patchify -> normalize ->
noise, epoch 0) written to Parquet instead of the trainer. PyTorch loads the step-0 run with
`ldae.torch.load_run`, computes the forward pass and `pca_loss` on that batch, and takes one
torch AdamW step with the run's settings.

Checked: the loss within 1e-5 relative of the one ldae logged; the parameters after the step
within 1e-5 relative of ldae's (over all parameters: the norm of the difference over the norm
of the parameters; per tensor the same, printed); a run written back by `save_run` reads in
`ldae features` bit for bit as the original.
"""
import json
import os
import shutil

import numpy as np
import pytest
import pyarrow.parquet as pq
import torch
from safetensors.torch import load_file

import ldae.torch as lt
from conftest import cli, read_table

torch.set_num_threads(2)


def ldae(*args):
    return cli(*args).stdout


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    return repr(v)


def batch_spec(spec, out):
    """The run's source and operators into a Parquet sink, as TOML."""
    lines = ["[source]"]
    lines += [f"{k} = {toml_value(v)}" for k, v in spec["source"].items() if v is not None]
    for op in spec["operator"]:
        lines.append("[[operator]]")
        lines += [f"{k} = {toml_value(v)}" for k, v in op.items() if v is not None]
    lines += ["[sink]", 'kind = "parquet"', f"out = {json.dumps(out)}"]
    return "\n".join(lines) + "\n"


def tensor(table, name):
    col = table.column(name).combine_chunks()
    col = col.storage if hasattr(col, "storage") else col
    return col.flatten().to_numpy(zero_copy_only=False).reshape(table.num_rows, -1)


@pytest.mark.parametrize("conditioning", ["dit", "mlp"])
def test_torch_step_and_run_folder_match_ldae(tmp_path, conditioning):
    TMP = str(tmp_path)
    pca = os.path.join(TMP, "pca.safetensors")
    run = os.path.join(TMP, "run")
    ldae("pca", "fit", "--input", "synthetic:64", "--image-size", "32", "--patch", "4", "--out", pca)
    ldae("train", "--input", "synthetic:64", "--pca", pca, "--dim", "16", "--preset", "tiny",
         "--epochs", "2", "--batch-size", "64", "--warmup-epochs", "0", "--lr", "0.001",
         "--weight-decay", "0.05", "--conditioning", conditioning, "--max-steps", "0", "--out", run)
    run0 = os.path.join(TMP, "run0")
    shutil.copytree(run, run0)

    # The batch of step 1, from the run's recorded pipeline.
    spec = json.load(open(os.path.join(run, "spec.json")))["spec"]
    batch_dir = os.path.join(TMP, "batch")
    spec_path = os.path.join(TMP, "batch.toml")
    open(spec_path, "w").write(batch_spec(spec, batch_dir))
    ldae("run", spec_path)
    t = pq.read_table(batch_dir)
    n, tokens, d = t.num_rows, 64, 48
    clean = torch.tensor(tensor(t, "patches").reshape(n, tokens, d))
    noisy = torch.tensor(tensor(t, "noisy").reshape(n, tokens, d))
    sigma = torch.tensor(t.column("sigma").to_numpy())

    # The noise: ldae's noisy patches are the rank-d reconstruction plus sigma times unit
    # Gaussian noise in the scaled latent, as add_noise builds them.
    import ldae as package
    basis = package.load_pca(pca)
    div = lt.latent_divisors(basis.eigenvalues, 16, "global").float()
    c16 = torch.tensor(basis.components[:16], dtype=torch.float32)
    mean = torch.tensor(basis.mean, dtype=torch.float32)
    recon = ((clean - mean) @ c16.T) @ c16 + mean
    eps = ((noisy - recon) @ c16.T) / div / sigma[:, None, None].clamp(min=1e-6)
    keep = sigma > 0.1
    assert abs(float(eps[keep].mean())) < 0.05 and abs(float(eps[keep].std()) - 1) < 0.05
    ours = lt.add_noise(clean.double(), sigma.double(), basis, 16, "global")
    e2 = ((ours.float() - recon) @ c16.T) / div / sigma[:, None, None].clamp(min=1e-6)
    assert abs(float(e2[keep].std()) - 1) < 0.05
    assert torch.allclose(lt.add_noise(clean.double(), torch.zeros(n, dtype=torch.float64), basis, 16).float(),
                          recon, atol=1e-4)

    # ldae's step.
    ldae("train", "--resume", "--out", run, "--max-steps", "1")
    logged = pq.read_table(os.path.join(run, "metrics.parquet")).to_pylist()
    assert len(logged) == 1, logged
    after = load_file(os.path.join(run, "checkpoint", "model.safetensors"))

    # PyTorch's step from the same weights.
    start = lt.load_run(run0)
    assert start.step == 0
    model = start.model
    components, _ = lt.load_pca_components(pca)
    opt = start.make_optimizer(lr=logged[0]["lr"])
    assert opt.param_groups[0]["weight_decay"] == 0.05
    pred = model(noisy, lt.timesteps(sigma))
    loss = lt.pca_loss(clean, pred, sigma, components, dim=16)
    rel_loss = abs(loss.item() - logged[0]["loss"]) / abs(logged[0]["loss"])
    print(f"loss: torch {loss.item():.7f}  ldae {logged[0]['loss']:.7f}  relative {rel_loss:.2e}")
    assert rel_loss <= 1e-5, rel_loss
    opt.zero_grad()
    loss.backward()
    opt.step()

    ours = model.state_dict()
    assert set(ours) == set(after), set(ours) ^ set(after)
    diff = sum(float((ours[k] - after[k]).double().square().sum()) for k in after)
    norm = sum(float(after[k].double().square().sum()) for k in after)
    rel = (diff / norm) ** 0.5
    worst = max(after, key=lambda k: float((ours[k] - after[k]).norm() / (after[k].norm() + 1e-12)))
    worst_rel = float((ours[worst] - after[worst]).norm() / (after[worst].norm() + 1e-12))
    moved = (sum(float((ours[k].detach() - start_w).double().square().sum())
                 for k, start_w in lt.load_run(run0).model.state_dict().items()) / norm) ** 0.5
    print(f"parameters after one AdamW step: relative {rel:.2e} (the step moved them {moved:.2e}); "
          f"worst tensor {worst} {worst_rel:.2e}")
    assert rel <= 1e-5, rel

    # Round trip: load the stepped run, save it elsewhere, ldae reads both the same.
    stepped = lt.load_run(run)
    back = os.path.join(TMP, "back")
    shutil.copytree(run, back)
    lt.save_run(back, stepped)
    a = os.path.join(TMP, "features-a")
    b = os.path.join(TMP, "features-b")
    ldae("features", "--input", "synthetic:32", "--checkpoint", run, "--out", a)
    ldae("features", "--input", "synthetic:32", "--checkpoint", back, "--out", b)
    fa, fb = tensor(pq.read_table(a), "features"), tensor(pq.read_table(b), "features")
    assert np.array_equal(fa, fb), np.abs(fa - fb).max()
    print("round trip through ldae.torch: features bit-identical")
    # A run saved from PyTorch resumes in ldae, in its own folder, from its step.
    ldae("train", "--resume", "--out", back, "--max-steps", "2")
    resumed = lt.load_run(back)
    assert resumed.step == 2, resumed.step
    assert lt.load_run(run).step == 1, "resuming the copy must not touch the original"
    ldae("probe", "--train", a, "--test", b)
    ldae("denoise", "--checkpoint", back, "--input", "synthetic:4", "--out",
         os.path.join(TMP, "grid.png"), "--count", "2")


def rows_of(batches, key="noisy"):
    out = {}
    for b in batches:
        for i, row in enumerate(b["id"]):
            assert row not in out, f"row {row} twice"
            out[row] = (b[key][i].clone(), float(b["sigma"][i]) if "sigma" in b else None,
                        int(b["label"][i]))
    return out


def test_latent_dataset_shards_are_disjoint_covering_and_deterministic(tmp_path):
    pca = tmp_path / "pca.safetensors"
    cli("pca", "fit", "--input", "synthetic:64", "--image-size", "32", "--patch", "4", "--out", pca)
    ds = lt.LatentDataset("synthetic:40", pca, 8, batch_size=8, seed=3, epoch=1)
    whole = rows_of(ds.iter_shard((0, 1)))
    assert len(whole) == 40
    first = next(iter(ds.iter_shard((0, 1))))
    assert first["patches"].shape == (8, 64, 48) and first["noisy"].dtype == torch.float32
    assert first["label"].dtype == torch.int64 and (first["label"] >= 0).all()
    # 2 ranks x 2 workers: shard rank * 2 + worker of 4.
    parts = [rows_of(ds.iter_shard((rank * 2 + worker, 4))) for rank in range(2) for worker in range(2)]
    ids = [set(p) for p in parts]
    assert all(a.isdisjoint(b) for i, a in enumerate(ids) for b in ids[i + 1:]), "shards overlap"
    assert set().union(*ids) == set(whole), "shards do not cover the rows"
    for p in parts:
        for row, (noisy, sigma, label) in p.items():
            assert torch.equal(noisy, whole[row][0]) and sigma == whole[row][1] and label == whole[row][2]
    # Real DataLoader workers find their shard themselves.
    loader = torch.utils.data.DataLoader(ds, batch_size=None, num_workers=2)
    via_workers = rows_of(loader)
    assert set(via_workers) == set(whole)
    assert all(torch.equal(via_workers[r][0], whole[r][0]) for r in whole)
    # Another epoch draws other noise; the same epoch again, the same.
    ds.set_epoch(2)
    other = rows_of(ds.iter_shard((0, 1)))
    assert any(other[r][1] != whole[r][1] for r in whole)
    ds.set_epoch(1)
    again = rows_of(ds.iter_shard((0, 1)))
    assert all(torch.equal(again[r][0], whole[r][0]) for r in whole)
    # Latents instead of noised patches.
    lat = lt.LatentDataset("synthetic:16", pca, 8, output="latents", batch_size=16, shuffle=False)
    b = next(iter(lat))
    assert b["latents"].shape == (16, 64, 8)


def train_torch(out, pca, processes, extra=()):
    """examples/python/train_torch.py on synthetic data; the loss of each step (rank 0)."""
    import subprocess
    import sys
    script = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "python", "train_torch.py")
    args = [script, "--input", "synthetic:256", "--pca", str(pca), "--dim", "8", "--preset", "tiny",
            "--batch-size", "32", "--steps", "20", "--lr", "0.001", "--threads", "1",
            "--checkpoint-every", "10", "--out", str(out), *extra]
    if processes > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc_per_node={processes}", *args]
    else:
        cmd = [sys.executable, *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout}\n{r.stderr}"
    return [json.loads(line)["loss"] for line in r.stdout.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def one_process_run(tmp_path_factory):
    """A PCA and the 20-step one-process run both training tests compare with."""
    tmp = tmp_path_factory.mktemp("torch-one")
    pca = tmp / "pca.safetensors"
    cli("pca", "fit", "--input", "synthetic:64", "--image-size", "32", "--patch", "4", "--out", pca)
    return pca, train_torch(tmp / "one", pca, 1)


def test_ddp_on_two_processes_matches_one_process_with_the_whole_batch(tmp_path, one_process_run):
    pca, one = one_process_run
    two = train_torch(tmp_path / "two", pca, 2)
    assert len(one) == len(two) == 20
    rel = max(abs(a - b) / abs(a) for a, b in zip(one, two))
    print("loss, 1 process:", [round(x, 5) for x in one])
    print("loss, 2 processes:", [round(x, 5) for x in two])
    print(f"largest relative difference over 20 steps: {rel:.2e}")
    assert rel <= 1e-4, rel
    assert one[-1] < one[0], "the loss goes down"
    # The DDP run is an ldae run.
    run = lt.load_run(str(tmp_path / "two"))
    assert run.step == 20
    cli("features", "--input", "synthetic:16", "--checkpoint", tmp_path / "two", "--out", tmp_path / "f")
    assert read_table(tmp_path / "f").num_rows == 16


def test_a_torch_run_stopped_mid_epoch_resumes_to_the_same_losses(tmp_path, one_process_run):
    pca, whole = one_process_run
    # 8 steps per epoch: step 10 stops in the middle of the second epoch.
    first = train_torch(tmp_path / "parts", pca, 1, ["--max-steps", "10"])
    second = train_torch(tmp_path / "parts", pca, 1, ["--resume"])
    assert len(first) == 10 and len(second) == 10
    rel = max(abs(a - b) / abs(a) for a, b in zip(whole, first + second))
    assert rel <= 1e-6, rel
    # The run written from PyTorch is one ldae resumes too (spec.json made by save_run).
    cli("train", "--resume", "--out", tmp_path / "parts", "--max-steps", "21")
    assert lt.load_run(str(tmp_path / "parts")).step == 21
