//! Building the pipelines of the command-line jobs (and of specs) from their settings.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::datatypes::DataType;
use ldae_datasets::{Format, Shard, SourceOptions};
use ldae_operators::decode::{Decode, DecodeConfig};
use ldae_operators::normalize::{Normalization, Normalize};
use ldae_operators::patchify::Patchify;
use ldae_pipeline::columns::{self, tensor_type};
use ldae_pipeline::{OnError, Operator, ProgressMode, RunOptions, RunReport, Source};

use crate::cli::{FormatArg, OnErrorArg, ProgressArg, RunArgs, SourceArgs};

/// The source options of a command's flags.
pub fn source_options(args: &SourceArgs) -> Result<SourceOptions> {
    let shard = match &args.shard {
        Some(s) => Some(s.parse::<Shard>()?),
        None => shard_from_env()?,
    };
    Ok(SourceOptions {
        format: args.format.map(|f| match f {
            FormatArg::Folder => Format::Folder,
            FormatArg::Parquet => Format::Parquet,
            FormatArg::Webdataset => Format::Webdataset,
            FormatArg::Idx => Format::Idx,
            FormatArg::Cifar => Format::Cifar,
            FormatArg::Synthetic => Format::Synthetic,
        }),
        limit: args.limit,
        shard,
        skip: args.skip,
        shuffle: args.shuffle,
        seed: args.seed,
        batch_size: args.batch_size.max(1),
        ..SourceOptions::default()
    })
}

/// `LDAE_SHARDS=n` with a Slurm array or Kubernetes Indexed Job index selects this task's shard.
fn shard_from_env() -> Result<Option<Shard>> {
    let Ok(count) = std::env::var("LDAE_SHARDS") else {
        return Ok(None);
    };
    let index = std::env::var("SLURM_ARRAY_TASK_ID")
        .or_else(|_| std::env::var("JOB_COMPLETION_INDEX"))
        .context(
            "LDAE_SHARDS is set but neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is",
        )?;
    Ok(Some(format!("{index}/{count}").parse::<Shard>()?))
}

/// The run options of a command's flags.
pub fn run_options(args: &RunArgs, label: &str) -> RunOptions {
    let mut options = RunOptions {
        on_error: match args.on_error {
            OnErrorArg::Skip => OnError::Skip,
            OnErrorArg::Fail => OnError::Fail,
        },
        progress: match args.progress {
            ProgressArg::Auto => ProgressMode::Auto,
            ProgressArg::Log => ProgressMode::Log,
            ProgressArg::Off => ProgressMode::Off,
        },
        label: label.to_string(),
        ..RunOptions::default()
    };
    if let Some(t) = args.threads {
        options.threads = t.max(1);
    }
    options
}

/// Open a dataset.
pub fn open_source(input: &str, options: &SourceOptions) -> Result<Box<dyn Source>> {
    ldae_datasets::open(input, options).with_context(|| format!("opening {input}"))
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

/// decode -> normalize -> patchify: the image-to-patches front of every PCA job.
pub fn patch_operators(
    image_size: usize,
    channels: u8,
    patch: usize,
    normalization: Normalization,
) -> Result<Vec<Arc<dyn Operator>>> {
    if image_size == 0 || patch == 0 || !image_size.is_multiple_of(patch) {
        bail!("--patch {patch} must divide --image-size {image_size}");
    }
    Ok(vec![
        Arc::new(Decode::new(DecodeConfig {
            image_size: image_size as u32,
            channels,
            ..DecodeConfig::default()
        })?),
        Arc::new(Normalize::new(normalization)),
        Arc::new(Patchify::new(patch)),
    ])
}

/// A pipeline from `source` to a Parquet table at `out` (sharded like `options`), starting with
/// the image-to-patches operators of the PCA model's geometry: the front of every job that
/// writes per-image tables (latents, features).
pub fn patch_table_pipeline(
    source: Box<dyn Source>,
    options: &SourceOptions,
    meta: &ldae_operators::pca::PcaMeta,
    out: &std::path::Path,
    job: serde_json::Value,
) -> Result<ldae_pipeline::Pipeline> {
    let sink = ldae_operators::parquet_sink::ParquetSink::new(
        ldae_operators::parquet_sink::ParquetSinkConfig {
            out: out.to_path_buf(),
            shard: options.shard.map(|s| (s.index, s.count)),
            ..Default::default()
        },
        job,
    )?;
    let mut pipeline = ldae_pipeline::Pipeline::new(source, Box::new(sink));
    for op in patch_operators(
        meta.image_size,
        meta.channels as u8,
        meta.patch_size,
        meta.normalization.clone(),
    )? {
        pipeline = pipeline.then(op);
    }
    Ok(pipeline)
}

/// Print a run's per-stage table and rejected-row summary to stderr.
pub fn print_report(report: &RunReport) {
    eprintln!("{}", report.table());
    if !report.rejected.is_empty() {
        eprintln!("{} row(s) rejected, e.g.:", report.rejected.len());
        for r in report.rejected.iter().take(5) {
            eprintln!("  {} [{}]: {}", r.id, r.stage, r.message);
        }
    }
}
