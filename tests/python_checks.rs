//! The numeric cross-checks against numpy and pyarrow (tests/python/*.py), run on the binary
//! this test suite built. They need `pip install numpy pyarrow scikit-learn`; `.ci/run` installs them.

use std::process::Command;

fn run_check(script: &str) {
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
