//! Pipelines described as TOML (`ldae run SPEC.toml`): a source, operators in order, a sink.
//! The format is documented in docs/pipeline-spec.md; every table maps onto the operator's own
//! config struct, so a spec reads as the picture of the job.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use ldae_datasets::SourceOptions;
use ldae_operators::decode::{Decode, DecodeConfig};
use ldae_operators::device::parse_device;
use ldae_operators::normalize::{Normalization, Normalize};
use ldae_operators::parquet_sink::{ParquetSink, ParquetSinkConfig};
use ldae_operators::patchify::Patchify;
use ldae_operators::pca::{
    LatentScale, PcaFit, PcaFitConfig, PcaInverse, PcaMeta, PcaModel, PcaProject,
};
use ldae_pipeline::{Operator, Pipeline, Sink};

use crate::cli::RunArgs;
use crate::plans::{open_source, print_report, run_options};

/// A whole pipeline.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Where rows come from.
    pub source: SourceSpec,
    /// Operators, applied in order.
    #[serde(default, rename = "operator")]
    pub operators: Vec<OperatorSpec>,
    /// Where rows go.
    pub sink: SinkSpec,
}

/// `[source]`: a dataset path (or `synthetic:N`) and the source options.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceSpec {
    /// Dataset path or `synthetic:N`; relative paths are relative to the spec file.
    pub input: String,
    /// Source options (format, limit, shard, shuffle, seed, batch_size, ...).
    #[serde(flatten)]
    pub options: SourceOptions,
}

/// `[[operator]]` tables, told apart by `kind`.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum OperatorSpec {
    /// Decode + crop/resize (+ augment): `image_size`, `channels`, `max_pixels`, `[augment]`.
    Decode(DecodeConfig),
    /// Normalise u8 pixels to floats: `mode = "minus_one_one"` (default) or `"mean_std"` with
    /// per-channel `mean` and `std` of `x / 255`.
    Normalize {
        /// `minus_one_one` or `mean_std`.
        #[serde(default = "minus_one_one")]
        mode: String,
        /// Per-channel means (mean_std only).
        #[serde(default)]
        mean: Vec<f32>,
        /// Per-channel standard deviations (mean_std only).
        #[serde(default)]
        std: Vec<f32>,
    },
    /// Patchify: `patch`.
    Patchify {
        /// Patch side.
        patch: usize,
    },
    /// Project patches to latents: `pca`, `dim`, optional `latent_scale`, `device`.
    PcaProject {
        /// PCA model file.
        pca: PathBuf,
        /// Latent dimension.
        dim: usize,
        /// Latent scale (default: the model's).
        latent_scale: Option<LatentScale>,
        /// Compute device.
        #[serde(default = "cpu")]
        device: String,
    },
    /// Map latents back to patches: `pca`, `dim`, optional `latent_scale`, `device`.
    PcaInverse {
        /// PCA model file.
        pca: PathBuf,
        /// Latent dimension.
        dim: usize,
        /// Latent scale (default: the model's).
        latent_scale: Option<LatentScale>,
        /// Compute device.
        #[serde(default = "cpu")]
        device: String,
    },
}

fn minus_one_one() -> String {
    "minus_one_one".into()
}

fn cpu() -> String {
    "cpu".into()
}

/// `[sink]`, told apart by `kind`.
#[derive(Debug, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SinkSpec {
    /// A Parquet folder: `out`, `rows_per_file`, `row_group_size`, `zstd_level`.
    Parquet(ParquetSinkConfig),
    /// Fit a PCA: `out`, `partial`, `latent_scale`. Geometry and normalisation are taken from
    /// the spec's decode, normalize and patchify operators.
    PcaFit {
        /// Output .safetensors file.
        out: PathBuf,
        /// Write partial statistics.
        #[serde(default)]
        partial: bool,
        /// Default latent scale recorded in the model.
        #[serde(default)]
        latent_scale: LatentScale,
    },
}

/// Resolve a path in a spec relative to the spec's folder.
fn relative(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Parse and run the spec at `path`.
pub fn run_file(path: &Path, run: &RunArgs) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let spec: Spec =
        toml::from_str(&text).with_context(|| format!("{}: invalid spec", path.display()))?;
    let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let input = if spec.source.input.starts_with("synthetic:") {
        spec.source.input.clone()
    } else {
        relative(&base, Path::new(&spec.source.input))
            .display()
            .to_string()
    };
    let source = open_source(&input, &spec.source.options)?;

    let mut ops: Vec<Arc<dyn Operator>> = Vec::new();
    let (mut image_size, mut channels, mut patch, mut normalization) = (None, None, None, None);
    for op in &spec.operators {
        ops.push(match op {
            OperatorSpec::Decode(c) => {
                image_size = Some(c.image_size as usize);
                channels = Some(c.channels as usize);
                Arc::new(Decode::new(c.clone())?)
            }
            OperatorSpec::Normalize { mode, mean, std } => {
                let n = match mode.as_str() {
                    "minus_one_one" => Normalization::MinusOneOne,
                    "mean_std" => Normalization::MeanStd {
                        mean: mean.clone(),
                        std: std.clone(),
                    },
                    other => bail!(
                        "{}: normalize mode '{other}': expected minus_one_one or mean_std",
                        path.display()
                    ),
                };
                normalization = Some(n.clone());
                Arc::new(Normalize::new(n))
            }
            OperatorSpec::Patchify { patch: p } => {
                patch = Some(*p);
                Arc::new(Patchify::new(*p))
            }
            OperatorSpec::PcaProject {
                pca,
                dim,
                latent_scale,
                device,
            } => {
                let model = PcaModel::load(&relative(&base, pca))?;
                let scale = latent_scale.unwrap_or(model.meta.latent_scale);
                Arc::new(PcaProject::new(
                    &model,
                    *dim,
                    scale,
                    &parse_device(device)?,
                )?)
            }
            OperatorSpec::PcaInverse {
                pca,
                dim,
                latent_scale,
                device,
            } => {
                let model = PcaModel::load(&relative(&base, pca))?;
                let scale = latent_scale.unwrap_or(model.meta.latent_scale);
                Arc::new(PcaInverse::new(
                    &model,
                    *dim,
                    scale,
                    &parse_device(device)?,
                )?)
            }
        });
    }

    let sink: Box<dyn Sink> = match spec.sink {
        SinkSpec::Parquet(mut c) => {
            c.out = relative(&base, &c.out);
            if c.shard.is_none() {
                c.shard = spec.source.options.shard.map(|s| (s.index, s.count));
            }
            let job = serde_json::json!({ "command": "run", "spec": path.display().to_string(), "text": text });
            Box::new(ParquetSink::new(c, job)?)
        }
        SinkSpec::PcaFit {
            out,
            partial,
            latent_scale,
        } => {
            let (Some(image_size), Some(channels), Some(patch)) = (image_size, channels, patch)
            else {
                bail!(
                    "{}: a pca_fit sink needs decode and patchify operators before it",
                    path.display()
                );
            };
            Box::new(PcaFit::new(PcaFitConfig {
                out: relative(&base, &out),
                partial,
                meta: PcaMeta {
                    image_size,
                    patch_size: patch,
                    channels,
                    normalization: normalization.unwrap_or_default(),
                    latent_scale,
                    samples: 0,
                    images: 0,
                    fingerprint: String::new(),
                    input: input.clone(),
                },
            }))
        }
    };

    let mut pipeline = Pipeline::new(source, sink);
    for op in ops {
        pipeline = pipeline.then(op);
    }
    let report = pipeline.run(&run_options(run, "run"))?;
    print_report(&report);
    println!("{}", serde_json::to_string(&report.output)?);
    Ok(())
}
