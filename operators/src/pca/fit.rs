//! The PCA fit sink: accumulates patch statistics from the stream and, when it ends, writes the
//! model (or, with `partial`, the mergeable statistics for `ldae pca merge`).

use std::path::PathBuf;

use arrow::array::{AsArray, Float32Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, require_tensor};
use ldae_pipeline::{Error, Result, RunSummary, Sink};

use super::model::{PcaMeta, PcaModel};
use super::stats::PcaStats;
use crate::errors_table::write_errors_table;

/// Settings of a PCA fit.
#[derive(Debug, Clone)]
pub struct PcaFitConfig {
    /// Where the model (or partial statistics) goes.
    pub out: PathBuf,
    /// Write mergeable statistics instead of a model.
    pub partial: bool,
    /// Geometry, normalisation and default latent scale recorded in the model.
    pub meta: PcaMeta,
}

/// The PCA fit sink.
pub struct PcaFit {
    config: PcaFitConfig,
    stats: PcaStats,
}

impl PcaFit {
    /// A sink fitting `config.meta`'s patch geometry.
    pub fn new(config: PcaFitConfig) -> Self {
        let stats = PcaStats::new(config.meta.patch_dim());
        PcaFit { config, stats }
    }

    /// Where the errors table of this fit goes: `NAME.errors.parquet` beside the output.
    pub fn errors_path(&self) -> PathBuf {
        self.config.out.with_extension("errors.parquet")
    }
}

impl Sink for PcaFit {
    fn name(&self) -> String {
        "pca_fit".into()
    }

    fn check_schema(&mut self, input: &SchemaRef) -> Result<()> {
        let shape = require_tensor(input, columns::PATCHES, &DataType::Float32, "pca_fit")?;
        let m = &self.config.meta;
        let tokens = (m.image_size / m.patch_size).pow(2);
        if shape != [tokens, m.patch_dim()] {
            return Err(Error::plan(
                "pca_fit",
                format!(
                    "patches are {shape:?}, expected [{tokens}, {}] for {}x{} images, patch {}, {} channel(s)",
                    m.patch_dim(),
                    m.image_size,
                    m.image_size,
                    m.patch_size,
                    m.channels
                ),
            ));
        }
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
        let errors = self.errors_path();
        write_errors_table(&errors, summary.rejected)?;
        let out = &self.config.out;
        if self.config.partial {
            let mut meta = self.config.meta.clone();
            meta.samples = self.stats.count;
            meta.images = self.stats.images;
            self.stats.save_partial(out, &meta)?;
            return Ok(serde_json::json!({
                "partial": out.display().to_string(),
                "patches": self.stats.count,
                "images": self.stats.images,
                "errors": errors.display().to_string(),
            }));
        }
        let model = PcaModel::fit(&self.stats, self.config.meta.clone())?;
        model.save(out)?;
        let ratio = model.explained_variance_ratio();
        let cumulative: Vec<f64> = ratio
            .iter()
            .scan(0.0, |acc, r| {
                *acc += r;
                Some(*acc)
            })
            .collect();
        Ok(serde_json::json!({
            "model": out.display().to_string(),
            "patches": self.stats.count,
            "images": self.stats.images,
            "dim": model.dim(),
            "cumulative_explained_variance": cumulative,
            "errors": errors.display().to_string(),
        }))
    }

    fn abort(&mut self) {
        let _ = std::fs::remove_file(crate::atomic::temp_path(&self.config.out));
    }
}
