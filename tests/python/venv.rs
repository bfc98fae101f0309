//! The test suite's Python environment, shared by the test binaries that run Python (included
//! with `#[path]`): `scripts/test_venv.py` makes it once under the target directory (the Python
//! package's `test` extra, every package pinned by `python/constraints.txt`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The folder of the test's crate in the checkout under test. Cargo sets CARGO_MANIFEST_DIR
/// when it runs a test, and that wins over the path compiled in: a shared target directory may
/// hold a test binary that another checkout of the same sources built.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// A command running the test environment's `python`. Bytecode is written and reused even where
/// the machine sets PYTHONDONTWRITEBYTECODE: the environment is installed without it
/// (`--no-compile`), and without a cache each process that imports torch compiles its sources
/// again (5 to 6 seconds each, over a minute across the suite's processes).
pub fn python_command(python: &Path) -> Command {
    let mut command = Command::new(python);
    command.env_remove("PYTHONDONTWRITEBYTECODE");
    command
}

/// The interpreter of the environment at `venv` (made on first use).
pub fn test_python(venv: &Path) -> PathBuf {
    // CARGO_MANIFEST_DIR is the repository root or a crate folder below it.
    // Cargo sets CARGO_MANIFEST_DIR when it runs a test; that wins over the path compiled in,
    // because a shared target directory may hold a binary another checkout built.
    let script = manifest_dir()
        .ancestors()
        .map(|dir| dir.join("scripts").join("test_venv.py"))
        .find(|p| p.exists())
        .expect("scripts/test_venv.py in the repository");
    let out = Command::new("python3")
        .arg(&script)
        .arg(venv)
        .output()
        .expect("python3 runs (install python3 and python3-venv)");
    assert!(
        out.status.success(),
        "scripts/test_venv.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}
