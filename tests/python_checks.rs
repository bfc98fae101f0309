//! The numeric cross-checks against numpy and pyarrow (tests/python/*.py), run on the binary
//! this test suite built. They need numpy, pyarrow and scikit-learn, which the first check
//! installs with pip when they are missing, so `cargo test --workspace` alone passes on a fresh
//! machine.

use std::process::Command;
use std::sync::Once;

/// Install the Python packages the checks import, once per test run, if any is missing.
fn python_packages() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let present = Command::new("python3")
            .args(["-c", "import numpy, pyarrow, sklearn"])
            .status()
            .is_ok_and(|s| s.success());
        if !present {
            let status = Command::new("python3")
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                ])
                .args(["numpy", "pyarrow", "scikit-learn"])
                .status()
                .expect("python3 runs");
            assert!(
                status.success(),
                "pip install numpy pyarrow scikit-learn failed"
            );
        }
    });
}

fn run_check(script: &str) {
    python_packages();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python");
    let out = Command::new("python3")
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
