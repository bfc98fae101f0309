"""ldae's l-DAE denoiser in PyTorch, with ldae's parameter names and shapes, and its run folder
both ways (``pip install "./python[torch]"``).

* :class:`Denoiser` is the network ldae trains (DiT-style blocks with adaLN-Zero, exact GELU,
  LayerNorm without affine parameters and eps 1e-6, no class token, the fixed 2D sin-cos
  position table, a sinusoidal + 2-layer MLP timestep embedding), built from a run's recorded
  sizes or a preset; ``state_dict()`` keys are ldae's safetensors names.
* :func:`pca_loss`, :func:`timesteps`, :func:`sample_sigma`, :func:`add_noise` and
  :func:`learning_rate` are ldae's weighted PCA-space loss, its map from noise level sigma to
  the network's timestep, its multi-level noise schedule and latent noise, and its schedule.
* :class:`LatentDataset` streams training batches from ldae's Rust pipeline.
* :func:`load_run` reads an ldae run folder (weights, EMA, AdamW moments, step, settings);
  :func:`save_run` writes one that ``ldae features``, ``probe``, ``denoise`` and
  ``train --resume`` read.
"""
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Preset sizes: width, blocks of the encoder (the decoder has as many), heads.
PRESETS = {"tiny": (128, 3, 4), "small": (384, 12, 6), "base": (768, 12, 12),
           "large": (1024, 24, 16)}
#: Discrete noise levels of the multi-level schedule (t in 0..T-1, sigma = sqrt 2 t / (T-1)).
NOISE_STEPS = 1000
#: Weight of the PCA directions beyond the latent dimension d in the loss.
TAIL_WEIGHT = 0.1
NORM_EPS = 1e-6


def position_embedding(grid, width):
    """The fixed 2D sin-cos table [grid^2, width] (row half, then column half; MAE's)."""
    quarter = width // 4
    omega = 1.0 / 10000.0 ** (np.arange(quarter, dtype=np.float64) / quarter)
    rows = []
    for r in range(grid):
        for c in range(grid):
            v = []
            for pos in (r, c):
                v.append(np.sin(pos * omega))
                v.append(np.cos(pos * omega))
            rows.append(np.concatenate(v))
    return torch.tensor(np.array(rows), dtype=torch.float32)


def timestep_embedding(t, dim):
    """Sinusoidal embedding of continuous timesteps t [B] into dim values (cos, then sin)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


def timesteps(sigma):
    """The continuous timestep of noise level sigma: t = sigma (T-1) / sqrt 2."""
    return sigma * ((NOISE_STEPS - 1) / math.sqrt(2.0))


def _norm(x):
    return F.layer_norm(x, x.shape[-1:], eps=NORM_EPS)


def _modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        b, n, w = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        return self.proj(out.transpose(1, 2).reshape(b, n, w))


class Mlp(nn.Module):
    def __init__(self, width, hidden):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """A transformer block with adaLN-Zero conditioning (ldae's names)."""

    def __init__(self, width, heads, mlp_ratio=4, conditioning="dit"):
        super().__init__()
        self.attn = Attention(width, heads)
        self.mlp = Mlp(width, width * mlp_ratio)
        if conditioning == "mlp":
            self.cond_hidden = nn.Linear(width, width // 4)
            self.ada_ln = nn.Linear(width // 4, 6 * width)
        elif conditioning == "dit":
            self.cond_hidden = None
            self.ada_ln = nn.Linear(width, 6 * width)
        else:
            raise ValueError(f"conditioning '{conditioning}': expected dit or mlp")

    def modulation(self, c):
        if self.cond_hidden is not None:
            c = F.silu(self.cond_hidden(c))
        return self.ada_ln(c).chunk(6, -1)

    def forward(self, x, c):
        sa, ca, ga, sm, cm, gm = self.modulation(c)
        x = x + ga[:, None] * self.attn(_modulate(_norm(x), sa, ca))
        return x + gm[:, None] * self.mlp(_modulate(_norm(x), sm, cm))


class _Module(nn.Module):
    """A plain container (for ldae's nested names)."""


class Denoiser(nn.Module):
    """ldae's denoiser. ``config`` is the ``model`` table of a run's config.json
    (``patch_dim``, ``grid``, ``width``, ``encoder_depth``, ``decoder_depth``, ``heads``,
    ``mlp_ratio``, ``time_embed_dim``, ``conditioning``)."""

    def __init__(self, config):
        super().__init__()
        self.config = dict(config)
        c = self.config
        w = c["width"]
        self.patch_embed = nn.Linear(c["patch_dim"], w)
        self.t_embedder = _Module()
        self.t_embedder.mlp1 = nn.Linear(c.get("time_embed_dim", 256), w)
        self.t_embedder.mlp2 = nn.Linear(w, w)
        self.blocks = nn.ModuleList(
            Block(w, c["heads"], c.get("mlp_ratio", 4), c.get("conditioning", "dit"))
            for _ in range(c["encoder_depth"] + c["decoder_depth"]))
        self.final_layer = _Module()
        self.final_layer.ada_ln = nn.Linear(w, 2 * w)
        self.final_layer.linear = nn.Linear(w, c["patch_dim"])
        self.register_buffer("position", position_embedding(c["grid"], w)[None], persistent=False)

    def initialise(self, seed=0):
        """ldae's initialisation policy (DiT's), from a torch generator seeded with `seed`:
        Xavier-uniform linear weights, zero biases, N(0, 0.02) for the timestep MLP, zeros for
        every adaLN modulation and the final linear layer (each block starts as the identity).
        The policy is ldae's; the draws come from torch's generator, not ldae's."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in self.named_parameters():
                if "ada_ln" in name or name.startswith("final_layer.linear") or name.endswith(".bias"):
                    p.zero_()
                elif name.startswith("t_embedder"):
                    p.copy_(torch.randn(p.shape, generator=g) * 0.02)
                else:
                    fan_out, fan_in = p.shape[0], p.shape[1] if p.dim() > 1 else 1
                    bound = math.sqrt(6.0 / (fan_in + fan_out))
                    p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * bound)
        return self

    @classmethod
    def preset(cls, name, patch_dim, grid, conditioning="dit"):
        """A preset's sizes (tiny, small, base, large) for patches of patch_dim values on a
        grid x grid token grid."""
        width, depth, heads = PRESETS[name]
        return cls(dict(patch_dim=patch_dim, grid=grid, width=width, encoder_depth=depth,
                        decoder_depth=depth, heads=heads, mlp_ratio=4, time_embed_dim=256,
                        precision="f32", conditioning=conditioning))

    def condition(self, t):
        """The conditioning vector SiLU(c) of timesteps t [B], as the blocks receive it."""
        e = timestep_embedding(t, self.config.get("time_embed_dim", 256))
        return F.silu(self.t_embedder.mlp2(F.silu(self.t_embedder.mlp1(e))))

    def tokens(self, x, t, blocks=None):
        """Tokens after the first `blocks` blocks (default: the encoder's): x [B, N, D]."""
        blocks = self.config["encoder_depth"] if blocks is None else blocks
        c = self.condition(t)
        h = self.patch_embed(x) + self.position
        for block in self.blocks[:blocks]:
            h = block(h, c)
        return h

    def features(self, x, t, block=None):
        """ldae's representation: the mean of the tokens after `block`, [B, W]."""
        return self.tokens(x, t, block).mean(1)

    def forward(self, x, t):
        """Predicted clean patches [B, N, D] from noisy patches x [B, N, D] at timesteps t [B]."""
        c = self.condition(t)
        h = self.patch_embed(x) + self.position
        for block in self.blocks:
            h = block(h, c)
        shift, scale = self.final_layer.ada_ln(c).chunk(2, -1)
        return self.final_layer.linear(_modulate(_norm(h), shift, scale))


def pca_loss(clean, predicted, sigma, components, dim):
    """ldae's loss: the residual in the PCA basis (components [D, D], one direction per row),
    weight 1 on the first `dim` directions and TAIL_WEIGHT on the rest, summed over directions,
    averaged over tokens, weighted by 1 / (1 + sigma^2) per row, averaged over rows."""
    d = components.shape[0]
    weights = torch.full((d,), TAIL_WEIGHT, dtype=clean.dtype, device=clean.device)
    weights[:dim] = 1.0
    r = (clean - predicted) @ components.T.to(clean.dtype)
    per_row = (r.square() * weights).sum(-1).mean(1)
    return (per_row / (1 + sigma.square())).mean()


def sample_sigma(n, generator=None):
    """Multi-level noise levels, as ldae draws them: t ~ U{0..T-1}, sigma = sqrt 2 t / (T-1)."""
    t = torch.randint(0, NOISE_STEPS, (n,), generator=generator)
    return t.float() * (math.sqrt(2.0) / (NOISE_STEPS - 1))


def latent_divisors(eigenvalues, dim, scale="global"):
    """What each of the first `dim` latent coordinates is divided by under `scale` (none,
    global: the root mean eigenvalue, whiten: each root eigenvalue), as ldae's PCA does."""
    ev = torch.as_tensor(eigenvalues, dtype=torch.float64)[:dim]
    floor = abs(float(eigenvalues[0])) * 1e-12 + 1e-30
    ev = ev.clamp(min=floor)
    if scale == "none":
        return torch.ones(dim, dtype=torch.float64)
    if scale == "global":
        return ev.mean().sqrt().repeat(dim)
    if scale == "whiten":
        return ev.sqrt()
    raise ValueError(f"latent scale '{scale}': expected none, global or whiten")


def add_noise(patches, sigma, pca, dim, scale="global", generator=None):
    """ldae's noise operator in torch: the patches [B, N, D] projected on the first `dim`
    components of `pca` (``ldae.load_pca``), scaled, noised with sigma [B] times N(0, 1), and
    mapped back by the inverse PCA (the rank-d reconstruction plus the noise). The same
    formula as ldae's; the draws come from torch's generator, not ldae's per-row seeds."""
    c = torch.as_tensor(pca.components[:dim], dtype=patches.dtype, device=patches.device)
    mean = torch.as_tensor(pca.mean, dtype=patches.dtype, device=patches.device)
    div = latent_divisors(pca.eigenvalues, dim, scale).to(patches.dtype).to(patches.device)
    z = (patches - mean) @ c.T / div
    eps = torch.randn(z.shape, generator=generator).to(z.device, z.dtype)
    z = z + sigma.to(z.dtype)[:, None, None] * eps
    return (z * div) @ c + mean


def load_pca_components(path):
    """The PCA file's components [D, D] (one direction per row) and its metadata."""
    from safetensors.torch import load_file
    from safetensors import safe_open
    tensors = load_file(path)
    with safe_open(path, "pt") as f:
        meta = f.metadata() or {}
    return tensors["components"].float(), meta


@dataclass
class Run:
    """An ldae run in PyTorch: the network, its EMA (or None), the AdamW moments as a state
    dict for ``torch.optim.AdamW(model.parameters())`` (or None), the step, and the settings
    of the run's config.json."""
    model: Denoiser
    config: dict
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    ema: Optional[Denoiser] = None
    optimizer: Optional[dict] = None
    extra: dict = field(default_factory=dict)

    def make_optimizer(self, lr=None):
        """A torch AdamW over model.parameters() with the run's settings and moments, at
        learning rate `lr` (default: the run's peak, `lr` of its config; ldae's schedule sets
        each step's rate, see :func:`learning_rate`)."""
        a = self.config.get("adamw", {})
        lr = lr if lr is not None else self.config.get("lr", a.get("lr", 1e-4))
        opt = torch.optim.AdamW(self.model.parameters(), lr=lr,
                                betas=(a.get("beta1", 0.9), a.get("beta2", 0.999)),
                                eps=a.get("eps", 1e-8), weight_decay=a.get("weight_decay", 0.0))
        if self.optimizer is not None:
            opt.load_state_dict(self.optimizer)
            for group in opt.param_groups:  # the saved group carries no schedule
                group["lr"] = lr
        return opt


def learning_rate(step, total, warmup, base):
    """ldae's schedule: linear warm-up over `warmup` steps, then cosine decay to 0 at `total`."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = min((step - warmup) / max(total - warmup, 1), 1.0)
    return base * 0.5 * (1.0 + math.cos(math.pi * progress))


def _load(path):
    from safetensors.torch import load_file
    return load_file(path)


def load_run(run_dir):
    """Read an ldae run folder: config.json and checkpoint/ (model, EMA, AdamW moments, state)."""
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    ckpt = os.path.join(run_dir, "checkpoint")
    model = Denoiser(config["model"])
    model.load_state_dict(_load(os.path.join(ckpt, "model.safetensors")), strict=True)
    ema = None
    if os.path.exists(os.path.join(ckpt, "ema.safetensors")):
        ema = Denoiser(config["model"])
        ema.load_state_dict(_load(os.path.join(ckpt, "ema.safetensors")), strict=True)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0}
    if os.path.exists(os.path.join(ckpt, "state.json")):
        with open(os.path.join(ckpt, "state.json")) as f:
            state.update(json.load(f))
    optimizer = None
    moments = os.path.join(ckpt, "optimizer.safetensors")
    if os.path.exists(moments):
        optimizer = _adamw_state(model, _load(moments), state["step"], config)
    return Run(model=model, config=config, step=state["step"], epoch=state["epoch"],
               batch_in_epoch=state["batch_in_epoch"], ema=ema, optimizer=optimizer)


def _adamw_state(model, moments, step, config):
    """ldae's moments ('m.NAME', 'v.NAME') as a torch AdamW state dict."""
    a = config.get("adamw", {})
    names = [n for n, _ in model.named_parameters()]
    state = {i: {"step": torch.tensor(float(step)), "exp_avg": moments[f"m.{n}"].clone(),
                 "exp_avg_sq": moments[f"v.{n}"].clone()} for i, n in enumerate(names)}
    group = {"lr": a.get("lr", 1e-4), "betas": (a.get("beta1", 0.9), a.get("beta2", 0.999)),
             "eps": a.get("eps", 1e-8), "weight_decay": a.get("weight_decay", 0.0),
             "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
             "differentiable": False, "fused": None, "params": list(range(len(names)))}
    return {"state": state, "param_groups": [group]}


def _moments(model, optimizer_state):
    """A torch AdamW state dict as ldae's moments ('m.NAME', 'v.NAME')."""
    names = [n for n, _ in model.named_parameters()]
    out = {}
    for i, n in enumerate(names):
        s = optimizer_state["state"].get(i)
        if s is None:
            continue
        out[f"m.{n}"] = s["exp_avg"].detach().float().contiguous().cpu()
        out[f"v.{n}"] = s["exp_avg_sq"].detach().float().contiguous().cpu()
    return out


def _train_flags(run_dir, config):
    """The `ldae train` flags of a run's settings (for its spec.json)."""
    m, f, a = config["model"], config.get("features", {}), config.get("adamw", {})
    flags = ["train", "--input", str(config["input"]), "--pca", str(config["pca"]),
             "--dim", str(config["dim"]), "--preset", str(config.get("preset", "tiny")),
             "--width", str(m["width"]), "--depth", str(m["encoder_depth"]), "--heads", str(m["heads"]),
             "--conditioning", str(m.get("conditioning", "dit")),
             "--epochs", str(config["epochs"]), "--batch-size", str(config["batch_size"]),
             "--lr", str(config["lr"]), "--warmup-epochs", str(config["warmup_epochs"]),
             "--weight-decay", str(a.get("weight_decay", 0.0)), "--seed", str(config.get("seed", 0)),
             "--checkpoint-every", str(config.get("checkpoint_every", 500)),
             "--latent-scale", str(config.get("latent_scale", "global")),
             "--feature-t", str(f.get("t", 10.0)), "--feature-pooling", str(f.get("pooling", "mean")),
             "--out", os.path.abspath(run_dir)]
    noise = config.get("noise", {"schedule": "multi_level"})
    if noise.get("schedule") == "single_level":
        flags += ["--noise", "single", "--sigma", str(noise["sigma"])]
    for key, flag in (("format", "--format"), ("split", "--split"), ("limit", "--limit"),
                      ("ema", "--ema"), ("grad_clip", "--grad-clip")):
        if config.get(key) is not None:
            flags += [flag, str(config[key])]
    if config.get("augment"):
        flags.append("--augment")
    if f.get("block") is not None:
        flags += ["--feature-block", str(f["block"])]
    if f.get("ema"):
        flags.append("--feature-ema")
    return flags


def _write_json(path, value):
    """Write `value` as JSON at `path`, atomically (a temporary name renamed into place)."""
    with open(path + ".tmp", "w") as f:
        json.dump(value, f, indent=2)
    os.replace(path + ".tmp", path)


def _weights(model):
    return {k: v.detach().float().contiguous().cpu() for k, v in model.state_dict().items()}


def save_run(run_dir, run_or_model, config=None, optimizer=None, ema=None, step=None,
             epoch=None, batch_in_epoch=None):
    """Write an ldae run folder: ``save_run(RUN, run)`` for a :class:`Run`, or
    ``save_run(RUN, model, config=..., optimizer=..., ema=..., step=...)`` for a model built in
    PyTorch (config: the run's settings as ldae records them; its ``model`` table is taken from
    the model). The checkpoint folder is written beside and renamed into place, as ldae does;
    a folder without a ``spec.json`` gets the one ``ldae train`` records for these settings, so
    ``ldae train --resume`` continues the run."""
    from safetensors.torch import save_file
    if isinstance(run_or_model, Run):
        run = run_or_model
        model, config = run.model, run.config
        optimizer = run.optimizer if optimizer is None else optimizer
        ema = run.ema if ema is None else ema
        step = run.step if step is None else step
        epoch = run.epoch if epoch is None else epoch
        batch_in_epoch = run.batch_in_epoch if batch_in_epoch is None else batch_in_epoch
    else:
        model = run_or_model
        if config is None:
            raise ValueError("save_run(RUN, model) needs config= (the run's settings)")
    if isinstance(optimizer, torch.optim.Optimizer):
        optimizer = optimizer.state_dict()
    config = dict(config, model=dict(config.get("model", {}), **model.config))
    os.makedirs(run_dir, exist_ok=True)
    _write_json(os.path.join(run_dir, "config.json"), config)
    tmp = os.path.join(run_dir, ".checkpoint.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    save_file(_weights(model), os.path.join(tmp, "model.safetensors"))
    if ema is not None:
        save_file(_weights(ema), os.path.join(tmp, "ema.safetensors"))
    if optimizer is not None:
        save_file(_moments(model, optimizer), os.path.join(tmp, "optimizer.safetensors"))
    _write_json(os.path.join(tmp, "state.json"), {"step": int(step or 0), "epoch": int(epoch or 0),
                                                  "batch_in_epoch": int(batch_in_epoch or 0)})
    spec = os.path.join(run_dir, "spec.json")
    if not os.path.exists(spec):
        # The pipeline `ldae train --resume` runs again: the CLI's own spec for these settings.
        from . import _native
        _write_json(spec, {"base": "", "spec": json.loads(_native.train_spec(_train_flags(run_dir, config)))})
    dest, old = os.path.join(run_dir, "checkpoint"), os.path.join(run_dir, ".checkpoint.old")
    shutil.rmtree(old, ignore_errors=True)
    if os.path.exists(dest):
        os.replace(dest, old)
    os.replace(tmp, dest)
    shutil.rmtree(old, ignore_errors=True)


def shard_of_this_process():
    """(index, count) of this process's share of the rows: torch.distributed's rank and world
    size times the DataLoader worker's id and count (each 0 / 1 when not in use)."""
    rank, world = 0, 1
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    worker = torch.utils.data.get_worker_info()
    wid, workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
    return rank * workers + wid, world * workers


class LatentDataset(torch.utils.data.IterableDataset):
    """Training batches made by ldae's Rust pipeline, as torch tensors.

    The pipeline decodes ``input`` (any source ldae reads: an image folder, Parquet,
    WebDataset shards, IDX, CIFAR binaries, ``synthetic:N``) at the PCA's geometry and
    normalisation, optionally augments (random resized crop and flip, seeded per row and
    epoch), patchifies and then, with ``output="noised"`` (the default, what the l-DAE loss
    needs), noises in the PCA's latent space as ``ldae train`` does, or with
    ``output="latents"`` projects to the first ``dim`` components. It runs in background
    threads with the GIL released, ``prefetch`` batches ahead.

    ``format`` names the dataset kind where the path does not tell it, ``split`` one split of a
    Hugging Face Parquet dataset (a folder holding several is refused without it), ``limit``
    the rows read.

    Each item is one batch, a dict: ``id`` (list of str), ``label`` (int64, -1 where unlabelled)
    and ``patches`` / ``noisy`` ``[B, N, D]`` with ``sigma`` ``[B]`` (noised), or ``latents``
    ``[B, N, dim]`` (latents). Use it with ``DataLoader(dataset, batch_size=None)``.

    Sharding: the rows are split between torch.distributed ranks and DataLoader workers
    (disjoint, covering). Determinism: a row's pixels, augmentation and noise depend only on
    (seed, epoch, row id), so every (seed, epoch) gives the same rows whatever the number of
    ranks or workers; ``shuffle`` orders them by (seed, epoch) before sharding. Call
    :meth:`set_epoch` each epoch.
    """

    def __init__(self, input, pca, dim, *, output="noised", batch_size=256, seed=0, epoch=0,
                 shuffle=True, augment=False, latent_scale=None, format=None, limit=None,
                 split=None, threads=2, prefetch=4):
        super().__init__()
        if output not in ("noised", "latents"):
            raise ValueError(f"output '{output}': expected noised or latents")
        from . import load_pca
        self.meta = load_pca(pca).meta
        self.input, self.pca, self.dim, self.output = os.fspath(input), os.fspath(pca), dim, output
        self.batch_size, self.seed, self.epoch, self.shuffle = batch_size, seed, epoch, shuffle
        self.augment, self.latent_scale, self.format, self.limit = augment, latent_scale, format, limit
        #: One split of a Hugging Face Parquet dataset (a folder of several is refused without it).
        self.split = split
        self.threads, self.prefetch = threads, prefetch
        #: Rows of each shard's order to pass over in the next iteration (to resume mid-epoch:
        #: batches done x per-shard batch size).
        self.skip = 0

    def rows(self):
        """Rows in one epoch over all shards (when the source knows its size; nothing is
        decoded: the stream starts only when read)."""
        from . import _native
        return _native.NativeStream(json.dumps(self.spec((0, 1))), self.epoch, "", 1, 1).rows

    def set_epoch(self, epoch):
        """The pass the next iteration makes (its shuffle, augmentation and noise)."""
        self.epoch = epoch

    def spec(self, shard=(0, 1)):
        """The source and operators this dataset runs for one shard (a spec without a sink)."""
        m = self.meta
        decode = {"kind": "decode", "image_size": m["image_size"], "channels": m["channels"]}
        if self.augment:
            decode["augment"] = {"seed": self.seed} if self.augment is True else dict(self.augment)
        scale = {} if self.latent_scale is None else {"latent_scale": self.latent_scale}
        last = ({"kind": "noise", "pca": self.pca, "dim": self.dim, "seed": self.seed, **scale}
                if self.output == "noised" else
                {"kind": "pca_project", "pca": self.pca, "dim": self.dim, **scale})
        source = {"input": self.input, "batch_size": self.batch_size, "shuffle": self.shuffle,
                  # One order per (seed, epoch), the same for every shard.
                  "seed": self.seed * 1_000_003 + self.epoch,
                  "shard": {"index": shard[0], "count": shard[1]}}
        if self.format:
            source["format"] = self.format
        if self.limit is not None:
            source["limit"] = self.limit
        if self.split is not None:
            source["parquet"] = {"split": self.split}
        if self.skip:
            source["skip"] = self.skip
        return {"source": source,
                "operator": [decode, {"kind": "patchify", "patch": m["patch_size"]},
                             {"kind": "normalize", **m["normalization"]}, last]}

    def __iter__(self):
        return self.iter_shard(shard_of_this_process())

    def iter_shard(self, shard):
        """The batches of shard (index, count) of the rows, for this epoch."""
        from . import _native
        stream = _native.NativeStream(json.dumps(self.spec(shard)), self.epoch, "",
                                      self.threads, self.prefetch)
        for batch in stream:
            yield self._tensors(batch)

    def _tensors(self, batch):
        names = batch.schema.names
        n = batch.num_rows

        def tensor(name):
            col = batch.column(names.index(name))
            shape = list(col.type.shape) if hasattr(col.type, "shape") else [-1]
            col = col.storage if hasattr(col, "storage") else col
            values = col.flatten().to_numpy(zero_copy_only=False)
            # Arrow's buffers are read-only; torch wants to own writable memory (one memcpy).
            return torch.from_numpy(np.array(values.reshape([n] + shape)))

        out = {"id": batch.column(names.index("id")).to_pylist()}
        if "label" in names:
            labels = batch.column(names.index("label")).to_numpy(zero_copy_only=False)
            out["label"] = torch.from_numpy(np.nan_to_num(labels.astype(np.float64), nan=-1).astype(np.int64))
        else:
            out["label"] = torch.full((n,), -1, dtype=torch.int64)
        if self.output == "noised":
            out["patches"], out["noisy"] = tensor("patches"), tensor("noisy")
            out["sigma"] = torch.from_numpy(batch.column(names.index("sigma")).to_numpy(zero_copy_only=False))
        else:
            out["latents"] = tensor("latents")
        return out
