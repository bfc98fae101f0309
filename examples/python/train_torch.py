#!/usr/bin/env python3
"""l-DAE pre-training in PyTorch, fed by ldae's Rust pipeline: one process, or DDP under torchrun.

    # one node, 8 GPUs (NCCL, bf16 autocast):
    torchrun --nproc_per_node 8 examples/python/train_torch.py --input ~/imagenet/train \\
        --pca pca224.safetensors --dim 32 --preset base --batch-size 2048 --epochs 100 --out run-base
    # CPU, 2 processes (gloo), for trials and tests:
    torchrun --nproc_per_node 2 examples/python/train_torch.py --input synthetic:512 \\
        --pca pca.safetensors --dim 16 --preset tiny --batch-size 64 --steps 20 --out run-tiny

Each rank streams its shard of every epoch through `ldae.torch.LatentDataset` (decode,
augmentation, patches, noise in the PCA's latent space, in Rust threads), runs ldae's denoiser
(`ldae.torch.Denoiser`, ldae's parameter names) on ldae's loss and learning-rate schedule, and
rank 0 writes the checkpoint as an ldae run folder (`ldae.torch.save_run`: config.json and
checkpoint/, renamed into place) every --checkpoint-every steps and at the end. `ldae features`,
`probe` and `denoise` read it; `--resume` continues it. One JSON line per step on rank 0:
{"step", "epoch", "lr", "loss"} (the loss averaged over all ranks' rows).

--batch-size is the global batch: each of the N ranks takes batch-size / N rows per step, and
DDP averages their gradients, so a run on N ranks takes the same steps as one process.
"""
import argparse
import json
import math
import os
import sys
import time

import torch
import torch.distributed as dist

import ldae
import ldae.torch as lt


def parse():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", required=True, help="a dataset ldae reads (folder, Parquet, synthetic:N, ...)")
    ap.add_argument("--pca", required=True, help="the patch PCA (ldae pca fit)")
    ap.add_argument("--out", required=True, help="the run folder to write")
    ap.add_argument("--dim", type=int, required=True, help="latent dimension d")
    ap.add_argument("--preset", default="tiny", choices=sorted(lt.PRESETS))
    ap.add_argument("--conditioning", default="dit", choices=["dit", "mlp"])
    ap.add_argument("--batch-size", type=int, default=256, help="global batch (all ranks)")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--steps", type=int, help="the schedule's length in steps (default: epochs x steps per epoch)")
    ap.add_argument("--max-steps", type=int, help="stop after this many steps (the schedule keeps its length)")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak learning rate")
    ap.add_argument("--warmup-epochs", type=float, default=0.5)
    ap.add_argument("--weight-decay", type=float, default=0.0)
    ap.add_argument("--ema", type=float, help="keep an EMA of the weights with this decay")
    ap.add_argument("--augment", action="store_true", help="random resized crop and flip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint-every", type=int, default=1000)
    ap.add_argument("--feature-block", type=int, help="recorded for ldae features")
    ap.add_argument("--feature-t", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2, help="ldae pipeline threads per rank")
    ap.add_argument("--resume", action="store_true", help="continue the run in --out")
    return ap.parse_args()


def main():
    args = parse()
    world = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = torch.cuda.is_available()
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    rank = dist.get_rank() if world > 1 else 0
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    if not cuda:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    if args.batch_size % world:
        sys.exit(f"--batch-size {args.batch_size} is not a multiple of the {world} ranks")

    meta = ldae.load_pca(args.pca).meta
    patch_dim = meta["patch_size"] ** 2 * meta["channels"]
    grid = meta["image_size"] // meta["patch_size"]
    data = lt.LatentDataset(args.input, args.pca, args.dim, batch_size=args.batch_size // world,
                            seed=args.seed, augment=args.augment, threads=args.threads)
    rows = data.rows() or 0
    steps_per_epoch = max(1, rows // args.batch_size) if rows else None
    total = args.steps or (args.epochs * steps_per_epoch if steps_per_epoch else None)
    if total is None:
        sys.exit("the dataset's size is unknown: give --steps")
    warmup = round(args.warmup_epochs * (steps_per_epoch or total))

    if args.resume:
        run = lt.load_run(args.out)
        model, ema, step, config = run.model, run.ema, run.step, run.config
    else:
        model = lt.Denoiser.preset(args.preset, patch_dim, grid, args.conditioning).initialise(args.seed)
        ema = lt.Denoiser(model.config).eval() if args.ema else None
        if ema is not None:
            ema.load_state_dict(model.state_dict())
        step, run = 0, None
        config = {
            "input": args.input, "format": None, "limit": None, "rows_per_epoch": rows,
            "pixel_cache": None, "pca": os.path.abspath(args.pca), "dim": args.dim,
            "latent_scale": meta.get("latent_scale", "global"), "noise": {"schedule": "multi_level"},
            "preset": args.preset, "model": model.config,
            # ldae's trainer counts epochs: as many as --steps covers.
            "epochs": -(-total // steps_per_epoch) if steps_per_epoch else args.epochs,
            "batch_size": args.batch_size, "lr": args.lr, "warmup_epochs": args.warmup_epochs,
            "adamw": {"lr": args.lr, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8,
                      "weight_decay": args.weight_decay},
            "grad_clip": None, "ema": args.ema, "augment": args.augment, "seed": args.seed,
            "checkpoint_every": args.checkpoint_every,
            "features": {"t": args.feature_t, "pooling": "mean", "ema": bool(args.ema),
                         **({"block": args.feature_block} if args.feature_block else {})},
        }
    model.to(device)
    if ema is not None:
        ema.to(device)
    components, _ = lt.load_pca_components(args.pca)
    components = components.to(device)
    opt = (run.make_optimizer() if run is not None else
           torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay,
                             betas=(0.9, 0.999), eps=1e-8))
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    def save(epoch, batch_in_epoch):
        if rank == 0:
            lt.save_run(args.out, model, config=config, optimizer=opt, ema=ema, step=step,
                        epoch=epoch, batch_in_epoch=batch_in_epoch)

    epoch = run.epoch if run is not None else 0
    position = run.batch_in_epoch if run is not None else 0  # batches of `epoch` done
    stop = min(total, args.max_steps or total)
    while step < stop and (args.steps or epoch < args.epochs):
        data.set_epoch(epoch)
        # A resumed run continues mid-epoch: each rank passes over the rows already trained on.
        data.skip = position * (args.batch_size // world)
        for batch in data:
            if steps_per_epoch and position >= steps_per_epoch:
                break  # whole batches only, as ldae train
            clean = batch["patches"].to(device)
            noisy = batch["noisy"].to(device)
            sigma = batch["sigma"].to(device)
            lr = lt.learning_rate(step, total, warmup, args.lr)
            for group in opt.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
                predicted = net(noisy, lt.timesteps(sigma))
            loss = lt.pca_loss(clean, predicted.float(), sigma, components, args.dim)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if ema is not None:
                with torch.no_grad():
                    for e, p in zip(ema.parameters(), model.parameters()):
                        e.mul_(args.ema).add_(p.detach(), alpha=1 - args.ema)
            step += 1
            position += 1
            shown = loss.detach().clone()
            if world > 1:
                dist.all_reduce(shown)
                shown /= world
            if rank == 0:
                print(json.dumps({"step": step, "epoch": epoch, "lr": lr, "loss": shown.item(),
                                  "time": round(time.time(), 3)}), flush=True)
            if step % args.checkpoint_every == 0:
                save(epoch, position)
            if step >= stop:
                break
        if step >= stop and steps_per_epoch and position < steps_per_epoch:
            break  # stopped mid-epoch: the checkpoint records where
        epoch += 1
        position = 0
    save(epoch, position)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
