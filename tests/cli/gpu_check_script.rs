//! `scripts/gpu-check.sh` runs only where a GPU is lent, and GPU time is short: here it runs
//! small and on the CPU (its smoke mode, the tiny preset, generated JPEGs), so a change to what
//! the commands print or write, which its summary reads, cannot break it unnoticed.

use std::process::Command;

use crate::common::jpeg_folder;
use crate::python_checks::python;
use crate::venv::manifest_dir;

#[test]
fn the_gpu_check_runs_every_step_in_its_cpu_smoke_mode_and_reports_every_row() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    jpeg_folder(&images, 200, 4);
    let work = tmp.path().join("work");
    // The script's python3 is the test environment's (numpy, pyarrow and torch).
    let bin_dir = python().parent().unwrap().to_path_buf();
    let path = std::env::join_paths(std::iter::once(bin_dir).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let out = Command::new("bash")
        .arg(manifest_dir().join("scripts/gpu-check.sh"))
        .arg(env!("CARGO_BIN_EXE_ldae"))
        .env("PATH", path)
        .env("LDAE_CHECK_DEVICE", "cpu")
        .env("LDAE_CHECK_SMOKE", "1")
        .env("LDAE_CHECK_PRESETS", "tiny")
        .env("LDAE_CIFAR_DIR", &images)
        .env("LDAE_GPU_WORK", &work)
        .env_remove("OUT")
        .env("LDAE_LOG", "warn")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the check failed:\n{printed}");
    let summary = std::fs::read_to_string(work.join("out/summary.txt")).unwrap();
    assert!(!summary.contains("FAIL"), "{summary}");
    for row in [
        "(a) loss, cpu f32 vs cpu f32, step 11 (same weights: the forward pass)",
        "(a) loss, cpu bf16 vs cpu f32, largest over steps 11-18",
        "(a) features, cpu bf16 vs cpu f32",
        "(b) tiny: largest batch that fits",
        "(b) tiny: GFLOP per image trained",
        "(b) tiny: model step waiting for the loader",
        "(b) tiny: share of the model step copying batches to the device",
        "(b) tiny: ldae peak host memory (the process's resident set)",
        "(b) tiny: ldae / PyTorch",
        "(b) tiny: gain of ldae's CUDA kernels",
        "(b) features of tiny, whole command: images/s",
        "(c) train: model step waiting for the loader",
        "(c) linear probe top-1",
        "(c) kNN top-1",
    ] {
        assert!(summary.contains(row), "no row '{row}' in\n{summary}");
    }
}
