//! The training job (`ldae train`): images -> patches -> latent noise -> the `train` sink, one
//! pass per epoch.

use std::path::{Path, PathBuf};

use ldae_datasets::parquet_table::{split_settings, ParquetFormat};
use ldae_datasets::{Format, FormatConfig, SourceOptions};
use ldae_model::train::sink::TrainSinkConfig;
use ldae_operators::augment::AugmentConfig;
use ldae_operators::decode::DecodeConfig;
use ldae_operators::noise::NoiseConfig;
use ldae_operators::normalize::NormalizeConfig;
use ldae_operators::parquet_sink::ParquetSinkConfig;
use ldae_operators::pca::{LatentScale, PcaModel};
use ldae_pipeline::tensor_bytes::TensorStorage;
use ldae_pipeline::Error;

use crate::pca_fit::{absolute, patch_front_decoding};
use crate::source::SourceSpec;
use crate::spec::Spec;
use crate::Result;
use ldae_pipeline::{OperatorSpec, SinkSpec};

pub use ldae_operators::noise::{NoiseKind, SINGLE_SIGMA};

/// Pre-train the l-DAE denoiser on a dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainJob {
    /// Dataset path or `synthetic:N`.
    pub input: String,
    /// Dataset kind, when it cannot be told from the path.
    pub format: Option<Format>,
    /// The split of a Hugging Face Parquet dataset to train on.
    pub split: Option<String>,
    /// Train on the first N rows only.
    pub limit: Option<usize>,
    /// Read a decoded-pixel cache (built from `input` by [`TrainJob::pixel_cache_spec`]).
    pub pixel_cache: Option<PathBuf>,
    /// The PCA model.
    pub pca: PathBuf,
    /// Latent dimension d the noise lives in.
    pub dim: usize,
    /// Latent scale (default: the PCA model's).
    pub latent_scale: Option<LatentScale>,
    /// One noise level (single-level noise); None: multi-level.
    pub sigma: Option<f32>,
    /// Random-resized-crop and flip.
    pub augment: bool,
    /// The training settings (network, optimiser, epochs, run folder).
    pub train: TrainSinkConfig,
}

impl TrainJob {
    /// The pipeline this job runs.
    pub fn spec(&self) -> Result<Spec> {
        let pca = absolute(&self.pca);
        let model = PcaModel::load(&pca)?;
        let m = &model.meta;
        if self.dim == 0 || self.dim > model.dim() {
            return Err(Error::invalid(format!(
                "--dim {} must be between 1 and D = {}",
                self.dim,
                model.dim()
            )));
        }
        // The pixel cache holds the split's rows already.
        let (input, format, split) = match &self.pixel_cache {
            Some(dir) => (
                dir.display().to_string(),
                Some(ParquetFormat::NAME.parse()?),
                None,
            ),
            None => (self.input.clone(), self.format, self.split.as_deref()),
        };
        let source = SourceSpec::absolute(
            &input,
            SourceOptions {
                format,
                formats: split_settings(split),
                limit: self.limit,
                batch_size: Some(self.train.batch_size),
                ..SourceOptions::default()
            },
        );
        let decode = DecodeConfig {
            image_size: m.geometry.size as u32,
            channels: m.geometry.channels as u8,
            augment: self.augment.then(|| AugmentConfig {
                seed: self.train.seed,
                ..AugmentConfig::default()
            }),
            ..DecodeConfig::default()
        };
        let normalize = NormalizeConfig::from(&m.normalization);
        let mut operators = patch_front_decoding(decode, m.geometry.patch, normalize)?;
        operators.push(OperatorSpec::new(NoiseConfig {
            pca: pca.clone(),
            dim: self.dim,
            latent_scale: Some(self.latent_scale.unwrap_or(m.latent_scale)),
            sigma: self.sigma,
            seed: self.train.seed,
        }));
        let mut train = self.train.clone();
        train.out = absolute(&train.out);
        Ok(Spec {
            source,
            operators,
            sink: SinkSpec::new(train.clone()),
        })
    }

    /// The pipeline that decodes `input` once into the pixel cache (id, label, u8 pixels at
    /// the PCA's image size); row ids are the dataset's, so noise and shuffles are the same as
    /// when training from the dataset.
    ///
    /// A cache larger than the decoded row groups a read keeps in memory is written in a
    /// shuffled order (seed 0, whatever the run's): its reads are shuffled in windows of row
    /// groups, and row groups of a dataset in class order would each hold one class, so a
    /// window's batches would hold a few; in a shuffled cache each group is a random sample.
    pub fn pixel_cache_spec(&self) -> Result<Option<Spec>> {
        let Some(dir) = &self.pixel_cache else {
            return Ok(None);
        };
        let (source, decode) = self.pixel_cache_steps()?;
        let rows = source.open(Path::new("."))?.total_rows().unwrap_or(0) as usize;
        let row_bytes = (decode.image_size as usize).pow(2) * decode.channels as usize;
        let bytes = rows.saturating_mul(row_bytes);
        let shuffle = bytes > ldae_datasets::parquet_table::DECODED_GROUPS_BUDGET;
        let options = SourceOptions {
            shuffle,
            ..source.options
        };
        Ok(Some(Spec {
            source: SourceSpec::absolute(&source.input, options),
            operators: vec![OperatorSpec::new(decode)],
            // Stored as bytes: the cache is read by ldae alone, 8x faster than as lists.
            sink: SinkSpec::new(ParquetSinkConfig {
                out: absolute(dir),
                tensor_storage: TensorStorage::Bytes,
                ..ParquetSinkConfig::default()
            }),
        }))
    }

    /// The pixel cache's source (in the dataset's order) and decode step.
    fn pixel_cache_steps(&self) -> Result<(SourceSpec, DecodeConfig)> {
        let model = PcaModel::load(&absolute(&self.pca))?;
        let g = &model.meta.geometry;
        let options = SourceOptions {
            format: self.format,
            formats: split_settings(self.split.as_deref()),
            ..SourceOptions::default()
        };
        let decode = DecodeConfig {
            image_size: g.size as u32,
            channels: g.channels as u8,
            ..DecodeConfig::default()
        };
        Ok((SourceSpec::absolute(&self.input, options), decode))
    }

    /// Why a complete pixel cache whose manifest records `recorded` (its job) cannot serve this
    /// job, or `None` when it can: it must have been decoded from the same dataset (input,
    /// format, split) at the same size and channels. The row order and where the cache is do
    /// not matter, and settings an older ldae did not record are not compared.
    pub fn pixel_cache_mismatch(&self, recorded: &serde_json::Value) -> Result<Option<String>> {
        let (source, decode) = self.pixel_cache_steps()?;
        let operators = vec![OperatorSpec::new(decode)];
        let source = serde_json::to_value(&source).map_err(|e| Error::external("spec", e))?;
        let operators = serde_json::to_value(&operators).map_err(|e| Error::external("spec", e))?;
        let null = serde_json::Value::Null;
        let mut keys: Vec<&String> = source
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
            .collect();
        if let Some(o) = recorded["source"].as_object() {
            keys.extend(o.keys());
        }
        keys.sort();
        keys.dedup();
        for key in keys {
            if ["shuffle", "seed", "batch_size"].contains(&key.as_str()) {
                continue;
            }
            let (was, is) = (
                recorded["source"].get(key).unwrap_or(&null),
                source.get(key).unwrap_or(&null),
            );
            if was != is {
                return Ok(Some(format!("source {key}: {was}, this run's {is}")));
            }
        }
        let (was, is) = (recorded["operator"].as_array(), operators.as_array());
        let (Some(was), Some(is)) = (was, is) else {
            return Ok(Some("no decode step recorded".into()));
        };
        if was.len() != is.len() {
            return Ok(Some(format!(
                "{} steps, this run's {}",
                was.len(),
                is.len()
            )));
        }
        for (w, i) in was.iter().zip(is) {
            let Some(i) = i.as_object() else { continue };
            for (key, value) in i {
                if let Some(recorded) = w.get(key) {
                    if recorded != value {
                        return Ok(Some(format!(
                            "decode {key}: {recorded}, this run's {value}"
                        )));
                    }
                }
            }
        }
        Ok(None)
    }
}

/// The spec a run folder was trained with, set to resume it in `run_dir`; `adjust` changes
/// what may differ between sessions of one run (where it stops, where it computes).
pub fn resume_spec(
    run_dir: &std::path::Path,
    adjust: impl FnOnce(&mut TrainSinkConfig),
) -> Result<(PathBuf, Spec)> {
    let (base, value) = ldae_model::train::sink::saved_spec(run_dir)?;
    let saved = run_dir.join("spec.json");
    let mut spec: Spec = serde_json::from_value(value)
        .map_err(|e| Error::external(saved.display().to_string(), e))?;
    let mut train = spec
        .sink
        .get::<TrainSinkConfig>()
        .cloned()
        .ok_or_else(|| Error::corrupt(&saved, "its sink is not a train sink"))?;
    train.resume = true;
    // The folder being resumed, not the one the spec was first written for: a run copied or
    // moved elsewhere (or written by ldae.torch.save_run) resumes in place.
    train.out = crate::pca_fit::absolute(run_dir);
    adjust(&mut train);
    spec.sink = SinkSpec::new(train);
    Ok((base, spec))
}
