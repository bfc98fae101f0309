//! The numeric cross-checks against numpy and pyarrow (tests/python/*.py), run on the binary
//! this test suite built. They need numpy, pyarrow, scikit-learn and Pillow: the first check makes a
//! virtual environment under the target directory and installs them there on first use (kept
//! for later runs), so `cargo test --workspace` alone passes on a fresh machine.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const PACKAGES: [&str; 4] = ["numpy", "pyarrow", "scikit-learn", "pillow"];

fn has_packages(python: &std::path::Path) -> bool {
    Command::new(python)
        .args(["-c", "import numpy, pyarrow, sklearn, PIL"])
        .status()
        .is_ok_and(|s| s.success())
}

/// The Python interpreter the checks run with: `python3` when it already has the packages,
/// else a virtual environment under the target directory with them installed (made once).
fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let system = PathBuf::from("python3");
        if has_packages(&system) {
            return system;
        }
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ldae-test-venv");
        let python = venv.join("bin").join("python");
        if has_packages(&python) {
            return python;
        }
        let made = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        // Without venv support (Debian's python3 lacks ensurepip), install for the system one.
        let target = if made { python } else { system };
        let status = Command::new(&target)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES)
            .status()
            .expect("python3 runs (install python3)");
        assert!(
            status.success(),
            "pip install {} into {} failed",
            PACKAGES.join(" "),
            target.display()
        );
        target
    })
}

fn run_check(script: &str) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    let out = Command::new(python())
        .arg(format!("{dir}/{script}"))
        .current_dir(dir)
        .env("LDAE_BIN", env!("CARGO_BIN_EXE_ldae"))
        .env("LDAE_LOG", "warn")
        .output()
        .expect("python3 runs (install python3 with numpy and pyarrow)");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{text}");
    assert!(out.status.success(), "{script} failed:\n{text}");
}

#[test]
fn pca_equals_numpy_eigh() {
    run_check("check_pca.py");
}

#[test]
fn latents_open_in_pyarrow_as_tensors_and_equal_numpy_projection() {
    run_check("check_latents.py");
}

#[test]
fn probe_agrees_with_scikit_learn_and_numpy_knn() {
    run_check("check_probe.py");
}

#[test]
fn decode_resize_matches_pillow_bilinear() {
    run_check("check_resize.py");
}

#[test]
fn killed_tables_never_read_as_partial_in_pyarrow() {
    run_check("check_killed_tables.py");
}
