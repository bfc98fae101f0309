//! The demo job (`ldae demo`): the built-in end-to-end run on synthetic images; needs no files.
//!
//! Generate → fit a patch PCA → pre-train the tiny l-DAE briefly → features of four kinds →
//! linear and kNN probes → one table comparing them.

use std::path::PathBuf;

use ldae_model::denoiser::Preset;
use ldae_model::encoder::EncoderModel;
use ldae_operators::pca::PcaModel;
use ldae_pipeline::names::name_of;
use ldae_pipeline::RunOptions;

use crate::experiment::{
    features, fit_pca, pretrain, probe_tables, FeatureRead, Pretrain, Rows, Say, TrainExtras,
};
use crate::probe::ProbeReport;
use crate::train::NoiseKind;
use crate::Result;

/// Sizes of a demo run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DemoJob {
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

/// The feature kinds the demo compares, with their names in the table.
pub const KINDS: [(EncoderModel, &str); 4] = [
    (EncoderModel::Ldae, "l-DAE (tiny, trained)"),
    (EncoderModel::Pixels, "raw pixels"),
    (EncoderModel::Pca, "PCA latents (d=16)"),
    (EncoderModel::Random, "random-init network"),
];

/// What a demo run made.
pub struct DemoReport {
    /// The fitted PCA model file.
    pub pca: PathBuf,
    /// Its top components as a picture.
    pub picture: PathBuf,
    /// The training run folder.
    pub run_dir: PathBuf,
    /// Each feature kind's name and probe report, in [`KINDS`] order.
    pub results: Vec<(&'static str, ProbeReport)>,
}

impl DemoJob {
    /// Run the demo; `say` gets the step lines.
    pub fn run(&self, options: &RunOptions, say: Say<'_>) -> Result<DemoReport> {
        let out = &self.out;
        ldae_pipeline::folders::create_dir_all(out)?;
        let train_input = format!("synthetic:{}", self.images);
        let test_input = format!("synthetic:{}", self.images + self.test_images);
        let pca = out.join("pca.safetensors");
        say(&format!(
            "1/5 fitting a patch PCA (32x32 images, patch 4, D=48) on {train_input}"
        ));
        fit_pca(&train_input, 32, 4, 3, &pca, options, say)?;
        let model = PcaModel::load(&pca)?;
        say(&format!("    {}", model.variance_summary()));
        let picture = out.join("components.png");
        ldae_operators::plot::save_png(
            &ldae_operators::pca::show::draw_components(&model, 48, 8),
            &picture,
        )?;

        let run_dir = out.join("run");
        say(&format!(
            "2/5 pre-training the tiny l-DAE for {} epochs on {train_input}",
            self.epochs
        ));
        pretrain(
            &Pretrain {
                input: &train_input,
                pca: &pca,
                dim: 16,
                noise: NoiseKind::Multi,
                latent_scale: None,
                preset: Preset::Tiny,
                epochs: self.epochs,
                limit: None,
                batch_size: self.batch_size,
                lr: 1e-3,
                warmup_epochs: 0.5,
                seed: 0,
                out: &run_dir,
                extras: &TrainExtras::default(),
            },
            options,
            say,
        )?;

        say("3/5 features of the training and test images");
        for (kind, _) in KINDS {
            for (split, input, skip) in [
                ("train", &train_input, 0),
                ("test", &test_input, self.images),
            ] {
                let rows = Rows {
                    skip,
                    ..Rows::default()
                };
                let table = out.join(format!("features-{}-{split}", name_of(&kind)));
                features(
                    kind,
                    &run_dir,
                    &FeatureRead::default(),
                    input,
                    rows,
                    &table,
                    options,
                )?;
            }
        }

        say("4/5 linear and kNN probes");
        let mut results = Vec::new();
        for (kind, name) in KINDS {
            let kind = name_of(&kind);
            let table = |split: &str| out.join(format!("features-{kind}-{split}"));
            let json = out.join(format!("probe-{kind}.json"));
            results.push((
                name,
                probe_tables(&table("train"), &table("test"), true, &json)?,
            ));
        }
        Ok(DemoReport {
            pca,
            picture,
            run_dir,
            results,
        })
    }
}
