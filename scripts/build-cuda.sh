#!/usr/bin/env bash
# Build the CUDA version of ldae on a machine without a GPU or a CUDA installation.
#
#   scripts/build-cuda.sh            # -> dist/ldae-cuda and dist/ldae-cuda.xz (feature "cuda")
#
# Where things come from:
#   - nvcc and the CUDA headers: NVIDIA's CUDA 13.0 compiler packages on PyPI, installed in a
#     virtual environment under $LDAE_CUDA_HOME (default ~/.cache/ldae-cuda). Every package is
#     pinned to 13.0: a newer nvidia-nvvm writes PTX that the 13.0 ptxas, and a CUDA 13.0 driver,
#     reject ("Unsupported .version").
#   - candle compiles its kernels to PTX for compute capability $CUDA_COMPUTE_CAP (default 90:
#     H100/H200); the PTX is embedded in the binary and loaded by the driver at run time.
#   - Linking: candle (cudarc) links against libcuda, libnvrtc, libcurand, libcublas and
#     libcublasLt. This machine has none of them, so the script links against stub libraries
#     with the same sonames that define the referenced symbols. The stubs are never used at run
#     time: on the GPU machine the real libraries come from its driver (libcuda.so.1, CUDA 13.0
#     or newer, e.g. driver 580) and CUDA installation (found through LD_LIBRARY_PATH).
#
# The CPU build and CI do not use any of this.
set -euo pipefail
cd "$(dirname "$0")/.."

HOME_DIR="${LDAE_CUDA_HOME:-$HOME/.cache/ldae-cuda}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ldae-target}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
mkdir -p "$HOME_DIR"

echo "== 1/3 nvcc and headers (PyPI, CUDA 13.0) in $HOME_DIR/venv"
[ -x "$HOME_DIR/venv/bin/python" ] || python3 -m venv "$HOME_DIR/venv"
"$HOME_DIR/venv/bin/pip" install --quiet --disable-pip-version-check \
  "nvidia-cuda-nvcc==13.0.88" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*" \
  "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-cccl==13.0.*"
CUDA_ROOT="$("$HOME_DIR/venv/bin/python" -c \
  'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
export CUDA_ROOT CUDA_PATH="$CUDA_ROOT"
export PATH="$CUDA_ROOT/bin:$PATH"
nvcc --version | tail -n2

echo "== 2/3 stub libraries for linking in $CUDA_ROOT/lib64/stubs"
STUBS="$CUDA_ROOT/lib64/stubs"
mkdir -p "$STUBS"
SYMBOLS="$HOME_DIR/symbols.txt"
touch "$SYMBOLS"
make_stubs() {
  # Each stub library defines the symbols of its real counterpart (told apart by prefix), so the
  # binary records every library it needs and the real ones resolve the symbols at run time.
  for lib in cuda:1 nvrtc:13 curand:10 cublas:13 cublasLt:13 cudart:13; do
    name="${lib%%:*}"; major="${lib##*:}"
    case "$name" in
      cuda) pattern='^cu[A-Z]' ;;
      cudart) pattern='^(__)?cuda' ;;
      cublasLt) pattern='^cublasLt' ;;
      cublas) pattern='^cublas[^L]' ;;
      curand) pattern='^curand' ;;
      nvrtc) pattern='^nvrtc' ;;
    esac
    { echo "/* Link-time stubs of lib$name for ldae's CUDA build; never loaded at run time. */"
      grep -E "$pattern" "$SYMBOLS" | sed 's/.*/void &(void) {}/' || true; } > "$STUBS/$name.c"
    gcc -shared -fPIC -o "$STUBS/lib$name.so.$major" -Wl,-soname,"lib$name.so.$major" "$STUBS/$name.c"
    ln -sf "lib$name.so.$major" "$STUBS/lib$name.so"
  done
}
make_stubs

echo "== 3/3 cargo build --release --features cuda (target $CARGO_TARGET_DIR)"
LOG="$HOME_DIR/build.log"
# Relink against the current stubs even when cargo thinks the binary is fresh.
touch src/main.rs
build() { cargo build --release --features cuda --bin ldae 2>&1 | tee "$LOG" | grep -E '^(error|warning: unused)' || true; }
# The link names the CUDA symbols it cannot find (GNU ld: "undefined reference to `X'", lld:
# "undefined symbol: X", at most 20 per try): define them in the stubs and relink until it links.
for attempt in $(seq 1 40); do
  build
  grep -q '^error' "$LOG" || break
  before="$(wc -l < "$SYMBOLS")"
  { grep -o "undefined reference to \`[A-Za-z_][A-Za-z0-9_]*'" "$LOG" \
      | sed "s/undefined reference to \`//; s/'$//"
    grep -o "undefined symbol: [A-Za-z_][A-Za-z0-9_]*" "$LOG" | sed 's/undefined symbol: //'
  } >> "$SYMBOLS" || true
  sort -u -o "$SYMBOLS" "$SYMBOLS"
  if [ "$(wc -l < "$SYMBOLS")" = "$before" ]; then
    tail -n 40 "$LOG"
    echo "CUDA build failed (not on a missing CUDA symbol); full log in $LOG" >&2
    exit 1
  fi
  echo "   try $attempt: $(wc -l < "$SYMBOLS") CUDA symbols stubbed so far; relinking"
  make_stubs
done
if grep -q '^error' "$LOG"; then
  echo "CUDA build failed; full log in $LOG" >&2
  exit 1
fi
# A name of its own (and inside the work tree, so the device tool can carry it): the next CPU
# build writes release/ldae again.
mkdir -p dist
BIN=dist/ldae-cuda
# Stripped (the release profile keeps line tables): it has to travel to the GPU machine.
strip -o "$BIN" "$CARGO_TARGET_DIR/release/ldae"
# Compressed for the trip to a GPU machine (scripts/gpu-check.sh unpacks it): about a sixth.
xz -T0 -6 -c "$BIN" > "$BIN.xz.tmp" && mv "$BIN.xz.tmp" "$BIN.xz"
echo
echo "built $BIN ($(du -h "$BIN" | cut -f1); $BIN.xz $(du -h "$BIN.xz" | cut -f1)), CUDA libraries it loads at run time:"
readelf -d "$BIN" | grep NEEDED | grep -E 'cu|nvrtc' || true
echo "on the GPU machine: LD_LIBRARY_PATH=<CUDA 13 lib folder> $BIN train --device cuda ..."
