//! Command-line arguments: the commands here, their shared flags in `common`, the model
//! commands' flags in `model_args`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use ldae_datasets::Format;
use ldae_operators::device::DeviceName;
use ldae_operators::pca::LatentScale;
use ldae_pipeline::names::parse_name;

mod common;
mod model_args;

use common::at_least_one;
pub use common::{OutputArgs, RunArgs, SourceArgs};
pub use model_args::{ExportArgs, FeaturesArgs, ProbeArgs, TrainArgs};

/// What `ldae --version` prints: the version, the JPEG decoder and the CPU instruction-set
/// level in use (`LDAE_MAX_CPU_ISA` caps it).
pub fn long_version() -> String {
    format!(
        "{}\nJPEG decoder: {}\nCPU kernels: {}",
        env!("CARGO_PKG_VERSION"),
        ldae_operators::jpeg::decoder(),
        ldae_operators::cpu::isa::describe()
    )
}

/// ldae: latent denoising autoencoder (l-DAE) pipelines over image datasets.
///
/// Images stream as Arrow batches through decode -> patchify -> PCA -> ... operators; outputs
/// are Parquet table folders (`data/part-*.parquet`, `_errors.parquet`, `_manifest.json`,
/// `_SUCCESS`) that the shards of a job write side by side and that a rerun resumes.
/// DATA is an image folder (root/<class>/*.jpg), a Parquet image table, WebDataset .tar shards,
/// an IDX file (MNIST family), CIFAR-10 binary batches, or `synthetic:N`.
///
/// Environment: LDAE_LOG sets the log filter (e.g. `debug`); LDAE_MAX_CPU_ISA=avx2 (or
/// baseline) caps the instruction set of the CPU kernels, whose results then differ from the
/// widest level's in the last bits; CANDLE_NUM_THREADS (or RAYON_NUM_THREADS) sets the model
/// kernels' threads (default: one per core; results are the same for any number);
/// LDAE_JPEG_DECODER=rust skips libjpeg-turbo. `ldae --version` prints the JPEG decoder and
/// the kernels' level in use.
#[derive(Parser, Debug)]
#[command(name = "ldae", version, about, long_about)]
pub struct Cli {
    /// Print only warnings, errors and each command's result: no progress, no stage table.
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
        output: OutputArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// The state of a (sharded) job's output folder: each shard done, running, partial,
    /// failed or missing, and the array indices to resubmit.
    Status {
        /// The output folder (`--out` of the job), or a folder of `pca fit --partial` files.
        dir: PathBuf,
    },
    /// Pre-train the l-DAE denoiser on PCA-latent noise (one pass over the data per epoch).
    Train(Box<TrainArgs>),
    /// Turn images into feature vectors: rows (id, label, features [F]) in a Parquet folder.
    Features(Box<FeaturesArgs>),
    /// SQL (DataFusion) over Parquet outputs; tensors are shown by their shape.
    Sql {
        /// The query, e.g. "SELECT label, count(*) FROM features GROUP BY label".
        query: String,
        /// A table as NAME=PATH (a folder of part-*.parquet, a file or a glob); repeatable.
        /// Default: every ldae output folder in the current directory, by folder name.
        #[arg(long = "table")]
        tables: Vec<String>,
        /// Read tables whose job has not finished (the parts committed so far) instead of
        /// refusing them.
        #[arg(long)]
        allow_incomplete: bool,
    },
    /// Linear (and kNN) probes of feature tables: train on one, report accuracy on the other.
    Probe(Box<ProbeArgs>),
    /// The paper's small-scale ablations (latent dim, noise levels, latent scale, probed block)
    /// on a dataset and budget given in a TOML spec (see docs/ablate.md); writes Markdown + CSV.
    Ablate {
        /// The spec file.
        spec: PathBuf,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Write a training run's encoder as a timm ViT folder (config.json, model.safetensors and
    /// a README.md model card) that `timm.create_model("local-dir:DIR", pretrained=True)` loads
    /// with no ldae code; its pooled feature is `ldae features --pooling mean` (docs/timm.md).
    Export(Box<ExportArgs>),
    /// Draw what a trained model does: clean images, noised at several sigma, and denoised.
    Denoise {
        /// The training run folder (config.json, checkpoint/).
        #[arg(long)]
        checkpoint: PathBuf,
        /// Images to show (the first rows of the dataset).
        #[arg(long)]
        input: String,
        /// Output PNG.
        #[arg(long)]
        out: PathBuf,
        /// Rows of the grid (images).
        #[arg(long, default_value_t = 8)]
        count: usize,
        /// Noise levels, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "0.1,0.4,0.8,1.2")]
        sigmas: Vec<f32>,
        /// Use the EMA weights.
        #[arg(long)]
        ema: bool,
        /// Enlargement of each image.
        #[arg(long, default_value_t = 3)]
        zoom: u32,
        /// Dataset kind, when it cannot be told from the path: folder, parquet, webdataset,
        /// idx, cifar or synthetic.
        #[arg(long, value_parser = parse_name::<Format>)]
        format: Option<Format>,
        /// Seed of the noise.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// The built-in demo on synthetic data (no files needed): PCA, a short l-DAE pre-training,
    /// features, and probes comparing l-DAE with pixels, PCA latents and a random network.
    Demo {
        /// Output folder.
        #[arg(long, default_value = "ldae-demo")]
        out: PathBuf,
        /// Synthetic training images.
        #[arg(long, default_value_t = 4000)]
        images: usize,
        /// Synthetic test images (the ones after the training images).
        #[arg(long, default_value_t = 1000)]
        test_images: usize,
        /// Pre-training epochs.
        #[arg(long, default_value_t = 2)]
        epochs: u64,
        /// Pre-training batch size.
        #[arg(long, default_value_t = 64, value_parser = at_least_one)]
        batch_size: usize,
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
        /// Output file (.safetensors). With --partial, a folder (an existing one, or a path
        /// without extension) that each shard writes `partial-IIII-of-NNNN.safetensors` into.
        #[arg(long)]
        out: PathBuf,
        /// Write mergeable partial statistics instead of a model (combine with `pca merge`).
        /// A shard whose partial file is already there is not redone (unless --overwrite).
        #[arg(long)]
        partial: bool,
        /// Redo a partial that is already there.
        #[arg(long)]
        overwrite: bool,
        /// Channels: 3 (RGB) or 1 (grayscale). Default: 1 for grayscale datasets (IDX), else 3.
        #[arg(long)]
        channels: Option<u8>,
        /// Default latent scale recorded in the model (none, global, whiten).
        #[arg(long, default_value = "global")]
        latent_scale: LatentScale,
        /// Print the pipeline spec (TOML) this command would run, then exit (`ldae run` runs it).
        #[arg(long)]
        print_spec: bool,
        #[command(flatten)]
        source: SourceArgs,
        #[command(flatten)]
        run: RunArgs,
    },
    /// Merge partial statistics (from `pca fit --partial` on shards) into one model.
    Merge {
        /// Partial statistics files, or a folder of them (`pca fit --partial --out DIR`;
        /// every shard must be there).
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
        latent_scale: Option<LatentScale>,
        /// Compute device: cpu, cuda or cuda:N (cuda needs a build with the `cuda` feature).
        #[arg(long, default_value = "cpu", value_parser = parse_name::<DeviceName>)]
        device: DeviceName,
        /// Print the pipeline spec (TOML) this command would run, then exit (`ldae run` runs it).
        #[arg(long)]
        print_spec: bool,
        #[command(flatten)]
        output: OutputArgs,
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
