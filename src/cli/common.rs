//! The flags several commands share: which rows to read, what to do with an output folder's
//! earlier work, and how to run the pipeline.

use clap::Args;
use ldae_datasets::Format;
use ldae_pipeline::names::parse_name;
use ldae_pipeline::{OnError, ProgressMode};

/// Which rows of the dataset to read, and how.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Dataset kind, when it cannot be told from the path: folder, parquet, webdataset, idx,
    /// cifar or synthetic.
    #[arg(long, value_parser = parse_name::<Format>)]
    pub format: Option<Format>,
    /// Read at most N rows (after shuffling, before sharding).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Read shard i of n (zero-based, e.g. 0/4); shards are disjoint and cover the dataset.
    /// Defaults to SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX with LDAE_SHARDS=n when set.
    #[arg(long)]
    pub shard: Option<String>,
    /// Skip the first N rows (after shuffling, limiting and sharding): e.g. `synthetic:5000
    /// --skip 4000` is the 1000 images after `synthetic:4000`.
    #[arg(long, default_value_t = 0)]
    pub skip: usize,
    /// Shuffle rows with --seed before limiting and sharding.
    #[arg(long)]
    pub shuffle: bool,
    /// Rows per batch. Default: as many images as fit 4 MB of decoded f32 pixels, at most 256
    /// (256 at 32x32 RGB, 6 at 224x224 RGB), rounded up to a multiple of 32 when a network
    /// encodes them (it runs on chunks of 32 images and pads the last one; a given size that
    /// is not a multiple of 32 pays for the padding of every batch, and a warning says so).
    #[arg(long, value_parser = at_least_one)]
    pub batch_size: Option<usize>,
    /// Read only this split of a Hugging Face Parquet dataset (`train` for the files
    /// `train-NNNNN-of-NNNNN.parquet`, or a folder named `train`); a folder holding several
    /// splits is refused without it.
    #[arg(long)]
    pub split: Option<String>,
    /// Seed of every random choice (shuffle, augmentation, noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// What to do with work already in the output folder.
#[derive(Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Start over: redo this shard even if it finished, or replace another job's table in
    /// --out (refused while a live process of that job writes it).
    #[arg(long, conflicts_with = "resume")]
    pub overwrite: bool,
    /// Continue a killed run after its last committed part (the default whenever --out holds
    /// committed parts of this job; with the flag, their absence is an error).
    #[arg(long)]
    pub resume: bool,
    /// Rows per part file (cut at the next batch boundary): the unit a killed run resumes
    /// from. Default 8192.
    #[arg(long)]
    pub rows_per_file: Option<usize>,
}

impl OutputArgs {
    /// The library's form.
    pub fn write(&self) -> ldae_jobs::pca_fit::TableWrite {
        ldae_jobs::pca_fit::TableWrite {
            overwrite: self.overwrite,
            resume: self.resume,
            rows_per_file: self.rows_per_file,
        }
    }
}

/// How to run the pipeline.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Worker threads for parallel stages (default: all cores; for `train` on the CPU, 1 per
    /// stage, as the model step uses every core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// What to do with a bad row: skip (record it in the errors table) or fail (stop, naming it).
    #[arg(long, default_value = "skip", value_parser = parse_name::<OnError>)]
    pub on_error: OnError,
    /// Progress display: auto (a bar on a terminal, log lines otherwise), log or off.
    #[arg(long, default_value = "auto", value_parser = parse_name::<ProgressMode>)]
    pub progress: ProgressMode,
}

/// A duration such as `60m`, `1h 30m` or `900s`, in seconds.
pub(super) fn parse_duration(text: &str) -> Result<f64, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 60m, 1h 30m, 900s)"))?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d.as_secs_f64())
}

/// A count that must be at least 1 (a batch size): `0` is refused when the flags are read.
pub(super) fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
