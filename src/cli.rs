//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// ldae: latent denoising autoencoder (l-DAE) pipelines over image datasets.
///
/// Images stream as Arrow batches through decode -> patchify -> PCA -> ... operators; outputs
/// are Parquet folders (`part-*.parquet`, `_errors.parquet`, `_manifest.json`, `_SUCCESS`).
/// DATA is an image folder (root/<class>/*.jpg), a Parquet image table, WebDataset .tar shards,
/// an IDX file (MNIST family), CIFAR-10 binary batches, or `synthetic:N`.
#[derive(Parser, Debug)]
#[command(name = "ldae", version, about, long_about)]
pub struct Cli {
    /// Only print warnings and errors.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Patch-wise PCA: fit, merge shards, encode images to latents, draw components.
    #[command(subcommand)]
    Pca(PcaCommand),
    /// Describe a Parquet output (folder or file) or a PCA file: schema, rows, shapes, metadata.
    Inspect {
        /// A Parquet folder or file, or a .safetensors PCA file.
        path: PathBuf,
    },
    /// Run a pipeline described by a TOML spec (see docs/pipeline-spec.md).
    Run {
        /// The spec file.
        spec: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// The built-in demo on synthetic data (no files needed): fit a PCA, encode latents, report.
    Demo {
        /// Output folder.
        #[arg(long, default_value = "ldae-demo")]
        out: PathBuf,
        /// Synthetic images to generate.
        #[arg(long, default_value_t = 4000)]
        images: usize,
        #[command(flatten)]
        run: RunArgs,
    },
}

#[derive(Subcommand, Debug)]
pub enum PcaCommand {
    /// Fit a patch-wise PCA on a dataset (or compute one shard's partial statistics).
    Fit {
        /// The dataset.
        #[arg(long)]
        input: String,
        /// Images are resized (shorter side) and centre-cropped to S x S.
        #[arg(long)]
        image_size: usize,
        /// Patch side p (must divide S).
        #[arg(long)]
        patch: usize,
        /// Output file (.safetensors).
        #[arg(long)]
        out: PathBuf,
        /// Write mergeable partial statistics instead of a model (combine with `pca merge`).
        #[arg(long)]
        partial: bool,
        /// Channels: 3 (RGB) or 1 (grayscale). Default: 1 for grayscale datasets (IDX), else 3.
        #[arg(long)]
        channels: Option<u8>,
        /// Default latent scale recorded in the model (none, global, whiten).
        #[arg(long, default_value = "global")]
        latent_scale: String,
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Merge partial statistics (from `pca fit --partial` on shards) into one model.
    Merge {
        /// Partial statistics files.
        #[arg(required = true)]
        partials: Vec<PathBuf>,
        /// Output file (.safetensors).
        #[arg(long)]
        out: PathBuf,
        /// Write merged partial statistics instead of a model (for merging in stages).
        #[arg(long)]
        partial: bool,
    },
    /// Encode images to PCA latents: rows (id, label, latents [N, d]) in a Parquet folder.
    Encode {
        /// The dataset.
        #[arg(long)]
        input: String,
        /// The PCA model (image size, patch size, channels and normalisation come from it).
        #[arg(long)]
        pca: PathBuf,
        /// Latent dimension d (1..=D).
        #[arg(long)]
        dim: usize,
        /// Output folder.
        #[arg(long)]
        out: PathBuf,
        /// Latent scale (none, global, whiten). Default: the one recorded in the model.
        #[arg(long)]
        latent_scale: Option<String>,
        /// Compute device: cpu, cuda or cuda:N (cuda needs a build with the `cuda` feature).
        #[arg(long, default_value = "cpu")]
        device: String,
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Draw the top principal components as image patches into a PNG.
    Show {
        /// The PCA model.
        pca: PathBuf,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// Components to draw.
        #[arg(long, default_value_t = 32)]
        count: usize,
        /// Enlargement of each patch.
        #[arg(long, default_value_t = 8)]
        zoom: u32,
    },
}

/// Which rows of the dataset to read, and how.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Dataset kind, when it cannot be told from the path.
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Read at most N rows (after shuffling, before sharding).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Read shard i of n (zero-based, e.g. 0/4); shards are disjoint and cover the dataset.
    /// Defaults to SLURM_ARRAY_TASK_ID / JOB_COMPLETION_INDEX with LDAE_SHARDS=n when set.
    #[arg(long)]
    pub shard: Option<String>,
    /// Shuffle rows with --seed before limiting and sharding.
    #[arg(long)]
    pub shuffle: bool,
    /// Rows per batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Seed of every random choice (shuffle, augmentation, noise).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// How to run the pipeline.
#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Worker threads for parallel stages (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// What to do with a bad row: skip (record it in the errors table) or fail (stop, naming it).
    #[arg(long, value_enum, default_value = "skip")]
    pub on_error: OnErrorArg,
    /// Progress display: a bar on a terminal, log lines otherwise, or nothing.
    #[arg(long, value_enum, default_value = "auto")]
    pub progress: ProgressArg,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum FormatArg {
    Folder,
    Parquet,
    Webdataset,
    Idx,
    Cifar,
    Synthetic,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum OnErrorArg {
    Skip,
    Fail,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum ProgressArg {
    Auto,
    Log,
    Off,
}
