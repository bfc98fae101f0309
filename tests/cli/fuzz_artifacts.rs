//! Random and mutated artifacts: PCA files (models and partial statistics) and training
//! checkpoints (weights, optimizer state, EMA, config, position). Loading one never panics; a
//! truncated one is an error naming the file.

use std::path::Path;

use crate::common::{fit_synthetic, ok};
use candle_core::Device;
use ldae_model::denoiser::Precision;
use ldae_model::train::trainer::{load_trained, Trainer};
use ldae_operators::pca::{PcaModel, PcaStats};
use proptest::prelude::*;

/// `bytes` with each `(position, value)` written in, then cut to `keep` of its length. Half
/// the edits land in the first 512 bytes, where safetensors and JSON headers are.
fn mutate(mut bytes: Vec<u8>, edits: &[(usize, u8)], keep: f64) -> Vec<u8> {
    let n = bytes.len();
    for &(at, v) in edits {
        let at = if at % 2 == 0 {
            (at / 2) % n.min(512)
        } else {
            at % n
        };
        bytes[at] = v;
    }
    bytes.truncate((n as f64 * keep.clamp(0.0, 1.0)) as usize);
    bytes
}

/// A PCA model file and a partial-statistics file, made once per test binary run.
fn pca_files(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let model = fit_synthetic(dir, 40, 8);
    let partial = dir.join("partial.safetensors");
    ok(&[
        "pca",
        "fit",
        "--input",
        "synthetic:40",
        "--image-size",
        "8",
        "--patch",
        "4",
        "--shard",
        "0/2",
        "--partial",
        "--out",
        partial.to_str().unwrap(),
        "--progress",
        "off",
    ]);
    (
        std::fs::read(model).unwrap(),
        std::fs::read(&partial).unwrap(),
    )
}

/// A tiny trained run with EMA, checkpointed.
fn trained_run(dir: &Path) -> std::path::PathBuf {
    let pca = fit_synthetic(dir, 40, 8);
    let run = dir.join("run");
    ok(&[
        "train",
        "--input",
        "synthetic:40",
        "--pca",
        &pca,
        "--dim",
        "4",
        "--width",
        "16",
        "--depth",
        "1",
        "--heads",
        "2",
        "--batch-size",
        "20",
        "--ema",
        "0.9",
        "--epochs",
        "2",
        "--max-steps",
        "1",
        "--out",
        run.to_str().unwrap(),
        "--progress",
        "off",
    ]);
    run
}

#[test]
fn truncated_pca_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (model, partial) = pca_files(tmp.path());
    for (name, bytes) in [
        ("model.safetensors", &model),
        ("partial.safetensors", &partial),
    ] {
        for keep in [0, 7, 8, 100, bytes.len() / 2, bytes.len() - 1] {
            let path = tmp.path().join(format!("cut-{keep}-{name}"));
            std::fs::write(&path, &bytes[..keep]).unwrap();
            let err = if name.starts_with("model") {
                PcaModel::load(&path).unwrap_err()
            } else {
                PcaStats::load_partial(&path).unwrap_err()
            };
            let text = err.chain();
            assert!(text.contains(&format!("cut-{keep}-{name}")), "{text}");
        }
    }
}

#[test]
fn truncated_checkpoint_files_are_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained_run(tmp.path());
    let ckpt = run.join("checkpoint");
    for file in [
        "model.safetensors",
        "ema.safetensors",
        "optimizer.safetensors",
        "state.json",
    ] {
        let path = ckpt.join(file);
        let whole = std::fs::read(&path).unwrap();
        std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();
        let features = crate::common::ldae(&[
            "train",
            "--resume",
            "--out",
            run.to_str().unwrap(),
            "--progress",
            "off",
        ]);
        let err = String::from_utf8_lossy(&features.stderr);
        assert!(!features.status.success());
        assert!(err.contains(&path.display().to_string()), "{file}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        std::fs::write(&path, &whole).unwrap();
    }
}

/// One shared set of artifacts for the property tests (they are slow to make, cheap to read).
fn shared() -> &'static (tempfile::TempDir, Vec<u8>, Vec<u8>, std::path::PathBuf) {
    static SHARED: std::sync::OnceLock<(tempfile::TempDir, Vec<u8>, Vec<u8>, std::path::PathBuf)> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let (model, partial) = pca_files(tmp.path());
        let run = trained_run(tmp.path());
        (tmp, model, partial, run)
    })
}

/// A copy of the shared run (each case works on its own) with `file` mutated.
fn mutated_run(name: &str, file: &str, edits: &[(usize, u8)], keep: f64) -> std::path::PathBuf {
    let (tmp, _, _, run) = shared();
    let copy = tmp.path().join(name);
    let _ = std::fs::remove_dir_all(&copy);
    std::fs::create_dir_all(copy.join("checkpoint")).unwrap();
    for f in std::fs::read_dir(run.join("checkpoint")).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, copy.join("checkpoint").join(f.file_name().unwrap())).unwrap();
    }
    std::fs::copy(run.join("config.json"), copy.join("config.json")).unwrap();
    let path = if file == "config.json" {
        copy.join(file)
    } else {
        copy.join("checkpoint").join(file)
    };
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, mutate(bytes, edits, keep)).unwrap();
    copy
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn mutated_pca_files_never_panic(
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
        keep in prop_oneof![Just(1.0f64), 0.0f64..1.0],
        partial in any::<bool>(),
    ) {
        let (tmp, model, stats, _) = shared();
        let path = tmp.path().join(format!("fuzz-{partial}.safetensors"));
        let source = if partial { stats } else { model };
        std::fs::write(&path, mutate(source.clone(), &edits, keep)).unwrap();
        if partial {
            let _ = PcaStats::load_partial(&path);
        } else if let Ok(m) = PcaModel::load(&path) {
            // What a loaded model is used for must not panic either.
            let _ = m.tokens();
            let _ = m.variance_summary();
            let _ = m.projector(1, Default::default(), &Device::Cpu);
        }
    }

    #[test]
    fn mutated_checkpoints_never_panic(
        file in prop_oneof![Just("model.safetensors"), Just("ema.safetensors"), Just("config.json")],
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        keep in prop_oneof![Just(1.0f64), 0.0f64..1.0],
    ) {
        let copy = mutated_run("fuzz-run", file, &edits, keep);
        let _ = load_trained(&copy, &Device::Cpu, file == "ema.safetensors", Precision::F32);
    }

    #[test]
    fn mutated_training_state_never_panics(
        file in prop_oneof![Just("optimizer.safetensors"), Just("state.json")],
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        keep in prop_oneof![Just(1.0f64), 0.0f64..1.0],
    ) {
        let copy = mutated_run("fuzz-resume", file, &edits, keep);
        let _ = Trainer::resume(&copy, &Device::Cpu, Precision::F32);
    }
}
