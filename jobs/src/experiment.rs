//! The steps shared by the demo and ablation jobs: fit a PCA, pre-train, extract features,
//! probe, each as the typed job of its command.

use std::path::{Path, PathBuf};

use ldae_datasets::SourceOptions;
use ldae_model::denoiser::Preset;
use ldae_model::encoder::{EncoderModel, FeatureDefaults, Pooling};
use ldae_model::probe::{KnnConfig, LinearConfig};
use ldae_model::train::sink::TrainSinkConfig;
use ldae_operators::pca::LatentScale;
use ldae_pipeline::{ProgressMode, RunOptions};

use crate::features::FeaturesJob;
use crate::pca_fit::PcaFitJob;
use crate::probe::{probe, ProbeJob, ProbeReport};
use crate::spec::{RunSettings, Spec, SpecReport};
use crate::train::{NoiseKind, TrainJob};
use crate::{Error, Result};
use ldae_operators::parquet_sink::ParquetSinkConfig;
use ldae_pipeline::atomic_file::read_json;
use ldae_pipeline::SinkSpec;

/// Where a multi-step job's lines for the person running it go.
pub type Say<'a> = &'a dyn Fn(&str);

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
    /// The source options of these rows.
    pub fn source(self) -> SourceOptions {
        SourceOptions {
            limit: self.limit,
            skip: self.skip,
            shuffle: self.shuffle,
            ..SourceOptions::default()
        }
    }
}

/// Run `spec` with `options`, passing the sink's lines to `say`.
pub fn run_spec(spec: &Spec, options: &RunOptions, say: Say<'_>) -> Result<SpecReport> {
    crate::spec::run(
        spec,
        &RunSettings {
            options: options.clone(),
            on_message: Some(say),
            ..RunSettings::default()
        },
    )
}

/// Fit a patch PCA (global latent scale) on every row of `input`.
pub fn fit_pca(
    input: &str,
    image_size: usize,
    patch: usize,
    channels: u8,
    out: &Path,
    options: &RunOptions,
    say: Say<'_>,
) -> Result<()> {
    let job = PcaFitJob {
        input: input.to_string(),
        source: Rows::default().source(),
        image_size,
        patch,
        channels: Some(channels),
        out: out.to_path_buf(),
        partial: false,
        latent_scale: LatentScale::Global,
    };
    run_spec(&job.spec()?, options, say)?;
    Ok(())
}

/// One pre-training run's settings (the rest are `ldae train`'s defaults). Serialisable, so
/// a caller can record exactly what a run was trained with.
#[derive(serde::Serialize)]
pub struct Pretrain<'a> {
    /// The dataset.
    pub input: &'a str,
    /// The PCA model.
    pub pca: &'a Path,
    /// Latent dimension d.
    pub dim: usize,
    /// Multi- or single-level noise.
    pub noise: NoiseKind,
    /// Latent scale (default: the model's).
    pub latent_scale: Option<LatentScale>,
    /// Network preset.
    pub preset: Preset,
    /// Epochs.
    pub epochs: u64,
    /// Images per epoch (a shuffled subset); default all.
    pub limit: Option<usize>,
    /// Rows per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Warmup, in epochs.
    pub warmup_epochs: f64,
    /// Run seed (initialisation, shuffling, noise).
    pub seed: u64,
    /// The run folder.
    pub out: &'a Path,
    /// The recipe's training extras (augmentation, EMA, weight decay, pixel cache).
    pub extras: &'a TrainExtras,
}

/// What a pre-training adds to the plain loop; the default is none of it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TrainExtras {
    /// Random-resized crop and flip.
    pub augment: bool,
    /// EMA decay of the weights; the run's features then read the EMA weights.
    pub ema: Option<f64>,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Decode the training images once into this pixel cache (built on first use, shared by
    /// every run of the same images and size).
    pub pixel_cache: Option<PathBuf>,
}

/// Decode `job`'s input into its pixel cache unless a complete one is there (a cache is
/// complete once its `_SUCCESS` marker is written). Returns the decoding's report, if it ran.
pub fn build_pixel_cache(
    job: &TrainJob,
    options: &RunOptions,
    say: Say<'_>,
) -> Result<Option<SpecReport>> {
    let Some(dir) = &job.pixel_cache else {
        return Ok(None);
    };
    // A cache of other images (another dataset, size or channels) must not stand in for this
    // job's, complete or not: it would train on them without a word.
    let complete = dir.join("_SUCCESS").exists();
    let record = if complete {
        dir.join("_manifest.json")
    } else {
        dir.join("_ldae").join("job.json")
    };
    // (A record without the job, which no ldae writes, cannot be checked.)
    let recorded = match record.exists() {
        true => Some(read_json::<serde_json::Value>(&record)?),
        false => None,
    };
    let recorded = recorded.filter(|r| !r["job"].is_null());
    if let Some(recorded) = &recorded {
        if let Some(difference) = job.pixel_cache_mismatch(&recorded["job"])? {
            let what = if complete { "" } else { "unfinished " };
            return Err(Error::conflict(
                dir,
                format!(
                    "this {what}pixel cache holds other images than --input's ({difference}): \
                     choose another --pixel-cache, or delete it to have it rebuilt"
                ),
            ));
        }
    }
    // Checked before the spec is made: making it lists the dataset.
    if complete {
        say(&format!("using the pixel cache in {}", dir.display()));
        if recorded.as_ref().is_some_and(stores_pixels_as_lists) {
            say(
                "  (written by an older ldae, its pixels stored as lists: delete it to have it \
                 rebuilt with pixels stored as bytes, which read 2-6x faster)",
            );
        }
        return Ok(None);
    }
    let Some(mut cache) = job.pixel_cache_spec()? else {
        return Ok(None);
    };
    say(&format!(
        "decoding {} once into the pixel cache {}",
        job.input,
        dir.display()
    ));
    match run_spec(&cache, options, say) {
        // An unfinished cache of the same images (checked above) begun by another version of
        // ldae, whose job differs in a setting: nothing is lost by starting it over. A live
        // process still writing it refuses this too.
        Err(e) if e.is_conflict() && recorded.is_some() => {
            say(&format!(
                "starting the unfinished pixel cache over ({})",
                e.chain()
            ));
            let mut sink = cache
                .sink
                .get::<ParquetSinkConfig>()
                .cloned()
                .ok_or_else(|| Error::internal("the pixel cache's sink is not a parquet sink"))?;
            sink.overwrite = true;
            cache.sink = SinkSpec::new(sink);
            run_spec(&cache, options, say).map(Some)
        }
        done => done.map(Some),
    }
}

/// Whether a table's manifest records its pixels stored as a tensor (lists), as pixel caches
/// written before 2026-12-07 do (the manifest then names no storage for them).
fn stores_pixels_as_lists(manifest: &serde_json::Value) -> bool {
    let columns = manifest["schema"].as_array().into_iter().flatten();
    columns
        .filter(|c| c["name"] == ldae_pipeline::columns::PIXELS)
        .any(|c| c["type"] == "tensor" && c["storage"].is_null())
}

/// Pre-train into `settings.out`, replacing an earlier run there.
pub fn pretrain(settings: &Pretrain, options: &RunOptions, say: Say<'_>) -> Result<()> {
    let extras = settings.extras;
    if settings.out.exists() {
        std::fs::remove_dir_all(settings.out).map_err(|e| crate::Error::io(settings.out, e))?;
    }
    let job = TrainJob {
        input: settings.input.to_string(),
        format: None,
        split: None,
        limit: settings.limit,
        pixel_cache: extras.pixel_cache.clone(),
        pca: settings.pca.to_path_buf(),
        dim: settings.dim,
        latent_scale: settings.latent_scale,
        sigma: settings.noise.sigma(),
        augment: extras.augment,
        train: TrainSinkConfig {
            out: settings.out.to_path_buf(),
            preset: settings.preset,
            width: None,
            depth: None,
            heads: None,
            conditioning: Default::default(),
            features: FeatureDefaults {
                ema: extras.ema.is_some(),
                ..FeatureDefaults::default()
            },
            epochs: settings.epochs,
            batch_size: settings.batch_size,
            lr: settings.lr,
            warmup_epochs: settings.warmup_epochs,
            weight_decay: extras.weight_decay,
            grad_clip: None,
            ema: extras.ema,
            seed: settings.seed,
            checkpoint_every: 1_000_000,
            max_steps: None,
            time_budget_s: None,
            device: ldae_operators::device::DeviceName::Cpu,
            precision: None,
            resume: false,
        },
    };
    build_pixel_cache(&job, options, say)?;
    let mut options = options.clone();
    options.threads = 1;
    run_spec(&job.spec()?, &options, say)?;
    Ok(())
}

/// Which tokens become the features of an experiment's run.
#[derive(Debug, Clone, Default)]
pub struct FeatureRead {
    /// Blocks to read after (empty: the run's recorded block, else the encoder's last).
    pub blocks: Vec<usize>,
    /// How tokens are pooled (`None`: the run's recorded pooling, else mean).
    pub pooling: Option<Pooling>,
}

/// Features of `model` from `run_dir`, read as `read` says, for `rows` of `input`, into the
/// table `out`.
pub fn features(
    model: EncoderModel,
    run_dir: &Path,
    read: &FeatureRead,
    input: &str,
    rows: Rows,
    out: &Path,
    options: &RunOptions,
) -> Result<PathBuf> {
    let job = FeaturesJob {
        input: input.to_string(),
        source: rows.source(),
        out: out.to_path_buf(),
        // A fresh table each time: the checkpoint of an experiment is retrained in place.
        write: crate::pca_fit::TableWrite {
            overwrite: true,
            ..Default::default()
        },
        model,
        checkpoint: Some(run_dir.to_path_buf()),
        blocks: read.blocks.clone(),
        t: None,
        pooling: read.pooling,
        ema: None,
        pca: None,
        dim: None,
        seed: 0,
        device: ldae_operators::device::DeviceName::Cpu,
        precision: None,
        preprocess: Default::default(),
    };
    let options = RunOptions {
        progress: ProgressMode::Off,
        ..options.clone()
    };
    run_spec(&job.spec()?, &options, &|_| {})?;
    Ok(out.to_path_buf())
}

/// Linear (and kNN) probes with the default settings, results written to `out`.
pub fn probe_tables(train: &Path, test: &Path, knn: bool, out: &Path) -> Result<ProbeReport> {
    probe(&ProbeJob {
        train: train.display().to_string(),
        test: test.display().to_string(),
        column: Some("features".into()),
        label: "label".into(),
        train_where: None,
        test_where: None,
        linear: LinearConfig::default(),
        knn: knn.then(KnnConfig::default),
        device: ldae_operators::device::DeviceName::Cpu,
        out: Some(out.to_path_buf()),
        allow_incomplete: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pixel_cache_stored_as_lists_is_told_apart() {
        let manifest = |pixels: serde_json::Value| {
            serde_json::json!({ "schema": [
                { "name": "id", "type": "Utf8", "nullable": false },
                pixels,
            ]})
        };
        let tensor = serde_json::json!({
            "name": "pixels", "type": "tensor", "element": "UInt8", "shape": [2, 2, 3],
        });
        let mut bytes = tensor.clone();
        bytes["storage"] = "bytes".into();
        assert!(stores_pixels_as_lists(&manifest(tensor)));
        assert!(!stores_pixels_as_lists(&manifest(bytes)));
        assert!(!stores_pixels_as_lists(&serde_json::json!({})));
    }
}
