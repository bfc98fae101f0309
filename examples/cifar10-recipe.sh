#!/usr/bin/env bash
# The CIFAR-10 recipe: fit the patch PCA and pre-train an l-DAE in about an hour on 2 CPU cores.
#
#   examples/cifar10-recipe.sh TRAIN_DIR OUT_DIR
#
# TRAIN_DIR: CIFAR-10 JPEG/PNG files in one folder per class (any number of images).
# OUT_DIR gets pca.safetensors (the patch PCA, with pca.errors.parquet: the images it could not
# read) and run/ (the trained network, its config, metrics and loss curve), nothing else. The run records how its features are read (block, t,
# pooling, EMA weights), so afterwards
#
#   ldae features --input TRAIN_DIR --checkpoint OUT_DIR/run --out OUT_DIR/features-train
#   ldae features --input TEST_DIR  --checkpoint OUT_DIR/run --out OUT_DIR/features-test
#   ldae probe --train OUT_DIR/features-train --test OUT_DIR/features-test --knn
#
# reproduce the README's numbers with no further flags.
#
# Environment: LDAE is the ldae binary to call (default: `ldae` on PATH); LDAE_RECIPE_EPOCHS
# overrides the most epochs (a short trial or a test; the recipe's own is below);
# LDAE_RECIPE_TIME_BUDGET the training's time budget (default 55m, so that the whole script fits
# its hour: on a slower machine the run trains fewer epochs, chosen from the speed of its first
# steps and recorded in run/config.json).
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 TRAIN_DIR OUT_DIR" >&2
    exit 2
fi
train_dir=$1
out_dir=$2
ldae=${LDAE:-ldae}
epochs=${LDAE_RECIPE_EPOCHS:-9}
budget=${LDAE_RECIPE_TIME_BUDGET:-55m}

if [ ! -d "$train_dir" ]; then
    echo "$0: $train_dir is not a folder (expected CIFAR-10 images in class folders)" >&2
    exit 2
fi
mkdir -p "$out_dir"
# The decoded-pixel cache is scratch: it lives beside the outputs only while the script runs.
cache=$(mktemp -d "$out_dir/.pixel-cache.XXXXXX")
trap 'rm -rf "$cache"' EXIT

# Patch 4 on 32 px images: 64 tokens of D = 48 values each.
"$ldae" pca fit --input "$train_dir" --image-size 32 --patch 4 \
    --out "$out_dir/pca.safetensors"

# The tiny preset (width 128, 3 encoder + 3 decoder blocks): at 2 cores the budget buys many
# epochs of a small network rather than a few of a larger one. The pixel cache decodes the
# JPEGs once; crops and flips are then taken from the cached 32 px images each epoch.
"$ldae" train --input "$train_dir" --pca "$out_dir/pca.safetensors" --dim 16 \
    --preset tiny --epochs "$epochs" --time-budget "$budget" --batch-size 128 --lr 1.5e-3 \
    --warmup-epochs 1 \
    --weight-decay 0.05 --augment --ema 0.9995 \
    --pixel-cache "$cache/pixels" \
    --feature-block 6 --feature-t 10 --feature-pooling grid4 --feature-ema \
    --out "$out_dir/run"
