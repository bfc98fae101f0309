#!/usr/bin/env python3
"""Features of a timm ViT: ldae beside timm, on the same photos, threads and batch size, in one
run, printed as a table.

    python3 benches/timm_compare.py vit_small_patch16_224 --images ~/photos [--threads 2]

ARCH is a timm architecture name (or --model DIR, a timm model folder). Without --model the
model is timm.create_model(ARCH, pretrained=False) saved with save_for_hf into a temporary
folder (nothing is downloaded; speed does not depend on the weights). Both sides decode the
JPEGs and apply the model's eval transform:

  timm: Pillow open + create_transform(**resolve_data_config({}, model=m)) + forward_head(
        forward_features(x), pre_logits=True) in batches of --batch, under torch.inference_mode,
        torch.set_num_threads(--threads), in its own process;
  ldae: `ldae features --checkpoint DIR --threads T --batch-size B` writing its Parquet table.

Reported: features per second over the whole run (process start to end, model load included)
and over the steady state (the run minus the time to the first batch, for timm; ldae's own
table gives its stages' busy time), the peak resident memory of each process, and the
ratio. Also the agreement of the two feature sets (max |diff| / max |value|).
Needs: pip install torch timm pillow pyarrow numpy.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from bench_build import default_ldae, machine_header, scratch_dir  # noqa: E402
from feature_compare import add_run_arguments, compare_with_peer, image_names  # noqa: E402

TIMM_WORKER = r"""
import sys, time
import torch, timm
from PIL import Image
from timm.data import create_transform, resolve_data_config
from feature_compare import measured_batches
model_dir, images, threads, batch, out = sys.argv[1:6]
threads, batch = int(threads), int(batch)
torch.set_num_threads(threads)
start = time.time()
m = timm.create_model(f"local-dir:{model_dir}", pretrained=True).eval()
tf = create_transform(**resolve_data_config({}, model=m))
def features_of(paths):
    x = torch.stack([tf(Image.open(p).convert("RGB")) for p in paths])
    return m.forward_head(m.forward_features(x), pre_logits=True).numpy()
measured_batches(images, batch, features_of, start, out)
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", help="timm architecture name, e.g. vit_small_patch16_224")
    ap.add_argument("--model", help="a timm model folder (default: ARCH, randomly initialised)")
    add_run_arguments(ap, default_ldae())
    args = ap.parse_args()

    tmp = scratch_dir("ldae-timm-bench-")
    model_dir = args.model
    if model_dir is None:
        import timm
        from timm.models import save_for_hf
        model_dir = os.path.join(tmp, "model")
        save_for_hf(timm.create_model(args.arch, pretrained=False, num_classes=0), model_dir,
                    safe_serialization=True)
    rows = len(image_names(args.images))
    print(machine_header(args.ldae))
    print(f"model: {args.arch} ({model_dir}); {rows} photos from {args.images}; "
          f"threads {args.threads}, batch {args.batch}")
    # Each side in its own child process, one after the other.
    compare_with_peer("timm", TIMM_WORKER, model_dir, args.images, args.threads, args.batch,
                      args.ldae, tmp)


if __name__ == "__main__":
    main()
