#!/usr/bin/env python3
"""Make (once) and print the test suite's Python environment.

Usage: test_venv.py VENV_DIR

Creates a virtual environment at VENV_DIR with the requirements of the Python package's `test`
extra (which includes its `ray` extra) from python/pyproject.toml, installed under
python/constraints.txt (every package pinned), unless one made from the same files is already
there, and prints its interpreter's path. Both Rust test binaries that run Python (the CLI's
numeric cross-checks and the package's pytest suite) call this: one environment, installed
once; a lock makes concurrent callers wait for the first.
"""

import fcntl
import hashlib
import pathlib
import os
import re
import shutil
import subprocess
import sys
import tomllib
import venv

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "python" / "pyproject.toml"
CONSTRAINTS = ROOT / "python" / "constraints.txt"


def requirements(extra="test"):
    """The requirement strings of an extra, with `ldae[other]` expanded."""
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    out = []
    for req in extras[extra]:
        own = re.fullmatch(r"ldae\[([a-z,]+)\]", req)
        if own:
            for other in own.group(1).split(","):
                out += requirements(other)
        else:
            out.append(req)
    return out


# The installer: uv downloads and unpacks wheels in parallel (the environment, about 4 GB with
# torch's CUDA libraries, installs in about 20 s instead of pip's 70 s or more). Pinned, as every
# package of the environment is.
UV = "uv==0.13.9"


def install(python, reqs):
    """Install `reqs` under the constraints into the environment of `python`: with uv, or with
    pip where uv cannot be installed (a platform without its wheel)."""
    quiet = ["--quiet", "--disable-pip-version-check"]
    # Their output goes to stderr: stdout carries the interpreter's path to the caller.
    out = {"stdout": sys.stderr}
    has_uv = subprocess.run([str(python), "-m", "pip", "install", *quiet, UV], **out).returncode == 0
    if has_uv:
        # --no-cache: nothing is kept outside the environment (the wheels would be 4 GB more).
        cmd = [str(python), "-m", "uv", "pip", "install", "--quiet", "--no-cache",
               "--python", str(python), "-c", str(CONSTRAINTS), *reqs]
    else:
        # --no-compile: bytecode is written on first import, for the modules the tests use
        # (compiling all of Ray's up front is half of the install's time).
        cmd = [str(python), "-m", "pip", "install", *quiet, "--no-compile",
               "-c", str(CONSTRAINTS), *reqs]
    subprocess.run(cmd, check=True, **out)


def make_venv(env):
    """Create the environment. A Debian python3 without its venv package cannot bootstrap pip
    in it (ensurepip is left out there); the test command sets up what the tests need, so as
    root with apt-get it installs python3-venv and tries again."""
    build = venv.EnvBuilder(with_pip=True, clear=True)
    try:
        build.create(env)
        return
    except (subprocess.CalledProcessError, OSError) as e:
        failure = e
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        sys.exit(f"cannot make a virtual environment with {sys.executable} ({failure}); "
                 "install its venv module (python3-venv on Debian and Ubuntu)")
    print("installing python3-venv (pip's bootstrap in virtual environments)", file=sys.stderr)
    out = {"stdout": sys.stderr, "check": True}
    subprocess.run(["apt-get", "update", "-qq"], **out)
    subprocess.run(["apt-get", "install", "-y", "-qq", "python3-venv"], **out)
    build.create(env)


def fingerprint(reqs):
    h = hashlib.sha256()
    h.update("\n".join(reqs).encode())
    h.update(CONSTRAINTS.read_bytes())
    h.update(sys.version.encode())
    h.update(UV.encode())
    return h.hexdigest()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    env = pathlib.Path(sys.argv[1])
    env.parent.mkdir(parents=True, exist_ok=True)
    python = env / "bin" / "python"
    marker = env / ".ldae-provisioned"
    reqs = requirements()
    with open(env.parent / (env.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        want = fingerprint(reqs)
        if not (marker.exists() and marker.read_text() == want and python.exists()):
            print(f"making the test environment {env} (once)", file=sys.stderr)
            make_venv(env)
            install(python, reqs)
            marker.write_text(want)
    print(python)


if __name__ == "__main__":
    main()
