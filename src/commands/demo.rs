//! `ldae demo`: the built-in end-to-end run on synthetic images; needs no files.
//!
//! Generate → fit a patch PCA → pre-train the tiny l-DAE briefly → features of four kinds →
//! linear and kNN probes → one table comparing them.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ldae_model::encoder::EncoderModel;
use ldae_operators::pca::PcaModel;

use super::experiment::{features, fit_pca, pretrain, probe_tables, Pretrain, Rows};
use super::pca::variance_summary;
use ldae_jobs::probe::ProbeReport;
use crate::cli::RunArgs;

/// Sizes of a demo run.
pub struct DemoConfig {
    /// Output folder.
    pub out: PathBuf,
    /// Training images (`synthetic:N`).
    pub images: usize,
    /// Held-out test images (the next ones of the same generator).
    pub test_images: usize,
    /// Pre-training epochs.
    pub epochs: u64,
    /// Pre-training batch size.
    pub batch_size: usize,
}

pub fn run(config: &DemoConfig, run: &RunArgs) -> Result<()> {
    let out = &config.out;
    std::fs::create_dir_all(out)?;
    let train_input = format!("synthetic:{}", config.images);
    let test_input = format!("synthetic:{}", config.images + config.test_images);
    let pca_path = out.join("pca.safetensors");
    println!("1/5 fitting a patch PCA (32x32 images, patch 4, D=48) on {train_input}");
    fit_pca(&train_input, 32, 4, 3, &pca_path, run)?;
    let model = PcaModel::load(&pca_path)?;
    println!("    {}", variance_summary(&model));
    let picture = out.join("components.png");
    ldae_operators::plot::save_png(
        &ldae_operators::pca::show::draw_components(&model, 48, 8),
        &picture,
    )?;

    let run_dir = out.join("run");
    println!(
        "2/5 pre-training the tiny l-DAE for {} epochs on {train_input}",
        config.epochs
    );
    pretrain(
        &Pretrain {
            input: &train_input,
            pca: &pca_path,
            dim: 16,
            noise: crate::cli::NoiseArg::Multi,
            latent_scale: None,
            preset: "tiny",
            epochs: config.epochs,
            limit: None,
            batch_size: config.batch_size,
            lr: 1e-3,
            warmup_epochs: 0.5,
            out: &run_dir,
        },
        run,
    )?;

    println!("3/5 features of the training and test images");
    let kinds = [
        (EncoderModel::Ldae, "l-DAE (tiny, trained)"),
        (EncoderModel::Pixels, "raw pixels"),
        (EncoderModel::Pca, "PCA latents (d=16)"),
        (EncoderModel::Random, "random-init network"),
    ];
    for (kind, _) in kinds {
        for (split, input, skip) in [
            ("train", &train_input, 0),
            ("test", &test_input, config.images),
        ] {
            let rows = Rows {
                skip,
                ..Rows::default()
            };
            let table = out.join(format!("features-{kind}-{split}"));
            features(kind, &run_dir, Vec::new(), input, rows, &table, run)?;
        }
    }

    println!("4/5 linear and kNN probes");
    let mut results: Vec<(&str, ProbeReport)> = Vec::new();
    for (kind, name) in kinds {
        let table = |split: &str| out.join(format!("features-{kind}-{split}"));
        let json = out.join(format!("probe-{kind}.json"));
        results.push((
            name,
            probe_tables(&table("train"), &table("test"), true, &json)?,
        ));
    }

    println!(
        "5/5 results ({} training, {} test images)",
        config.images, config.test_images
    );
    println!();
    print_table(&results);
    let ldae = results[0].1.linear.scores.top1;
    let random = results[3].1.linear.scores.top1;
    println!();
    if ldae > random {
        println!(
            "l-DAE beats the random-init network by {:.1} points (linear top-1).",
            100.0 * (ldae - random)
        );
    } else {
        println!(
            "l-DAE does not beat the random-init network here ({:.1}% vs {:.1}%): train longer (--epochs).",
            100.0 * ldae,
            100.0 * random
        );
    }
    println!();
    describe_outputs(out, &pca_path, &picture, &run_dir);
    Ok(())
}

fn print_table(results: &[(&str, ProbeReport)]) {
    println!(
        "{:<24} {:>8} {:>13} {:>10}",
        "features", "width", "linear top-1", "kNN top-1"
    );
    for (name, r) in results {
        let knn = r.knn.as_ref().map(|k| k.scores.top1).unwrap_or(f64::NAN);
        println!(
            "{:<24} {:>8} {:>12.1}% {:>9.1}%",
            name,
            r.features,
            100.0 * r.linear.scores.top1,
            100.0 * knn
        );
    }
}

fn describe_outputs(out: &Path, pca: &Path, picture: &Path, run_dir: &Path) {
    println!("demo outputs in {}:", out.display());
    let rows = [
        (pca.display().to_string(), "PCA model (ldae inspect it)"),
        (
            picture.display().to_string(),
            "top components as 4x4 patches",
        ),
        (
            run_dir.display().to_string(),
            "training run: checkpoint/, metrics.parquet, loss.png",
        ),
        (
            out.join("features-*-{train,test}").display().to_string(),
            "feature tables (ldae sql / ldae inspect them)",
        ),
        (
            out.join("probe-*.json").display().to_string(),
            "probe results, with *.predictions.parquet and *-confusion.png",
        ),
    ];
    for (path, what) in rows {
        println!("  {path:<40} {what}");
    }
}
