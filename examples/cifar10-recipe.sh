#!/usr/bin/env bash
# The CIFAR-10 recipe: fit the patch PCA and pre-train the l-DAE within one hour on 2 CPU cores.
#
#   examples/cifar10-recipe.sh TRAIN_DIR OUT_DIR
#
# TRAIN_DIR: CIFAR-10 images in class folders (any number of images). Writes
# OUT_DIR/pca.safetensors and the training run OUT_DIR/run, nothing else. The run records the
# probe settings (block, t, pooling, EMA weights), so afterwards
#
#   ldae features --input TRAIN_DIR --checkpoint OUT_DIR/run --out train-features
#   ldae features --input TEST_DIR  --checkpoint OUT_DIR/run --out test-features
#   ldae probe --train train-features --test test-features --knn
#
# reproduce the README's numbers with no further flags. Uses the `ldae` on PATH, or $LDAE.
# LDAE_RECIPE_EPOCHS overrides the number of epochs (the test runs it with 1 on a few hundred
# images); every other setting is the recipe's.
set -euo pipefail

if [ $# -ne 2 ]; then
    echo "usage: $0 TRAIN_DIR OUT_DIR" >&2
    exit 2
fi
train_dir=$1
out_dir=$2
ldae=${LDAE:-ldae}
epochs=${LDAE_RECIPE_EPOCHS:-__EPOCHS__}

mkdir -p "$out_dir"
"$ldae" pca fit --input "$train_dir" --image-size 32 --patch 4 --out "$out_dir/pca.safetensors"
# The decoded 32x32 pixels are cached once (the JPEGs are not decoded every epoch); the cache
# lives inside the run folder.
"$ldae" train --input "$train_dir" --pca "$out_dir/pca.safetensors" \
    __TRAIN_FLAGS__ \
    --epochs "$epochs" --pixel-cache "$out_dir/run/pixel-cache" --out "$out_dir/run"
