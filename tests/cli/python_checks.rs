//! The numeric cross-checks against numpy, pyarrow, scikit-learn, Pillow, timm and transformers
//! (tests/python/*.py), run on the binary this test suite built, in the test environment that
//! `scripts/test_venv.py` makes once under the target directory (pinned packages).

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::venv;

/// The test environment's interpreter (made on first use; see `scripts/test_venv.py`).
pub fn python() -> &'static PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        venv::test_python(&PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ldae-test-venv"))
    })
}

fn run_check(script: &str) {
    let dir = venv::manifest_dir().join("tests").join("python");
    let out = venv::python_command(python())
        .arg(dir.join(script))
        .current_dir(&dir)
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

#[test]
fn probe_reads_pandas_embeddings_and_agrees_with_scikit_learn() {
    run_check("check_foreign_probe.py");
}

#[test]
fn timm_model_folders_give_timm_features() {
    run_check("check_timm_import.py");
}

#[test]
fn exported_runs_load_in_timm_with_ldae_features() {
    run_check("check_timm_export.py");
}

#[test]
fn transformers_model_folders_give_transformers_features() {
    run_check("check_transformers_import.py");
}
