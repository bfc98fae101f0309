"""Build one of ldae's bench targets in the release profile and return its executable.

`cargo build --release --bench NAME` shares every artifact of the release build, where
`cargo bench` builds in the bench profile: a second copy of every dependency.
"""
import json
import os
import subprocess
import sys

# The benches share the test checks' helpers (a scratch folder that removes itself, ...).
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "python"))
from common import scratch_dir  # noqa: E402,F401  (re-exported for the benches)


def bench_binary(name, cwd=None):
    """Build bench NAME (release profile) and return the path of its executable."""
    build = subprocess.run(["cargo", "build", "--release", "--bench", name, "--message-format=json"],
                           check=True, capture_output=True, text=True, cwd=cwd)
    for line in build.stdout.splitlines():
        msg = json.loads(line)
        if (msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == name
                and msg.get("executable")):
            return msg["executable"]
    sys.exit(f"cargo build --release --bench {name} produced no executable")


def default_ldae():
    """The release binary: under $CARGO_TARGET_DIR when it is set, else ./target."""
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(os.path.dirname(__file__), "..", "target")
    return os.path.join(target, "release", "ldae")


# What caps each side's kernels at an instruction-set level: ldae's LDAE_MAX_CPU_ISA, and for
# the Python peers PyTorch's ATen kernels, oneDNN and MKL (numpy's and Pillow's SIMD paths
# have no cap: they use at most AVX2 on x86).
ISA_CAPS = {
    "avx512": {"LDAE_MAX_CPU_ISA": "avx512", "ATEN_CPU_CAPABILITY": "avx512",
               "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_ENABLE_INSTRUCTIONS": "AVX512"},
    "avx2": {"LDAE_MAX_CPU_ISA": "avx2", "ATEN_CPU_CAPABILITY": "avx2",
             "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"},
}


def add_isa_argument(parser):
    """The benches' `--isa avx2|avx512`: cap both sides at one instruction-set level."""
    parser.add_argument("--isa", choices=sorted(ISA_CAPS),
                        help="cap ldae (LDAE_MAX_CPU_ISA) and the peer (ATEN_CPU_CAPABILITY, "
                             "ONEDNN_MAX_CPU_ISA, MKL_ENABLE_INSTRUCTIONS) at this level; "
                             "default: the widest the CPU has")


def apply_isa(isa):
    """Set the caps of `--isa` in this process's environment, which both sides inherit."""
    if isa:
        os.environ.update(ISA_CAPS[isa])


def machine_header(ldae=None):
    """One line for a bench's header: the CPU model, its widest x86 vector ISA and cores, the
    level the kernels run at (a cap from `--isa` or the environment), and (given the ldae
    binary) the JPEG decoder that binary uses."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    isa = next((name for flag, name in [("avx512f", "AVX-512"), ("avx2", "AVX2"), ("sse4_2", "SSE4.2")]
                if flag in flags), "no x86 SIMD flags")
    line = f"CPU: {model}, {isa}, {os.cpu_count()} cores"
    cap = os.environ.get("LDAE_MAX_CPU_ISA")
    line += (f"; kernels capped at {cap} (" + ", ".join(
        f"{k}={os.environ[k]}" for k in ISA_CAPS["avx2"] if k in os.environ) + ")"
             if cap else "; kernels at the CPU's widest level")
    if ldae:
        version = subprocess.run([ldae, "--version"], capture_output=True, text=True).stdout
        decoder = next((l.split(":", 1)[1].strip() for l in version.splitlines()
                        if l.startswith("JPEG decoder:")), "unknown")
        line += f"; JPEG decoder: {decoder}"
    return line
