"""Build one of ldae's bench targets in the release profile and return its executable.

`cargo build --release --bench NAME` shares every artifact of the release build, where
`cargo bench` builds in the bench profile: a second copy of every dependency.
"""
import json
import subprocess
import sys


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
