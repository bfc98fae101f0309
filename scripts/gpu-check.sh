#!/usr/bin/env bash
# The prepared GPU check: correctness against the CPU, training throughput and model FLOP
# utilisation of `small` and `base` at 224 px / patch 16 with the largest batch that fits (and
# PyTorch's on the same card), peak GPU memory of every command, and the CIFAR-10 pipeline end
# to end with its stage table. One summary table at the end. Planned for about 5 minutes on one H100/H200,
# with no network and no Rust toolchain.
#
#   scripts/gpu-check.sh [BIN]      BIN: the CUDA build (default dist/ldae-cuda, from
#                                   scripts/build-cuda.sh); BIN.xz or BIN.gz is unpacked first
#
# Needs python3 with numpy and pyarrow (torch for the PyTorch rows; the GPU machines have all
# three) and the CIFAR-10 JPEGs as .gpu/cifar10-train.tar.xz (or .gz; .zst where zstd is
# installed), or LDAE_CIFAR_DIR=<folder of class folders>. Every command runs under a time limit and its
# failure does not stop the others: the summary marks what failed or is missing. The whole
# check keeps within LDAE_CHECK_DEADLINE_S (default 480) seconds. Results (the
# whole log and the summary) go to $OUT (the device tool's folder) or /tmp/ldae-gpu/out; the run
# folders and tables to $LDAE_GPU_WORK (default /tmp/ldae-gpu). LDAE_CHECK_DEVICE=cpu
# LDAE_CHECK_SMOKE=1 runs the same steps, small, on a CPU build (to check the script itself on a
# machine without a GPU; the test suite runs it so, with LDAE_CHECK_PRESETS=tiny instead of the
# default "small base" and a generated image folder).
set -uo pipefail
cd "$(dirname "$0")/.."
BEGIN="$(date +%s)"
BIN="$(realpath "${1:-dist/ldae-cuda}")"
case "$BIN" in  # carried compressed (the stripped CUDA binary is about 150 MB)
  *.xz) python3 -c "import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
          "$BIN" /tmp/ldae-cuda && chmod +x /tmp/ldae-cuda && BIN=/tmp/ldae-cuda ;;
  *.gz) gunzip -c "$BIN" > /tmp/ldae-cuda && chmod +x /tmp/ldae-cuda && BIN=/tmp/ldae-cuda ;;
esac
DEV="${LDAE_CHECK_DEVICE:-cuda}"
SMOKE="${LDAE_CHECK_SMOKE:-0}"
W="${LDAE_GPU_WORK:-/tmp/ldae-gpu}"
R="${OUT:-$W/out}"
mkdir -p "$W" "$R"
LOG="$R/gpu-check.log"
STEPS_TSV="$W/steps.tsv"
# The whole check's budget in seconds: a command gets what is left of it at most, so a hang
# cannot run the check past the device call's limit (the summary still gets written).
DEADLINE="${LDAE_CHECK_DEADLINE_S:-480}"
: > "$LOG"
printf 'name\trc\tseconds\tpeak_gpu_mib\n' > "$STEPS_TSV"
say() { echo "$@" | tee -a "$LOG"; }
section() { say; say "== $* ($(( $(date +%s) - BEGIN )) s in)"; }

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
  # libcuda.so.1 comes with the driver (on the device machines, a mount at /usr/local/nvidia).
  export LD_LIBRARY_PATH="$LIBS:/usr/local/cuda/lib64:/usr/local/nvidia/lib64:${LD_LIBRARY_PATH:-}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$W/gpu.txt"
  IDLE_MIB="$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n1)"
else
  echo "cpu (smoke run of the script)" > "$W/gpu.txt"
  IDLE_MIB=0
fi
cp "$W/gpu.txt" "$R/gpu.txt"
# A binary that cannot load its libraries fails every step: say which are missing, and stop.
if ! "$BIN" --version > /dev/null 2>&1; then
  say "!! $BIN does not start:"; "$BIN" --version 2>&1 | tail -n 5 | tee -a "$LOG"
  ldd "$BIN" | grep -i "not found" | tee -a "$LOG"
  exit 2
fi

# run NAME LIMIT_S COMMAND...: one command under a time limit, its output in $W/NAME.out and the
# log, a row in steps.tsv (exit status, seconds, peak GPU memory above idle from nvidia-smi
# sampled every 100 ms). On failure the last lines are printed. Returns the command's status.
run() {
  local name="$1" limit="$2"; shift 2
  local sampler="" t0 rc peak left
  left=$(( BEGIN + DEADLINE - $(date +%s) ))
  if [ "$left" -lt 15 ]; then  # no time left in the check's budget: recorded as skipped
    say "-- $name: skipped, the check's ${DEADLINE} s are spent"
    printf '%s\t125\t0.0\t-\n' "$name" >> "$STEPS_TSV"
    return 125
  fi
  [ "$left" -lt "$limit" ] && limit="$left"
  say "-- $name"
  if [ "$DEV" != cpu ]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 > "$W/$name.mem" 2>/dev/null &
    sampler=$!
  fi
  t0="$(date +%s.%N)"
  timeout "$limit" "$@" > "$W/$name.out" 2>&1
  rc=$?
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null; fi
  peak="$(sort -n "$W/$name.mem" 2>/dev/null | tail -n1)"
  peak="${peak:+$(( peak - IDLE_MIB ))}"
  cat "$W/$name.out" >> "$LOG"
  printf '%s\t%s\t%.1f\t%s\n' "$name" "$rc" "$(awk "BEGIN { print $(date +%s.%N) - $t0 }")" "${peak:--}" >> "$STEPS_TSV"
  if [ "$rc" != 0 ]; then
    say "!! $name failed (exit $rc$([ "$rc" = 124 ] && echo ", time limit $limit s")); its last lines:"
    tail -n 12 "$W/$name.out"
  fi
  return "$rc"
}
out_of_memory() { grep -qiE 'out of memory|OUT_OF_MEMORY' "$W/$1.out"; }

PRESETS="${LDAE_CHECK_PRESETS:-small base}"
if [ "$SMOKE" = 1 ]; then
  CHECK_STEPS=10; CHECK_BATCH=16; STEPS=3; SIZE=64; BATCHES="8 4"; TINY_STEPS=3; TINY_BATCH=32
  FEAT_IMAGES=64; CIFAR_LIMIT=2000; HOLDOUT=10; E2E_BATCH=64; PEER_STEPS=3
else
  CHECK_STEPS=40; CHECK_BATCH=64; STEPS=30; SIZE=224; TINY_STEPS=120; TINY_BATCH=1024
  FEAT_IMAGES=8192; CIFAR_LIMIT=""; HOLDOUT=500; E2E_BATCH=256; PEER_STEPS=20
fi
batches_of() { # the halving list each preset starts from on an 80 GB card
  [ "$SMOKE" = 1 ] && { echo "$BATCHES"; return; }
  case "$1" in base) echo "512 256 128 64 32" ;; *) echo "1024 512 256 128 64" ;; esac
}
Q=(--progress log)

section "(a) correctness: one trained network continued 8 steps, and its features, on the CPU and on $DEV"
run pca32 120 "$BIN" pca fit --input synthetic:2048 --image-size 32 --patch 4 \
  --out "$W/pca32.safetensors" "${Q[@]}"
# A network trained CHECK_STEPS steps on the CPU (adaLN-Zero starts from an output of zero, so
# an untrained one would compare nothing), then the same 8 further steps three ways: resuming
# replays the same batches and noise, so the losses differ only by where they are computed.
rm -rf "$W"/check-*
run check-trained 180 "$BIN" train --input synthetic:2048 --pca "$W/pca32.safetensors" --dim 16 \
  --preset tiny --epochs 2 --max-steps "$CHECK_STEPS" --batch-size "$CHECK_BATCH" --lr 1e-3 \
  --warmup-epochs 0 --device cpu --out "$W/check-trained" "${Q[@]}"
for mode in "cpu cpu f32" "dev $DEV f32" "dev $DEV bf16"; do
  set -- $mode
  cp -r "$W/check-trained" "$W/check-$1-$3"
  run "check-$1-$3" 180 "$BIN" train --resume --out "$W/check-$1-$3" --max-steps $((CHECK_STEPS + 8)) \
    --device "$2" --precision "$3" "${Q[@]}"
done
for mode in "cpu cpu f32" "dev $DEV f32" "dev $DEV bf16"; do
  set -- $mode
  rm -rf "$W/feat-$1-$3"
  run "feat-$1-$3" 120 "$BIN" features --kind ldae --checkpoint "$W/check-trained" \
    --input synthetic:512 --device "$2" --precision "$3" --out "$W/feat-$1-$3" "${Q[@]}"
done

# (c) runs before (b): it is short, and the batch search of (b) may take what time is left.
section "(c) end to end on the CIFAR-10 JPEGs: PCA fit, train, features, probe"
CIFAR="${LDAE_CIFAR_DIR:-}"
if [ -z "$CIFAR" ]; then
  CIFAR="$W/cifar/train"
  if [ ! -d "$CIFAR" ]; then
    mkdir -p "$W/cifar"
    # .tar.xz or .tar.gz through Python's tarfile (always there); .tar.zst needs zstd or the
    # zstandard module, which a device machine may lack.
    ARCHIVE="$(ls .gpu/cifar10-train.tar.* 2>/dev/null | sort | head -n1)"
    case "$ARCHIVE" in
      *.zst) if command -v zstd >/dev/null; then tar --zstd -xf "$ARCHIVE" -C "$W/cifar"
             else python3 -c "import sys,tarfile,zstandard; tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(open(sys.argv[1],'rb')),mode='r|').extractall(sys.argv[2])" "$ARCHIVE" "$W/cifar"; fi ;;
      ?*) python3 -c "import sys,tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$ARCHIVE" "$W/cifar" ;;
      *) say "!! no .gpu/cifar10-train.tar.* and no LDAE_CIFAR_DIR: part (c) has no images" ;;
    esac
    CIFAR="$(dirname "$(dirname "$(find "$W/cifar" -name '*.jpg' -o -name '*.png' | head -n1)")")"
  fi
fi
# Hold out the last HOLDOUT images of each class (sorted by name) as the test split (links).
SPLIT="$W/cifar-split"
[ -d "$SPLIT/test" ] || python3 - "$CIFAR" "$SPLIT" "$HOLDOUT" <<'PY'
import os, sys
src, dst = (os.path.realpath(p) for p in sys.argv[1:3])
holdout = int(sys.argv[3])
for c in sorted(os.listdir(src)):
    files = sorted(os.listdir(os.path.join(src, c)))
    for split, part in (("train", files[:-holdout]), ("test", files[-holdout:])):
        os.makedirs(os.path.join(dst, split, c), exist_ok=True)
        for f in part:
            os.symlink(os.path.join(src, c, f), os.path.join(dst, split, c, f))
PY
LIMIT=(); [ -n "$CIFAR_LIMIT" ] && LIMIT=(--limit "$CIFAR_LIMIT")
rm -rf "$W/e2e-run" "$W/e2e-train" "$W/e2e-test"
run e2e-pca 180 "$BIN" pca fit --input "$SPLIT/train" --image-size 32 --patch 4 \
  --out "$W/e2e-pca.safetensors" "${Q[@]}" &&
run e2e-run 300 "$BIN" train --input "$SPLIT/train" --pca "$W/e2e-pca.safetensors" --dim 16 \
  --preset tiny --epochs 1 --batch-size "$E2E_BATCH" --lr 1e-3 --warmup-epochs 0.2 \
  --device "$DEV" "${LIMIT[@]}" --out "$W/e2e-run" "${Q[@]}" &&
run e2e-train 180 "$BIN" features --kind ldae --checkpoint "$W/e2e-run" --input "$SPLIT/train" \
  --device "$DEV" "${LIMIT[@]}" --shuffle --out "$W/e2e-train" "${Q[@]}" &&
run e2e-test 180 "$BIN" features --kind ldae --checkpoint "$W/e2e-run" --input "$SPLIT/test" \
  --device "$DEV" --out "$W/e2e-test" "${Q[@]}" &&
run e2e-probe 180 "$BIN" probe --train "$W/e2e-train" --test "$W/e2e-test" --knn --device "$DEV" \
  --out "$W/e2e-probe/results.json"

section "(b) training throughput of $PRESETS at ${SIZE} px / patch 16, bf16, the largest batch that fits"
run pca-224 180 "$BIN" pca fit --input synthetic:512 --image-size "$SIZE" --patch 16 \
  --out "$W/pca-224.safetensors" "${Q[@]}"
# The largest batch of the list that trains STEPS steps: the first that does not run out of GPU
# memory (another failure ends the search); written to speed-PRESET.batch.
# train_speed NAME PRESET BATCH [ENV=VALUE...]: STEPS bf16 training steps at SIZE px / patch 16
# into the run folder NAME.
train_speed() {
  local name="$1" preset="$2" batch="$3"; shift 3
  rm -rf "${W:?}/$name"
  run "$name" 180 env "$@" "$BIN" train --input synthetic:100000 --pca "$W/pca-224.safetensors" \
    --dim 64 --preset "$preset" --epochs 1 --max-steps "$STEPS" --batch-size "$batch" \
    --device "$DEV" --precision bf16 --out "$W/$name" "${Q[@]}"
}
largest_batch() { # preset batches...
  local preset="$1" b; shift
  for b in "$@"; do
    if train_speed "speed-$preset-b$b" "$preset" "$b"; then
      echo "$b" > "$W/speed-$preset.batch"
      return 0
    fi
    out_of_memory "speed-$preset-b$b" || return 1
    say "   batch $b does not fit; halving"
  done
  return 1
}
rm -f "$W"/speed-*.batch
# shellcheck disable=SC2086
for preset in $PRESETS; do
  largest_batch "$preset" $(batches_of "$preset") || continue
  run "peer-$preset" 180 python3 benches/train_peer.py "$preset" "$(cat "$W/speed-$preset.batch")" \
    "$PEER_STEPS" --image-size "$SIZE" --patch 16 --device "$DEV"
done
rm -rf "$W/speed-tiny"
run speed-tiny 240 "$BIN" train --input synthetic:1000000 --pca "$W/pca32.safetensors" --dim 16 \
  --preset tiny --epochs 1 --max-steps "$TINY_STEPS" --batch-size "$TINY_BATCH" --device "$DEV" \
  --precision bf16 --out "$W/speed-tiny" "${Q[@]}"
LARGEST="${PRESETS##* }"  # features of the last (largest) preset's run
if [ -f "$W/speed-$LARGEST.batch" ]; then
  # The same training without ldae's own CUDA kernels (candle's composite forms instead).
  train_speed speed-composite "$LARGEST" "$(cat "$W/speed-$LARGEST.batch")" LDAE_CUDA_KERNELS=off
  rm -rf "$W/feat-speed"
  run feat-speed 240 "$BIN" features --kind ldae --checkpoint "$W/speed-$LARGEST-b$(cat "$W/speed-$LARGEST.batch")" \
    --input "synthetic:$FEAT_IMAGES" --device "$DEV" --out "$W/feat-speed" "${Q[@]}"
fi
if [ "$DEV" != cpu ]; then
  run matmul-peak 120 python3 -c "
import time, torch
a = torch.randn(8192, 8192, device='cuda', dtype=torch.bfloat16); b = torch.randn_like(a)
for _ in range(3): a @ b
torch.cuda.synchronize(); t = time.perf_counter()
for _ in range(10): a @ b
torch.cuda.synchronize(); print('bf16 8192^3 products, TFLOP/s:', 10 * 2 * 8192**3 / (time.perf_counter() - t) / 1e12)"
fi

section "summary"
python3 scripts/gpu_check_summary.py "$W" "$DEV" "$PRESETS" 2>&1 | tee -a "$LOG" "$R/summary.txt"
STATUS="${PIPESTATUS[0]}"
say "check took $(( $(date +%s) - BEGIN )) s; the whole log: $LOG"
exit "$STATUS"  # 0 when no command failed and every check held
