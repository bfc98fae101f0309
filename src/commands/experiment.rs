//! The steps shared by `ldae demo` and `ldae ablate`: pre-train, extract features, probe.

use std::path::{Path, PathBuf};

use anyhow::Result;
use ldae_model::probe::{KnnConfig, LinearConfig};

use ldae_jobs::probe::{probe, ProbeJob, ProbeReport};
use ldae_model::encoder::{EncoderModel, Pooling};

use ldae_model::train::run::TrainSinkConfig;
use ldae_operators::pca::LatentScale;

use crate::cli::{NoiseArg, ProgressArg, RunArgs, SourceArgs};
use crate::plans::{print_or_run, source_options};

/// Which rows of a dataset to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rows {
    /// At most this many (after shuffling).
    pub limit: Option<usize>,
    /// Skip this many first.
    pub skip: usize,
    /// Shuffle with seed 0 first.
    pub shuffle: bool,
}

impl Rows {
    fn source(self) -> SourceArgs {
        SourceArgs {
            format: None,
            limit: self.limit,
            shard: None,
            skip: self.skip,
            shuffle: self.shuffle,
            batch_size: 256,
            seed: 0,
        }
    }
}

/// Fit a patch PCA (global latent scale) on every row of `input`.
pub fn fit_pca(
    input: &str,
    image_size: usize,
    patch: usize,
    channels: u8,
    out: &Path,
    run: &RunArgs,
) -> Result<()> {
    let job = ldae_jobs::pca_fit::PcaFitJob {
        input: input.to_string(),
        source: source_options(&Rows::default().source())?,
        image_size,
        patch,
        channels: Some(channels),
        out: out.to_path_buf(),
        partial: false,
        latent_scale: ldae_operators::pca::LatentScale::Global,
    };
    print_or_run(&job.spec()?, false, run, "pca fit")?;
    Ok(())
}

/// One pre-training run's settings (the rest are `ldae train`'s defaults).
pub struct Pretrain<'a> {
    pub input: &'a str,
    pub pca: &'a Path,
    pub dim: usize,
    pub noise: NoiseArg,
    pub latent_scale: Option<LatentScale>,
    pub preset: &'a str,
    pub epochs: u64,
    pub limit: Option<usize>,
    pub batch_size: usize,
    pub lr: f64,
    pub warmup_epochs: f64,
    pub out: &'a Path,
}

/// Pre-train into `settings.out`, replacing an earlier run there.
pub fn pretrain(settings: &Pretrain, run: &RunArgs) -> Result<()> {
    if settings.out.exists() {
        std::fs::remove_dir_all(settings.out)?;
    }
    let job = ldae_jobs::train::TrainJob {
        input: settings.input.to_string(),
        format: None,
        limit: settings.limit,
        pixel_cache: None,
        pca: settings.pca.to_path_buf(),
        dim: settings.dim,
        latent_scale: settings.latent_scale,
        sigma: match settings.noise {
            NoiseArg::Multi => None,
            NoiseArg::Single => Some(0.57735),
        },
        augment: false,
        train: TrainSinkConfig {
            out: settings.out.to_path_buf(),
            preset: settings.preset.to_string(),
            width: None,
            depth: None,
            heads: None,
            epochs: settings.epochs,
            batch_size: settings.batch_size,
            lr: settings.lr,
            warmup_epochs: settings.warmup_epochs,
            weight_decay: 0.0,
            grad_clip: None,
            ema: None,
            seed: 0,
            checkpoint_every: 1_000_000,
            max_steps: None,
            device: "cpu".into(),
            precision: None,
            resume: false,
        },
    };
    super::train::run_spec(&job.spec()?, PathBuf::new(), run)
}

/// Features of `model` (ldae, random, pixels, pca) from `run_dir` for `rows` of `input`.
pub fn features(
    model: EncoderModel,
    run_dir: &Path,
    blocks: Vec<usize>,
    input: &str,
    rows: Rows,
    out: &Path,
    run: &RunArgs,
) -> Result<PathBuf> {
    let source = rows.source();
    let job = ldae_jobs::features::FeaturesJob {
        input: input.to_string(),
        source: source_options(&source)?,
        out: out.to_path_buf(),
        model,
        checkpoint: Some(run_dir.to_path_buf()),
        blocks,
        t: 10.0,
        pooling: Pooling::Mean,
        ema: false,
        pca: None,
        dim: None,
        seed: source.seed,
        device: "cpu".into(),
        precision: None,
    };
    let run = RunArgs {
        progress: ProgressArg::Off,
        ..run.clone()
    };
    print_or_run(&job.spec()?, false, &run, "features")?;
    Ok(out.to_path_buf())
}

/// Linear (and kNN) probes with the default settings, results written to `out`.
pub fn probe_tables(train: &Path, test: &Path, knn: bool, out: &Path) -> Result<ProbeReport> {
    Ok(probe(&ProbeJob {
        train: train.display().to_string(),
        test: test.display().to_string(),
        column: "features".into(),
        train_where: None,
        test_where: None,
        linear: LinearConfig::default(),
        knn: knn.then(KnnConfig::default),
        device: "cpu".into(),
        out: Some(out.to_path_buf()),
    })?)
}
