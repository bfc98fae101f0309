//! The CPU kernels at every instruction-set level this machine has (`LDAE_MAX_CPU_ISA`): the
//! cap takes effect, and the same work agrees across levels within the tolerances the README
//! states. (Within one level, results are bit-identical; see the training tests.)

use std::path::Path;

use crate::common::{fit_synthetic, ok_with_env, read_table, small_train_args, tensor_f32};
use ldae_model::train::metrics::read_metrics;
use ldae_operators::cpu::Isa;

/// Run `ldae ARGS` with the kernels capped at `isa`; insist that it succeeds.
fn ok_at(isa: Isa, args: &[&str]) -> String {
    ok_with_env(("LDAE_MAX_CPU_ISA", isa.name()), args)
}

/// The small network of the training tests, trained for `steps` steps at `isa`.
fn train(isa: Isa, pca: &str, out: &Path, steps: &str) {
    let mut args = small_train_args(pca, out);
    args.extend(["--epochs", "1", "--max-steps", steps, "--lr", "2e-3"].map(String::from));
    ok_at(isa, &args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// The largest difference between `a` and `b`, relative to the largest magnitude in `b`.
fn relative_gap(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let scale = b
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(f32::MIN_POSITIVE);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn results_agree_across_instruction_set_levels() {
    let levels: Vec<Isa> = Isa::ALL
        .into_iter()
        .filter(|&l| l <= Isa::detected())
        .collect();
    let widest = *levels.last().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 64, 16);
    let reference_run = tmp.path().join("run");
    train(widest, &pca, &reference_run, "4");

    // Per level: PCA latents, features of the one trained run, and the losses of a fresh run.
    let mut latents = Vec::new();
    let mut features = Vec::new();
    let mut losses = Vec::new();
    for &isa in &levels {
        let version = ok_at(isa, &["--version"]);
        assert!(
            version.contains(&format!("CPU kernels: {isa}")),
            "the cap should set the level: {version}"
        );
        let dir = tmp.path().join(isa.name());
        let encoded = dir.join("latents");
        ok_at(
            isa,
            &[
                "pca",
                "encode",
                "--input",
                "synthetic:64",
                "--pca",
                &pca,
                "--dim",
                "8",
                "--progress",
                "off",
                "--out",
                encoded.to_str().unwrap(),
            ],
        );
        latents.push(tensor_f32(&read_table(&encoded), "latents"));
        let feats = dir.join("features");
        ok_at(
            isa,
            &[
                "features",
                "--input",
                "synthetic:64",
                "--checkpoint",
                reference_run.to_str().unwrap(),
                "--progress",
                "off",
                "--out",
                feats.to_str().unwrap(),
            ],
        );
        features.push(tensor_f32(&read_table(&feats), "features"));
        let run = dir.join("run");
        train(isa, &pca, &run, "4");
        losses.push(
            read_metrics(&run.join("metrics.parquet"))
                .unwrap()
                .iter()
                .map(|m| m.loss)
                .collect::<Vec<f32>>(),
        );
    }

    let last = levels.len() - 1;
    for (i, &isa) in levels.iter().enumerate() {
        // The tolerances the README states for results across CPUs.
        let gap = relative_gap(&latents[i], &latents[last]);
        assert!(
            gap <= 1e-6,
            "PCA latents at {isa} vs {widest}: relative gap {gap:e}"
        );
        let gap = relative_gap(&features[i], &features[last]);
        assert!(
            gap <= 1e-5,
            "features at {isa} vs {widest}: relative gap {gap:e}"
        );
        assert_eq!(losses[i].len(), 4);
        let gap = relative_gap(&losses[i], &losses[last]);
        assert!(
            gap <= 1e-4,
            "training losses at {isa} vs {widest}: relative gap {gap:e}"
        );
    }
    // The levels really take different instruction paths: the narrowest level's features are
    // not bit-identical to the widest's (their products block and round differently).
    // A CPU with one level (not x86-64) has nothing to compare.
    assert!(
        levels.len() == 1
            || features[0]
                .iter()
                .zip(&features[last])
                .any(|(a, b)| a.to_bits() != b.to_bits()),
        "features at {} and {widest} are bit-identical: the cap changed nothing",
        levels[0]
    );
}
