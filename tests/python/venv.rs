//! The test suite's Python environment, shared by the test binaries that run Python (included
//! with `#[path]`): `scripts/test_venv.py` makes it once under the target directory (the Python
//! package's `test` extra, every package pinned by `python/constraints.txt`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The interpreter of the environment at `venv` (made on first use).
pub fn test_python(venv: &Path) -> PathBuf {
    // CARGO_MANIFEST_DIR is the repository root or a crate folder below it.
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
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
