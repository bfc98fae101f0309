//! The training run folder, one place for its format:
//!
//! ```text
//! RUN_DIR/config.json               the run's settings (TrainConfig), written when it starts
//! RUN_DIR/spec.json                 the pipeline it runs (`ldae train --resume` runs it again)
//! RUN_DIR/checkpoint/model.safetensors      weights, named after the module tree
//! RUN_DIR/checkpoint/ema.safetensors        their exponential moving average (with --ema)
//! RUN_DIR/checkpoint/optimizer.safetensors  AdamW moments
//! RUN_DIR/checkpoint/state.json     step, epoch, batch in epoch
//! RUN_DIR/metrics.parquet           one row per step
//! RUN_DIR/probe-*.json              probe reports written into the run
//! ```
//!
//! and the loaders every consumer (features, denoise, export, resume) reads it with.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use ldae_operators::pca::candle_err;
pub use ldae_pipeline::atomic_file::{read_json, write_json};
use ldae_pipeline::{Error, Result};

use crate::denoiser::{initialise, Denoiser, DenoiserConfig, Precision, Preset};
use crate::pooling::Pooling;
use crate::train::optimizer::AdamWConfig;
use ldae_operators::noise::NoiseSchedule;
use ldae_operators::pca::LatentScale;

/// Everything that defines a training run; saved as `RUN_DIR/config.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    /// The dataset (path or `synthetic:N`).
    pub input: String,
    /// Dataset kind, when given.
    pub format: Option<String>,
    /// Rows of the dataset used (`--limit`).
    pub limit: Option<usize>,
    /// Rows in one epoch.
    pub rows_per_epoch: usize,
    /// Decoded-pixel cache (a Parquet table of u8 pixels) read instead of `input` when set.
    #[serde(default)]
    pub pixel_cache: Option<PathBuf>,
    /// The PCA model file.
    pub pca: PathBuf,
    /// Latent dimension d.
    pub dim: usize,
    /// Latent scale of the noise.
    pub latent_scale: LatentScale,
    /// Noise schedule.
    pub noise: NoiseSchedule,
    /// Preset the sizes came from.
    pub preset: Preset,
    /// Network sizes.
    pub model: DenoiserConfig,
    /// Epochs to train.
    pub epochs: u64,
    /// Rows per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warmup length, in epochs.
    pub warmup_epochs: f64,
    /// AdamW settings (lr is set by the schedule).
    pub adamw: AdamWConfig,
    /// Clip the global gradient norm to this value.
    pub grad_clip: Option<f64>,
    /// Keep an exponential moving average of the weights with this decay.
    pub ema: Option<f64>,
    /// Random-resized-crop and flip.
    pub augment: bool,
    /// Run seed.
    pub seed: u64,
    /// Checkpoint every this many steps (and at the end).
    pub checkpoint_every: u64,
    /// What `ldae features` reads by default (absent in runs written before it existed).
    #[serde(default)]
    pub features: FeatureDefaults,
    /// The time budget `epochs` is chosen from, and the choice once made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_budget: Option<crate::train::budget::TimeBudget>,
}

impl TrainConfig {
    /// Steps in one epoch.
    pub fn steps_per_epoch(&self) -> u64 {
        self.rows_per_epoch.div_ceil(self.batch_size.max(1)) as u64
    }
}

/// The feature settings a training run recommends, recorded in its `config.json`:
/// `ldae features --checkpoint RUN` uses each one its flags leave unset, so a recipe's probe
/// protocol travels with its checkpoint.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FeatureDefaults {
    /// Block whose tokens are the features, 1 = the first (absent: the last encoder block).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub block: Option<usize>,
    /// Timestep fed to the network with the clean image.
    pub t: f32,
    /// How tokens become a feature.
    pub pooling: Pooling,
    /// Read the EMA weights (the run must keep them).
    pub ema: bool,
}

impl Default for FeatureDefaults {
    fn default() -> Self {
        FeatureDefaults {
            block: None,
            t: default_t(),
            pooling: Pooling::Mean,
            ema: false,
        }
    }
}

/// The timestep `ldae features` feeds by default.
pub fn default_t() -> f32 {
    10.0
}

/// The run's settings.
pub const CONFIG: &str = "config.json";
/// The checkpoint folder (replaced as a whole, by rename, at every save).
pub const CHECKPOINT: &str = "checkpoint";
/// The weights, inside the checkpoint.
pub const WEIGHTS: &str = "model.safetensors";
/// The EMA weights, inside the checkpoint.
pub const EMA_WEIGHTS: &str = "ema.safetensors";

/// The weights file of the run in `run_dir`: the EMA weights or the trained ones.
pub fn weights_path(run_dir: &Path, ema: bool) -> PathBuf {
    run_dir
        .join(CHECKPOINT)
        .join(if ema { EMA_WEIGHTS } else { WEIGHTS })
}

/// The probe reports written into the run (`probe-*.json`), sorted by name.
pub fn probe_reports(run_dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("probe-") && n.ends_with(".json"))
        })
        .collect();
    found.sort();
    found
}

/// The tensors of the checkpoint file `path`; an error names the file.
pub fn load_tensors(path: &Path, device: &Device) -> Result<HashMap<String, Tensor>> {
    if !path.exists() {
        return Err(Error::corrupt(path, "missing from the checkpoint"));
    }
    candle_core::safetensors::load(path, device).map_err(|e| {
        Error::external(
            format!("{}: not a readable checkpoint file", path.display()),
            e,
        )
    })
}

/// Write `tensors` to the checkpoint file `path`; an error (a full disk, say) names the file.
pub fn save_tensors(tensors: &HashMap<String, Tensor>, path: &Path) -> Result<()> {
    candle_core::safetensors::save(tensors, path)
        .map_err(|e| Error::external(format!("{}: cannot write", path.display()), e))
}

/// Load a trained network for inference (weights as plain tensors, so no gradient is tracked):
/// the run's config and the denoiser from `run_dir/checkpoint`, with the EMA weights when
/// `ema` is set (an error if the run kept none), computing in `precision`.
pub fn load_trained(
    run_dir: &Path,
    device: &Device,
    ema: bool,
    precision: Precision,
) -> Result<(TrainConfig, Denoiser)> {
    let mut config = read_train_config(run_dir)?;
    config.model.precision = precision;
    let path = weights_path(run_dir, ema);
    if !path.exists() {
        return Err(Error::corrupt(
            path,
            format!(
                "not found{}",
                if ema {
                    " (the run kept no EMA weights: train with --ema)"
                } else {
                    ""
                }
            ),
        ));
    }
    let tensors = load_tensors(&path, device)?;
    let model = Denoiser::new(
        &config.model,
        VarBuilder::from_tensors(tensors, DType::F32, device),
    )
    .map_err(|e| Error::external(format!("{}", path.display()), e))?;
    Ok((config, model))
}

/// The config of the training run in `run_dir`. The `config.json` of a Hugging Face
/// transformers model folder of a family ldae does not import is named as such, instead of
/// failing on a field it lacks.
pub fn read_train_config(run_dir: &Path) -> Result<TrainConfig> {
    let path = run_dir.join(CONFIG);
    read_json(&path).map_err(|e| match transformers_model_type(&path) {
        Some(model_type) => Error::invalid(format!(
            "{}: a Hugging Face transformers model folder of model_type \"{model_type}\", which \
             ldae does not import (it reads {}, and timm folders); a timm copy of the model, \
             if the hub has one (`hf download timm/NAME --local-dir DIR`), may be \
             one it runs: docs/timm.md lists the architectures",
            run_dir.display(),
            crate::vit::transformers::MODEL_TYPES.join(", ")
        )),
        None => e,
    })
}

/// The `model_type` a Hugging Face transformers `config.json` records, if `path` is one.
fn transformers_model_type(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    Some(value.get("model_type")?.as_str()?.to_string())
}

/// The network of the run in `run_dir`: its trained weights, or with `random_seed` the same
/// network randomly initialised with that seed (a baseline). Nothing tracks gradients.
pub fn load_network(
    run_dir: &Path,
    device: &Device,
    ema: bool,
    precision: Precision,
    random_seed: Option<u64>,
) -> Result<(TrainConfig, Denoiser)> {
    let Some(seed) = random_seed else {
        return load_trained(run_dir, device, ema, precision);
    };
    let mut config = read_train_config(run_dir)?;
    config.model.precision = precision;
    let vars = VarMap::new();
    Denoiser::new(
        &config.model,
        VarBuilder::from_varmap(&vars, DType::F32, device),
    )
    .map_err(candle_err)?;
    initialise(&vars, seed).map_err(candle_err)?;
    // Rebuild from plain tensors, so nothing tracks gradients.
    let tensors = vars
        .data()
        .lock()
        .map_err(|_| Error::internal("variable map poisoned"))?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
        .collect();
    let model = Denoiser::new(
        &config.model,
        VarBuilder::from_tensors(tensors, DType::F32, device),
    )
    .map_err(candle_err)?;
    Ok((config, model))
}
