//! The PCA fit sink: accumulates patch statistics from the stream and, when it ends, writes the
//! model (or, with `partial`, the mergeable statistics for `ldae pca merge`).

use std::path::PathBuf;

use arrow::array::{AsArray, Float32Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, require_tensor};
use ldae_pipeline::{BuildContext, Error, Result, RunSummary, Sink, SinkConfig, SinkJob};

use super::model::{LatentScale, PcaMeta, PcaModel};
use super::stats::PcaStats;
use crate::patchify::PatchGeometry;
use ldae_pipeline::table::write_errors_table;

/// `pca_fit` (sink): accumulates patch statistics and writes the fitted model (or, with
/// `partial`, mergeable statistics for `ldae pca merge`). The image size, patch size, channels
/// and normalisation recorded in the model are read from the incoming schema.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PcaFitConfig {
    /// Output `.safetensors` file (the model, or the partial statistics).
    pub out: PathBuf,
    /// Write mergeable partial statistics instead of a model.
    #[serde(default)]
    pub partial: bool,
    /// Default latent scale recorded in the model.
    #[serde(default)]
    pub latent_scale: LatentScale,
}

impl SinkConfig for PcaFitConfig {
    const KIND: &'static str = "pca_fit";
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn SinkJob>> {
        let mut config = self.clone();
        config.out = ctx.resolve(&config.out);
        let input = match ctx.shard {
            Some(shard) => format!("{} (shard {shard})", ctx.input),
            None => ctx.input.clone(),
        };
        Ok(<dyn SinkJob>::once(Box::new(PcaFit::new(config, input))))
    }
}
ldae_pipeline::register_sink!(PcaFitConfig);

/// The PCA fit sink.
pub struct PcaFit {
    config: PcaFitConfig,
    input: String,
    /// Set when the sink binds to its input schema.
    meta: Option<PcaMeta>,
    stats: PcaStats,
}

impl PcaFit {
    /// A sink fitting the patches it receives; `input` names what they were made of.
    pub fn new(config: PcaFitConfig, input: String) -> Self {
        PcaFit {
            config,
            input,
            meta: None,
            stats: PcaStats::new(0),
        }
    }

    /// Where the errors table of this fit goes: `NAME.errors.parquet` beside the output.
    pub fn errors_path(&self) -> PathBuf {
        self.config.out.with_extension("errors.parquet")
    }

    fn meta(&self) -> Result<PcaMeta> {
        self.meta
            .clone()
            .ok_or_else(|| Error::internal("pca_fit: finished before its schema was checked"))
    }
}

/// A metadata value of `input` that a PCA fit needs, parsed.
fn required<T: std::str::FromStr>(input: &arrow::datatypes::Schema, key: &str) -> Result<T> {
    input
        .metadata()
        .get(key)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            Error::plan(PcaFitConfig::KIND,
                format!(
                    "the patches record no {key}: put decode, patchify and normalize before a pca_fit sink"
                ),
            )
        })
}

impl Sink for PcaFit {
    fn name(&self) -> String {
        PcaFitConfig::KIND.into()
    }

    fn check_schema(&mut self, input: &SchemaRef) -> Result<()> {
        let shape = require_tensor(
            input,
            columns::PATCHES,
            &DataType::Float32,
            PcaFitConfig::KIND,
        )?;
        let image_size: usize = required(input, columns::META_IMAGE_SIZE)?;
        let patch_size: usize = required(input, columns::META_PATCH_SIZE)?;
        let normalization = match input.metadata().get(columns::META_NORMALIZATION) {
            Some(text) => serde_json::from_str(text).map_err(|e| {
                Error::plan(
                    PcaFitConfig::KIND,
                    format!("{}: {e}", columns::META_NORMALIZATION),
                )
            })?,
            None => {
                return Err(Error::plan(
                    PcaFitConfig::KIND,
                    "the patches record no normalisation: put normalize before patchify",
                ))
            }
        };
        let tokens = (image_size / patch_size.max(1)).pow(2);
        if shape.len() != 2 || shape[0] != tokens || shape[1] % (patch_size * patch_size) != 0 {
            return Err(Error::plan(PcaFitConfig::KIND,
                format!("patches are {shape:?}, not {image_size}x{image_size} images in patches of side {patch_size}"),
            ));
        }
        let meta = PcaMeta {
            geometry: PatchGeometry {
                size: image_size,
                patch: patch_size,
                channels: shape[1] / (patch_size * patch_size),
            },
            normalization,
            latent_scale: self.config.latent_scale,
            samples: 0,
            images: 0,
            fingerprint: String::new(),
            input: self.input.clone(),
        };
        self.stats = PcaStats::new(meta.patch_dim());
        self.meta = Some(meta);
        Ok(())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let values: Float32Array = columns::tensor_values(batch, columns::PATCHES)?;
        self.stats.add(values.values())?;
        if let Some(ids) = batch.column_by_name(columns::ID) {
            for id in ids.as_string::<i32>().iter().flatten() {
                self.stats.add_image(id);
            }
        }
        Ok(())
    }

    fn finish(&mut self, summary: &RunSummary<'_>) -> Result<serde_json::Value> {
        // The shards of a partial fit write into one folder, made by whichever comes first.
        if let Some(parent) = self
            .config
            .out
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            ldae_pipeline::folders::create_dir_all(parent)?;
        }
        let errors = self.errors_path();
        write_errors_table(&errors, summary.rejected)?;
        if self.stats.images == 0 {
            return Err(Error::data(format!(
                "no image could be read from {}: see the errors table {}",
                self.input,
                errors.display()
            )));
        }
        let out = &self.config.out;
        if self.config.partial {
            let mut meta = self.meta()?;
            meta.samples = self.stats.count;
            meta.images = self.stats.images;
            self.stats.save_partial(out, &meta)?;
            return PcaFitReport {
                partial: Some(out.clone()),
                patches: self.stats.count,
                images: self.stats.images,
                errors,
                ..PcaFitReport::default()
            }
            .to_output();
        }
        let model = PcaModel::fit(&self.stats, self.meta()?)?;
        model.save(out)?;
        let ratio = model.explained_variance_ratio();
        let cumulative: Vec<f64> = ratio
            .iter()
            .scan(0.0, |acc, r| {
                *acc += r;
                Some(*acc)
            })
            .collect();
        PcaFitReport {
            model: Some(out.clone()),
            patches: self.stats.count,
            images: self.stats.images,
            dim: Some(model.dim()),
            cumulative_explained_variance: cumulative,
            errors,
            ..PcaFitReport::default()
        }
        .to_output()
    }

    fn abort(&mut self) {
        let _ = std::fs::remove_file(ldae_pipeline::atomic_file::temp_path(&self.config.out));
    }
}

/// What a `pca_fit` sink reports (its job's output; Python gets it as a dict).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PcaFitReport {
    /// The model written (a full fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<PathBuf>,
    /// The partial statistics written (`partial = true`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<PathBuf>,
    /// Patches the statistics hold.
    pub patches: u64,
    /// Images they came from.
    pub images: u64,
    /// The model's dimension D (a full fit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// The cumulative explained variance of the first 1, 2, ... components (a full fit).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cumulative_explained_variance: Vec<f64>,
    /// The errors table (rejected images).
    pub errors: PathBuf,
}

impl PcaFitReport {
    /// The report as a sink job's output.
    pub fn to_output(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|e| Error::external("pca_fit report", e))
    }

    /// The report in a sink job's output (`None` when the output is not a `pca_fit` sink's).
    pub fn from_output(output: &serde_json::Value) -> Option<PcaFitReport> {
        serde_json::from_value(output.clone()).ok()
    }
}
