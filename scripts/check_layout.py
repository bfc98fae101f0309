#!/usr/bin/env python3
"""Check the source layout docs/design-notes.md promises: no two files of a crate import each
other (through `crate::` or `super::` paths, comments and tests left out), and no library file
is over 600 lines. Prints what breaks a rule; exits 1 if anything does.

    python3 scripts/check_layout.py
"""
import itertools
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CRATES = ["src", "pipeline/src", "operators/src", "model/src", "jobs/src", "datasets/src",
          "python/src"]
MAX_LINES = 600


def module_of(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    return tuple(parts[:-1] if parts[-1] in ("mod", "lib", "main") else parts)


def imports(src, files, module, path):
    text = open(path).read()
    text = re.split(r"#\[cfg\(test\)\]", text)[0]
    text = re.sub(r"//[^\n]*", "", text)
    found = set()
    for m in re.finditer(r"\bcrate((?:::\w+)+)", text):
        parts = m.group(1).split("::")[1:]
        for k in range(len(parts), 0, -1):
            if tuple(parts[:k]) in files:
                found.add(tuple(parts[:k]))
                break
    # `super::` from a file `a/b.rs` (module a::b) names a::x; from `a/mod.rs` it names the parent's.
    own = list(module) if not path.endswith(("mod.rs", "lib.rs", "main.rs")) else list(module) + ["_"]
    for m in re.finditer(r"\b((?:super::)+)(\w+)", text):
        parent = own[: len(own) - m.group(1).count("super::")]
        target = tuple(parent + [m.group(2)])
        found.add(target if target in files else tuple(parent))
    found.discard(module)
    return {f for f in found if f in files}


def main():
    problems = []
    for crate in CRATES:
        src = os.path.join(ROOT, crate)
        files = {}
        for d, _, names in os.walk(src):
            for n in names:
                if n.endswith(".rs"):
                    p = os.path.join(d, n)
                    files[module_of(src, p)] = p
        deps = {m: imports(src, files, m, p) for m, p in files.items()}
        for a, b in itertools.combinations(sorted(deps), 2):
            if b in deps[a] and a in deps[b]:
                problems.append(f"{crate}: {'::'.join(a) or 'lib'} and {'::'.join(b) or 'lib'} "
                                "import each other")
        for p in files.values():
            lines = sum(1 for _ in open(p))
            if lines > MAX_LINES:
                problems.append(f"{os.path.relpath(p, ROOT)}: {lines} lines (over {MAX_LINES})")
    for p in problems:
        print(p)
    print(f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
