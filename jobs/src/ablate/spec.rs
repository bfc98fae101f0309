//! The ablation spec: what to sweep, and the settings it plans to pre-train.

use std::path::PathBuf;

use ldae_model::denoiser::Preset;
use ldae_model::encoder::Pooling;
use ldae_operators::pca::LatentScale;
use serde::{Deserialize, Serialize};

use crate::train::NoiseKind;

/// One pre-training setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setting {
    /// Latent dimension d.
    pub dim: usize,
    /// `multi` or `single`.
    pub noise: NoiseKind,
    /// `none`, `global` or `whiten`.
    pub latent_scale: LatentScale,
}

fn default_base() -> Setting {
    Setting {
        dim: 16,
        noise: NoiseKind::Multi,
        latent_scale: LatentScale::Global,
    }
}

/// The ablation spec.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AblateSpec {
    /// Images to fit the PCA on, pre-train on and fit the probes on.
    pub train: String,
    /// Held-out images the probes are scored on.
    pub test: String,
    /// Output folder (relative to the spec file).
    pub out: PathBuf,
    #[serde(default = "d32")]
    pub image_size: usize,
    #[serde(default = "d4")]
    pub patch: usize,
    /// 3 (RGB) or 1; default 3.
    pub channels: Option<u8>,
    #[serde(default)]
    pub preset: Preset,
    #[serde(default = "one")]
    pub epochs: u64,
    /// Pre-training images per epoch (a shuffled subset); default all.
    pub limit: Option<usize>,
    #[serde(default = "d128")]
    pub batch_size: usize,
    #[serde(default = "lr")]
    pub lr: f64,
    #[serde(default = "warmup")]
    pub warmup_epochs: f64,
    /// Training rows the probes are fitted on (a shuffled subset); default all.
    pub probe_train_rows: Option<usize>,
    /// Test rows scored; default all.
    pub probe_test_rows: Option<usize>,
    #[serde(default = "yes")]
    pub knn: bool,
    /// The setting every sweep varies one thing of.
    #[serde(default = "default_base")]
    pub base: Setting,
    /// Latent dimensions to try (include D for the pixel-space DAE).
    #[serde(default = "dims")]
    pub dims: Vec<usize>,
    /// Noise schedules to try.
    #[serde(default = "noises")]
    pub noises: Vec<NoiseKind>,
    /// Latent scales to try.
    #[serde(default = "scales")]
    pub latent_scales: Vec<LatentScale>,
    /// Blocks to probe on the base run (default: every block).
    pub blocks: Option<Vec<usize>>,
    /// Seeds: every setting is pre-trained (and probed) once per seed; the report shows the
    /// mean and the spread. Default `[0]`.
    #[serde(default = "seeds")]
    pub seeds: Vec<u64>,
    /// How the probed tokens are pooled: `mean` (default), `grid2`, `grid4` or `none`.
    #[serde(default)]
    pub pooling: Pooling,
    /// Random-resized crop and flip during pre-training (default false).
    #[serde(default)]
    pub augment: bool,
    /// EMA decay of the weights (default none); the probes then read the EMA weights.
    pub ema: Option<f64>,
    /// AdamW weight decay (default 0).
    #[serde(default)]
    pub weight_decay: f64,
    /// Decode `train` once into `OUT/pixel-cache` and pre-train every run from it (default
    /// true; the same pixels, so the same results, only faster).
    #[serde(default = "yes")]
    pub pixel_cache: bool,
}

fn seeds() -> Vec<u64> {
    vec![0]
}

fn d32() -> usize {
    32
}
fn d4() -> usize {
    4
}
fn d128() -> usize {
    128
}
fn one() -> u64 {
    1
}
fn lr() -> f64 {
    1e-3
}
fn warmup() -> f64 {
    0.2
}
fn yes() -> bool {
    true
}
fn dims() -> Vec<usize> {
    vec![8, 16, 48]
}
fn noises() -> Vec<NoiseKind> {
    vec![NoiseKind::Multi, NoiseKind::Single]
}
fn scales() -> Vec<LatentScale> {
    vec![LatentScale::None, LatentScale::Global, LatentScale::Whiten]
}

/// A setting in words, as the report names it.
pub(crate) fn label(s: &Setting) -> String {
    format!("d={} {} {}", s.dim, s.noise, s.latent_scale)
}

/// The settings to pre-train: the base, then each sweep's values that differ from it.
pub(crate) fn plan_settings(spec: &AblateSpec) -> Vec<(&'static str, Setting)> {
    let mut settings: Vec<(&'static str, Setting)> = vec![("base", spec.base.clone())];
    let mut add = |sweep: &'static str, s: Setting| {
        if s != spec.base {
            settings.push((sweep, s));
        }
    };
    for &dim in &spec.dims {
        add(
            "latent dim d",
            Setting {
                dim,
                ..spec.base.clone()
            },
        );
    }
    for noise in &spec.noises {
        add(
            "noise",
            Setting {
                noise: *noise,
                ..spec.base.clone()
            },
        );
    }
    for scale in &spec.latent_scales {
        add(
            "latent scale",
            Setting {
                latent_scale: *scale,
                ..spec.base.clone()
            },
        );
    }
    settings
}
