#!/usr/bin/env python3
"""Features of a Hugging Face transformers ViT: ldae beside transformers, on the same photos,
threads and batch size, in one run, printed as a table.

    python3 benches/transformers_compare.py dinov2-small --images ~/photos [--threads 2]
    python3 benches/transformers_compare.py --model DIR --images ~/photos

NAME builds a randomly initialised model of a hub checkpoint's shape with its image processor
(nothing is downloaded; speed does not depend on the weights): one of SHAPES below. --model DIR
takes a transformers folder instead (save_pretrained's, or hf download's). Both
sides decode the JPEGs and apply the folder's image processor:

  transformers: Pillow open + AutoImageProcessor (its default backend) + AutoModel, the
        default feature ldae gives (pooler_output, or the class token of last_hidden_state for
        ViT, DeiT and MAE; CLIP's and SigLIP's image tower), in batches of --batch, under
        torch.inference_mode, torch.set_num_threads(--threads), in its own process;
  ldae: `ldae features --checkpoint DIR --threads T --batch-size B` writing its Parquet table.

Reported: features per second over the whole run (process start to end, model load included)
and over transformers' steady state (the run minus the time to its first batch), the peak
resident memory of each process, the ratios, and the agreement of the two feature sets
(max |diff| / max |value|; DINOv3's processor resizes in floating point, ldae in 8 bits, so
expect about 1e-3 there).
Needs: pip install torch torchvision transformers pillow pyarrow numpy.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from bench_build import default_ldae, machine_header, scratch_dir  # noqa: E402
from feature_compare import add_run_arguments, compare_with_peer, image_names  # noqa: E402

TRANSFORMERS_WORKER = r"""
import json, os, sys, time
import torch, transformers as T
from PIL import Image
from feature_compare import measured_batches
T.utils.logging.disable_progress_bar()
model_dir, images, threads, batch, out = sys.argv[1:6]
threads, batch = int(threads), int(batch)
torch.set_num_threads(threads)
start = time.time()
kind = json.load(open(os.path.join(model_dir, "config.json")))["model_type"]
m = T.AutoModel.from_pretrained(model_dir).eval()
processor = T.AutoImageProcessor.from_pretrained(model_dir)
if kind in ("clip", "siglip"):
    m = m.vision_model
if kind == "vit_mae":
    m.config.mask_ratio = 0.0
def features_of(paths):
    pics = [Image.open(p).convert("RGB") for p in paths]
    o = m(pixel_values=processor(images=pics, return_tensors="pt")["pixel_values"])
    if kind in ("vit", "vit_mae", "vit_msn", "deit"):
        return o.last_hidden_state[:, 0].numpy()
    if kind == "ijepa" or (kind.startswith("siglip") and getattr(o, "pooler_output", None) is None):
        return o.last_hidden_state.mean(1).numpy()
    return o.pooler_output.numpy()
measured_batches(images, batch, features_of, start, out)
"""

IMAGENET = dict(image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225])


def shapes():
    """NAME -> (model, image processor) of that hub checkpoint's shape, randomly initialised."""
    import transformers as T
    crop = {"height": 224, "width": 224}
    bit = lambda: T.BitImageProcessor(size={"shortest_edge": 256}, crop_size=crop, **IMAGENET)
    return {
        # facebook/dinov2-small: a 518 px position table, resampled to 16 x 16 at 224.
        "dinov2-small": lambda: (T.Dinov2Model(T.Dinov2Config(
            hidden_size=384, num_attention_heads=6, image_size=518)), bit()),
        "dinov2-base": lambda: (T.Dinov2Model(T.Dinov2Config(image_size=518)), bit()),
        # facebook/dinov3-vits16-pretrain-lvd1689m: the config's defaults, 4 registers.
        "dinov3-small": lambda: (T.DINOv3ViTModel(T.DINOv3ViTConfig(num_register_tokens=4)),
                                 T.DINOv3ViTImageProcessor()),
        "dinov3-base": lambda: (T.DINOv3ViTModel(T.DINOv3ViTConfig(
            hidden_size=768, intermediate_size=3072, num_attention_heads=12,
            num_register_tokens=4)), T.DINOv3ViTImageProcessor()),
        "vit-base": lambda: (T.ViTModel(T.ViTConfig()), T.ViTImageProcessor()),
        "clip-b16": lambda: (T.CLIPVisionModel(T.CLIPVisionConfig(patch_size=16)),
                             T.CLIPImageProcessor()),
        # microsoft/beit-base-patch16-224: a relative position table per layer, the patch
        # mean; its processor squashes to 224 x 224 (bilinear), mean and std 0.5.
        "beit-base": lambda: (T.BeitModel(T.BeitConfig(use_relative_position_bias=True)),
                              T.BeitImageProcessor(size=crop, resample=2, do_center_crop=False)),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("name", nargs="?", help="a hub checkpoint's shape, randomly initialised "
                    "(dinov2-small, dinov2-base, dinov3-small, dinov3-base, vit-base, clip-b16, "
                    "beit-base)")
    ap.add_argument("--model", help="a transformers model folder instead of NAME")
    add_run_arguments(ap, default_ldae())
    args = ap.parse_args()
    if (args.name is None) == (args.model is None):
        ap.error("give NAME or --model DIR (one of them)")

    tmp = scratch_dir("ldae-transformers-bench-")
    model_dir = args.model
    if model_dir is None:
        import torch
        import transformers
        transformers.utils.logging.disable_progress_bar()
        torch.manual_seed(0)
        build = shapes().get(args.name) or ap.error(f"unknown NAME {args.name!r}")
        model, processor = build()
        model_dir = os.path.join(tmp, "model")
        model.save_pretrained(model_dir)
        processor.save_pretrained(model_dir)
    rows = len(image_names(args.images))
    print(machine_header(args.ldae))
    print(f"model: {args.name or ''} ({model_dir}); {rows} photos from {args.images}; "
          f"threads {args.threads}, batch {args.batch}")
    compare_with_peer("transformers", TRANSFORMERS_WORKER, model_dir, args.images, args.threads,
                      args.batch, args.ldae, tmp)


if __name__ == "__main__":
    main()
