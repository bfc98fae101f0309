#!/usr/bin/env bash
# The prepared GPU check: correctness against the CPU, throughput and model FLOP utilisation, and
# the end-to-end CIFAR-10 pipeline, with one summary table at the end. Runs in under 8 minutes
# on one H100/H200 with no network and no Rust toolchain.
#
#   scripts/gpu-check.sh [BIN]      BIN: the CUDA build (default dist/ldae-cuda, from
#                                   scripts/build-cuda.sh; BIN.gz is unpacked first)
#
# Needs python3 with numpy and pyarrow (the GPU machines have both) and the CIFAR-10 JPEGs as
# .gpu/cifar10-train.tar.zst (a copy of ../shared/datasets/cifar10-train.tar.zst), or
# LDAE_CIFAR_DIR=<folder of class folders>. Results go to $OUT (the device tool's folder) or
# /tmp/ldae-gpu/out. LDAE_CHECK_DEVICE=cpu LDAE_CHECK_SMOKE=1 runs the same steps, small, on a
# CPU build (to check the script itself on a machine without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$(realpath "${1:-dist/ldae-cuda}")"
if [[ "$BIN" == *.gz ]]; then  # carried compressed (the stripped CUDA binary is ~140 MB)
  gunzip -c "$BIN" > /tmp/ldae-cuda && chmod +x /tmp/ldae-cuda && BIN=/tmp/ldae-cuda
fi
DEV="${LDAE_CHECK_DEVICE:-cuda}"
SMOKE="${LDAE_CHECK_SMOKE:-0}"
W="${LDAE_GPU_WORK:-/tmp/ldae-gpu}"
R="${OUT:-$W/out}"
mkdir -p "$W" "$R"
LOG="$R/gpu-check.log"
: > "$LOG"
say() { echo "$@" | tee -a "$LOG"; }
step() { say; say "== $*"; }
ldae() { "$BIN" "$@" 2>&1 | tee -a "$LOG"; }

# The CUDA libraries the binary links: the machine's CUDA installation or NVIDIA's pip wheels.
if [ "$DEV" != cpu ]; then
  LIBS="$(python3 - <<'PY'
import glob, os
dirs = set()
try:
    import nvidia
    for root in nvidia.__path__:
        for f in glob.glob(os.path.join(root, "**", "lib*.so*"), recursive=True):
            if any(k in os.path.basename(f) for k in ("cublas", "curand", "nvrtc", "cudart")):
                dirs.add(os.path.dirname(f))
except ImportError:
    pass
print(":".join(sorted(dirs)))
PY
)"
  export LD_LIBRARY_PATH="$LIBS:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$R/gpu.txt"
else
  echo "cpu (smoke run of the script)" > "$R/gpu.txt"
fi

if [ "$SMOKE" = 1 ]; then
  STEPS=3; BASE_SIZE=64; BASE_PATCH=16; BASE_BATCH=4; TINY_BATCH=32; FEAT_IMAGES=256
  CIFAR_LIMIT=2000; E2E_BATCH=64
else
  STEPS=30; BASE_SIZE=224; BASE_PATCH=16; BASE_BATCH=128; TINY_BATCH=256; FEAT_IMAGES=8192
  CIFAR_LIMIT=""; E2E_BATCH=256
fi
Q=(--progress log)

step "(a) correctness: CPU vs $DEV, f32 and bf16"
ldae pca fit --input synthetic:2048 --image-size 32 --patch 4 --out "$W/pca32.safetensors" "${Q[@]}"
train_small() { # device precision out
  ldae train --input synthetic:2048 --pca "$W/pca32.safetensors" --dim 16 --preset tiny \
    --epochs 1 --max-steps 8 --batch-size 64 --device "$1" --precision "$2" --out "$3" "${Q[@]}"
}
rm -rf "$W"/check-*
train_small cpu f32 "$W/check-cpu-f32"
train_small "$DEV" f32 "$W/check-dev-f32"
train_small "$DEV" bf16 "$W/check-dev-bf16"
for d in cpu "$DEV"; do
  rm -rf "$W/feat-$d"
  ldae features --kind ldae --checkpoint "$W/check-cpu-f32" --input synthetic:512 \
    --device "$d" --precision f32 --out "$W/feat-$d" "${Q[@]}"
done

step "(b) throughput: base preset at ${BASE_SIZE}x${BASE_SIZE} patch $BASE_PATCH, tiny at 32x32"
ldae pca fit --input synthetic:512 --image-size "$BASE_SIZE" --patch "$BASE_PATCH" \
  --out "$W/pca-base.safetensors" "${Q[@]}"
rm -rf "$W/speed-base" "$W/speed-tiny" "$W/feat-speed"
ldae train --input synthetic:100000 --pca "$W/pca-base.safetensors" --dim 64 --preset base \
  --epochs 1 --max-steps "$STEPS" --batch-size "$BASE_BATCH" --device "$DEV" --precision bf16 \
  --out "$W/speed-base" "${Q[@]}"
ldae train --input synthetic:100000 --pca "$W/pca32.safetensors" --dim 16 --preset tiny \
  --epochs 1 --max-steps $((STEPS * 4)) --batch-size "$TINY_BATCH" --device "$DEV" --precision bf16 \
  --out "$W/speed-tiny" "${Q[@]}" | tee "$R/tiny-stages.txt"
T0="$(date +%s.%N)"
ldae features --kind ldae --checkpoint "$W/speed-base" --input "synthetic:$FEAT_IMAGES" \
  --device "$DEV" --out "$W/feat-speed" "${Q[@]}" | tee "$R/features-stages.txt"
echo "$FEAT_IMAGES $T0 $(date +%s.%N)" > "$W/feat-speed.time"

step "(c) end to end on the CIFAR-10 JPEGs: decode -> train one epoch -> features -> probe"
CIFAR="${LDAE_CIFAR_DIR:-}"
if [ -z "$CIFAR" ]; then
  CIFAR="$W/cifar/train"
  if [ ! -d "$CIFAR" ]; then
    mkdir -p "$W/cifar"
    if command -v zstd >/dev/null; then tar --zstd -xf .gpu/cifar10-train.tar.zst -C "$W/cifar"
    else python3 -c "import sys,tarfile,zstandard; tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(open(sys.argv[1],'rb')),mode='r|').extractall(sys.argv[2])" .gpu/cifar10-train.tar.zst "$W/cifar"; fi
    CIFAR="$(dirname "$(find "$W/cifar" -name '*.jpg' -o -name '*.png' | head -n1)")/.."
  fi
fi
# Hold out the last 500 images of each class (sorted by name) as the test split.
SPLIT="$W/cifar-split"
if [ ! -d "$SPLIT/test" ]; then
  mkdir -p "$SPLIT/train" "$SPLIT/test"
  for c in "$CIFAR"/*/; do
    n="$(basename "$c")"; mkdir -p "$SPLIT/train/$n" "$SPLIT/test/$n"
    ls "$c" | sort > "$W/files.txt"
    head -n -500 "$W/files.txt" | while read -r f; do ln -sf "$(realpath "$c/$f")" "$SPLIT/train/$n/$f"; done
    tail -n 500 "$W/files.txt" | while read -r f; do ln -sf "$(realpath "$c/$f")" "$SPLIT/test/$n/$f"; done
  done
fi
LIMIT=(); [ -n "$CIFAR_LIMIT" ] && LIMIT=(--limit "$CIFAR_LIMIT")
rm -rf "$W/e2e-run" "$W/e2e-train" "$W/e2e-test"
ldae pca fit --input "$SPLIT/train" --image-size 32 --patch 4 --out "$W/e2e-pca.safetensors" "${Q[@]}"
ldae train --input "$SPLIT/train" --pca "$W/e2e-pca.safetensors" --dim 16 --preset tiny --epochs 1 \
  --batch-size "$E2E_BATCH" --device "$DEV" "${LIMIT[@]}" --out "$W/e2e-run" "${Q[@]}" | tee "$R/e2e-train.txt"
ldae features --kind ldae --checkpoint "$W/e2e-run" --input "$SPLIT/train" --device "$DEV" \
  "${LIMIT[@]}" --shuffle --out "$W/e2e-train" "${Q[@]}"
ldae features --kind ldae --checkpoint "$W/e2e-run" --input "$SPLIT/test" --device "$DEV" \
  --out "$W/e2e-test" "${Q[@]}"
ldae probe --train "$W/e2e-train" --test "$W/e2e-test" --knn --device "$DEV" \
  --out "$R/e2e-probe.json" | tee "$R/e2e-probe.txt"

step "summary"
python3 scripts/gpu_check_summary.py "$W" "$R" "$DEV" 2>&1 | tee -a "$LOG" "$R/summary.txt"
