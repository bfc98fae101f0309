//! The `[source]` of a spec: a dataset and how to read it.

use arrow::datatypes::DataType;
use ldae_datasets::synthetic::is_synthetic;
use ldae_datasets::SourceOptions;
use ldae_pipeline::columns::{self, tensor_type};
use ldae_pipeline::{BuildContext, Source};

use crate::Result;

/// `[source]`: the dataset and how to read it: which rows, in which order, in what batches.
// No `deny_unknown_fields`: serde does not combine it with `flatten`; the options' format
// settings refuse unknown keys.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SourceSpec {
    /// Dataset path or `synthetic:N`; a relative path is relative to the spec file.
    pub input: String,
    /// Source options (format, limit, shard, shuffle, seed, batch_size, ...).
    #[serde(flatten)]
    pub options: SourceOptions,
}

impl SourceSpec {
    /// The input with a relative path made absolute against the current folder, so a printed
    /// spec runs the same from anywhere.
    pub fn absolute(input: &str, options: SourceOptions) -> SourceSpec {
        let input = if is_synthetic(input) {
            input.to_string()
        } else {
            std::path::absolute(input)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| input.to_string())
        };
        SourceSpec { input, options }
    }

    /// Open the dataset; `base` resolves a relative path.
    pub fn open(&self, base: &std::path::Path) -> Result<Box<dyn Source>> {
        let input = self.resolved_input(base);
        ldae_datasets::open(&input, &self.options).map_err(|e| ldae_pipeline::Error::InStage {
            stage: format!("source {input}"),
            source: Box::new(e),
        })
    }

    /// What the components of a spec reading this source are built with: `base` resolves
    /// relative paths, `epoch` is the pass, `job` the spec (for manifests).
    pub fn build_context(
        &self,
        base: &std::path::Path,
        epoch: u64,
        job: serde_json::Value,
    ) -> BuildContext {
        BuildContext {
            base: base.to_path_buf(),
            epoch,
            input: self.resolved_input(base),
            shard: self.options.shard,
            format: self.options.format.map(|f| f.name().to_string()),
            limit: self.options.limit,
            job,
        }
    }

    /// The input as opened (relative paths resolved against `base`).
    pub fn resolved_input(&self, base: &std::path::Path) -> String {
        resolve_input(base, &self.input)
    }
}

/// A dataset input (path or `synthetic:N`) with a relative path resolved against `base`.
pub fn resolve_input(base: &std::path::Path, input: &str) -> String {
    let p = std::path::Path::new(input);
    if is_synthetic(input) || p.is_absolute() || base.as_os_str().is_empty() {
        input.to_string()
    } else {
        base.join(p).display().to_string()
    }
}

/// The channel count a dataset naturally has: 1 for grayscale pixel datasets, else 3.
pub fn natural_channels(source: &dyn Source) -> u8 {
    source
        .schema()
        .field_with_name(columns::PIXELS)
        .ok()
        .and_then(tensor_type)
        .filter(|(el, shape)| el == &DataType::UInt8 && shape.len() == 3 && shape[2] == 1)
        .map(|_| 1)
        .unwrap_or(3)
}
