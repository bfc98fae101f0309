//! The Python package's pytest suite (the `test_*.py` files beside this one), run on the
//! extension module and the `ldae` binary that this test build compiled: every result the
//! package gives is compared with the CLI's for the same input.
//!
//! No maturin build is needed: the package's Python modules and the extension (`lib_native.so`,
//! built by cargo as this crate's cdylib) are staged into a folder on `PYTHONPATH`. The
//! packages come from the test environment that `scripts/test_venv.py` makes once (pinned by
//! `python/constraints.txt`). `pip install ./python` is the users' way in.

use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what} failed");
}

#[path = "../../tests/python/venv.rs"]
mod venv;

/// The extension this build made. `cargo test` leaves the cdylib in `<profile>/deps` (only
/// `cargo build` copies it up to `<profile>`), so both places are looked at, newest first.
fn native_module(profile_dir: &Path) -> PathBuf {
    let candidates = [
        profile_dir.join("deps").join("lib_native.so"),
        profile_dir.join("lib_native.so"),
    ];
    let modified = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    candidates
        .iter()
        .filter(|p| p.exists())
        .max_by_key(|p| modified(p))
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "lib_native.so is missing from {} and its deps/: run `cargo test --workspace` \
                 (it builds the extension and the CLI)",
                profile_dir.display()
            )
        })
}

/// The `ldae` package folder: the Python modules with the extension this build made.
fn stage_package(tmp: &Path, profile_dir: &Path) -> PathBuf {
    let module = native_module(profile_dir);
    let root = tmp.join("ldae-python-staged");
    let package = root.join("ldae");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&package).unwrap();
    let sources = venv::manifest_dir().join("ldae");
    for entry in std::fs::read_dir(&sources).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "py") {
            std::fs::copy(&path, package.join(path.file_name().unwrap())).unwrap();
        }
    }
    // A link, not a copy: a debug build of the extension is over a gigabyte.
    std::os::unix::fs::symlink(&module, package.join("_native.abi3.so")).unwrap();
    root
}

#[test]
fn python_package_passes_its_pytest_suite() {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    // CARGO_TARGET_TMPDIR is <target>/tmp; this build's artifacts are in <target>/<profile>.
    let profile_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let ldae = profile_dir.join("ldae");
    assert!(
        ldae.exists(),
        "{} is missing: run `cargo test --workspace` (it builds the CLI too)",
        ldae.display()
    );
    let python = venv::test_python(&tmp.join("ldae-test-venv"));
    let staged = stage_package(&tmp, &profile_dir);
    let tests = venv::manifest_dir().join("tests");
    run(
        venv::python_command(&python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider"])
            .arg(&tests)
            .current_dir(&tests)
            .env("PYTHONPATH", &staged)
            .env("LDAE_BIN", &ldae)
            .env("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0"),
        "pytest python/tests",
    );
}
