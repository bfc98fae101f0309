//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use ldae_datasets::Format;
use ldae_model::denoiser::{Conditioning, Precision};
use ldae_model::encoder::{EncoderModel, Pooling};
use ldae_operators::decode::Interpolation;
use ldae_operators::noise::{NoiseKind, SINGLE_SIGMA};
use ldae_operators::pca::LatentScale;
use ldae_pipeline::names::parse_name;
use ldae_pipeline::{OnError, ProgressMode};

/// ldae: latent denoising autoencoder (l-DAE) pipelines over image datasets.
///
/// Images stream as Arrow batches through decode -> patchify -> PCA -> ... operators; outputs
/// are Parquet table folders (`data/part-*.parquet`, `_errors.parquet`, `_manifest.json`,
/// `_SUCCESS`) that the shards of a job write side by side and that a rerun resumes.
/// DATA is an image folder (root/<class>/*.jpg), a Parquet image table, WebDataset .tar shards,
/// an IDX file (MNIST family), CIFAR-10 binary batches, or `synthetic:N`.
/// What `ldae --version` prints: the version and the JPEG decoder in use.
pub fn long_version() -> String {
    format!(
        "{}\nJPEG decoder: {}",
        env!("CARGO_PKG_VERSION"),
        ldae_operators::jpeg::decoder()
    )
}

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
        #[arg(long, default_value = "cpu")]
        device: String,
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
    /// encodes them (it runs on chunks of 32 images and pads the last one).
    #[arg(long, value_parser = at_least_one)]
    pub batch_size: Option<usize>,
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
    /// Worker threads for parallel stages (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// What to do with a bad row: skip (record it in the errors table) or fail (stop, naming it).
    #[arg(long, default_value = "skip", value_parser = parse_name::<OnError>)]
    pub on_error: OnError,
    /// Progress display: auto (a bar on a terminal, log lines otherwise), log or off.
    #[arg(long, default_value = "auto", value_parser = parse_name::<ProgressMode>)]
    pub progress: ProgressMode,
}

/// `ldae train` settings.
#[derive(Args, Debug, Clone)]
pub struct TrainArgs {
    /// The dataset (not needed with --resume: the run folder's spec.json has it).
    #[arg(long, required_unless_present = "resume")]
    pub input: Option<String>,
    /// The PCA model (its image size, patch size, channels and normalisation are used; not
    /// needed with --resume).
    #[arg(long, required_unless_present = "resume")]
    pub pca: Option<std::path::PathBuf>,
    /// Latent dimension d the noise lives in.
    #[arg(long, default_value_t = 16)]
    pub dim: usize,
    /// Network preset: tiny, small, base, large.
    #[arg(long, default_value = "tiny")]
    pub preset: String,
    /// Override the preset's width.
    #[arg(long)]
    pub width: Option<usize>,
    /// Override the preset's encoder depth (the decoder gets the same).
    #[arg(long)]
    pub depth: Option<usize>,
    /// Override the preset's attention heads.
    #[arg(long)]
    pub heads: Option<usize>,
    /// Record the block `ldae features` reads by default (1 = the first; default: the last
    /// encoder block).
    #[arg(long)]
    pub feature_block: Option<usize>,
    /// Record the t `ldae features` feeds by default.
    #[arg(long, default_value_t = 10.0)]
    pub feature_t: f32,
    /// Record the pooling `ldae features` uses by default: mean, grid2, grid4 or none.
    #[arg(long, default_value = "mean", value_parser = parse_name::<Pooling>)]
    pub feature_pooling: Pooling,
    /// Record that `ldae features` reads the EMA weights by default (needs --ema).
    #[arg(long)]
    pub feature_ema: bool,
    /// Each block's conditioning network: dit (DiT's single Linear(width, 6 width)) or mlp (the
    /// paper's two-layer MLP of hidden width width/4, 3.4x fewer conditioning weights).
    #[arg(long, default_value = "dit", value_parser = parse_name::<Conditioning>)]
    pub conditioning: Conditioning,
    /// Epochs (with --time-budget: the most it trains).
    #[arg(long, default_value_t = 10)]
    pub epochs: u64,
    /// Fit the training into this time (e.g. 60m, 1h 30m, 900s): the number of epochs is
    /// chosen from the speed of the first steps on this machine, at most --epochs, and recorded
    /// in the run's config.json.
    #[arg(long, value_parser = parse_duration)]
    pub time_budget: Option<f64>,
    /// Run folder (config.json, checkpoint/, metrics.parquet, loss.png).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Peak learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Linear warmup, in epochs.
    #[arg(long, default_value_t = 1.0)]
    pub warmup_epochs: f64,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    /// Keep an exponential moving average of the weights with this decay (e.g. 0.999).
    #[arg(long)]
    pub ema: Option<f64>,
    /// Clip the global gradient norm.
    #[arg(long)]
    pub grad_clip: Option<f64>,
    /// Random-resized-crop and horizontal flip.
    #[arg(long)]
    pub augment: bool,
    /// Decode the dataset once into this folder (a Parquet table of u8 pixels at the PCA's image
    /// size; kept and reused if complete) and train from it, instead of decoding every epoch.
    /// With --augment, crops are then taken from the cached (resized) images.
    #[arg(long)]
    pub pixel_cache: Option<std::path::PathBuf>,
    /// Noise: multi (t ~ U{0..999}, sigma linear to sqrt 2) or single (fixed --sigma).
    #[arg(long, default_value = "multi", value_parser = parse_name::<NoiseKind>)]
    pub noise: NoiseKind,
    /// The fixed noise level of --noise single (default: sqrt(1/3), the paper's).
    #[arg(long, default_value_t = SINGLE_SIGMA)]
    pub sigma: f32,
    /// Latent scale (none, global, whiten). Default: the PCA model's.
    #[arg(long)]
    pub latent_scale: Option<LatentScale>,
    /// Checkpoint every N steps (and at the end).
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// Stop after this many steps in all (the checkpoint is written): for tests and trials.
    #[arg(long)]
    pub max_steps: Option<u64>,
    /// Compute device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Matrix-product precision: f32, or bf16 (mixed precision: f32 master weights, optimizer
    /// state, norms and softmax). Default: bf16 on a GPU, f32 on CPU.
    #[arg(long)]
    pub precision: Option<Precision>,
    /// Print the pipeline spec (TOML) this command would run, then exit (`ldae run` runs it).
    #[arg(long)]
    pub print_spec: bool,
    /// Dataset kind, when it cannot be told from the path: folder, parquet, webdataset, idx,
    /// cifar or synthetic.
    #[arg(long, value_parser = parse_name::<Format>)]
    pub format: Option<Format>,
    /// Train on the first N rows only.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Rows per step.
    #[arg(long, default_value_t = 128, value_parser = at_least_one)]
    pub batch_size: usize,
    /// Seed of initialisation, shuffling, augmentation and noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `ldae features` settings.
#[derive(Args, Debug, Clone)]
pub struct FeaturesArgs {
    /// The dataset.
    #[arg(long)]
    pub input: String,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// What the features are: ldae (the trained encoder), random (the same network, randomly
    /// initialised with --seed), pixels (normalised pixels), pca (flattened PCA latents).
    #[arg(long, default_value = "ldae", value_parser = parse_name::<EncoderModel>)]
    pub kind: EncoderModel,
    /// The training run (needed for ldae and random; gives the PCA model otherwise), or a
    /// timm / Hugging Face ViT folder (config.json + model.safetensors) for --kind ldae: its
    /// eval preprocessing and pooling come from its config.
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Read the tokens after this block, 1 = the first (default: the block the run records,
    /// else the last encoder block). Several (`--block 3,6`) give one column `features_K` per
    /// block, in one pass.
    #[arg(long, value_delimiter = ',')]
    pub block: Vec<usize>,
    /// How tokens become a feature: mean (average, [width]), grid2 / grid4 (the average of
    /// each cell of a 2x2 / 4x4 grid over the token grid, [4 width] / [16 width]; keeps where
    /// in the image a feature is), none (every token, [N, width]) or token (a timm model's
    /// class token). Default: the run's recorded pooling, else mean; a timm model's own
    /// global_pool.
    #[arg(long, value_parser = parse_name::<Pooling>)]
    pub pooling: Option<Pooling>,
    /// Noise level index t fed to the network (the input is the clean image). Default: the
    /// run's recorded t, else 10.
    #[arg(long)]
    pub t: Option<f32>,
    /// Use the EMA weights of the run (default: as the run records).
    #[arg(long)]
    pub ema: bool,
    /// PCA model (for pixels and pca without --checkpoint).
    #[arg(long)]
    pub pca: Option<PathBuf>,
    /// Latent dimension of --kind pca (default: the run's).
    #[arg(long)]
    pub dim: Option<usize>,
    /// Compute device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Matrix-product precision of the network: f32 or bf16. Default: bf16 on a GPU, f32 on CPU.
    #[arg(long)]
    pub precision: Option<Precision>,
    /// timm model: input side in pixels (default: the model's; another size resamples the
    /// position embedding as timm does).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// timm model: the eval crop, a fraction of the resized shorter side (default: the
    /// model's `crop_pct`).
    #[arg(long)]
    pub crop_pct: Option<f64>,
    /// timm model: the resize filter, bilinear or bicubic (default: the model's).
    #[arg(long)]
    pub interpolation: Option<Interpolation>,
    /// timm model: per-channel means of x / 255, comma-separated (default: the model's).
    #[arg(long, value_delimiter = ',')]
    pub mean: Option<Vec<f32>>,
    /// timm model: per-channel standard deviations of x / 255 (default: the model's).
    #[arg(long, value_delimiter = ',')]
    pub std: Option<Vec<f32>>,
    /// Print the pipeline spec (TOML) this command would run, then exit (`ldae run` runs it).
    #[arg(long)]
    pub print_spec: bool,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub source: SourceArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// `ldae export` settings.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// The training run folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The format written: timm (a timm / Hugging Face VisionTransformer folder).
    #[arg(long, default_value = "timm", value_parser = ["timm"])]
    pub format: String,
    /// The folder to write (must not exist, unless --overwrite).
    #[arg(long)]
    pub out: PathBuf,
    /// The last block kept: the feature is the mean of its tokens (default: the block the run
    /// records, else the last encoder block).
    #[arg(long)]
    pub block: Option<usize>,
    /// The noise level t folded into the blocks (default: the run's recorded t, else 10).
    #[arg(long)]
    pub t: Option<f32>,
    /// Export the EMA weights (default: as the run records).
    #[arg(long)]
    pub ema: bool,
    /// A probe report (`ldae probe --out FILE`) to summarise in the model card; repeatable.
    /// Default: the run folder's probe-*.json.
    #[arg(long)]
    pub probe: Vec<PathBuf>,
    /// Replace --out if it exists.
    #[arg(long)]
    pub overwrite: bool,
}

/// `ldae probe` settings.
#[derive(Args, Debug, Clone)]
pub struct ProbeArgs {
    /// Training features: an output folder of `ldae features`, a Parquet file or a glob.
    #[arg(long)]
    pub train: String,
    /// Read a table whose job has not finished (the parts committed so far, with a warning)
    /// instead of refusing it.
    #[arg(long)]
    pub allow_incomplete: bool,
    /// Test features (same forms as --train).
    #[arg(long)]
    pub test: String,
    /// SQL predicate applied to both tables' rows, e.g. "split = 'train'".
    #[arg(long = "where")]
    pub where_: Option<String>,
    /// SQL predicate for the training rows only (ANDed with --where).
    #[arg(long)]
    pub train_where: Option<String>,
    /// SQL predicate for the test rows only (ANDed with --where).
    #[arg(long)]
    pub test_where: Option<String>,
    /// The feature column: a vector of float32 or float64 (ldae's tensors, or the list columns
    /// pandas, pyarrow or Spark write). Default: the table's one such column.
    #[arg(long)]
    pub column: Option<String>,
    /// The label column: integers of any width, or strings (mapped to their sorted values,
    /// which the report records as the classes).
    #[arg(long, default_value = "label")]
    pub label: String,
    /// Also run the cosine kNN classifier.
    #[arg(long)]
    pub knn: bool,
    /// Neighbours of the kNN classifier.
    #[arg(long, default_value_t = 20)]
    pub k: usize,
    /// Temperature of the kNN votes (weight exp(similarity / T)).
    #[arg(long, default_value_t = 0.07)]
    pub temperature: f64,
    /// Epochs of the linear probe.
    #[arg(long, default_value_t = 30)]
    pub epochs: usize,
    /// Rows per step of the linear probe (at most: small sets use rows / 32).
    #[arg(long, default_value_t = 1024, value_parser = at_least_one)]
    pub batch_size: usize,
    /// Warmup epochs before the cosine decay.
    #[arg(long, default_value_t = 2.0)]
    pub warmup_epochs: f64,
    /// Learning rates to try (comma-separated), chosen on a validation split.
    #[arg(long, value_delimiter = ',', default_value = "0.001,0.003,0.01")]
    pub lr: Vec<f64>,
    /// Weight decays (L2 penalties) to try (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "0.00001,0.0001,0.001")]
    pub wd: Vec<f64>,
    /// Share of the training rows held out to choose the learning rate and weight decay.
    #[arg(long, default_value_t = 0.1)]
    pub validation_fraction: f64,
    /// Seed of the validation split and batch order.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Write results here (JSON), with RESULTS.predictions.parquet and
    /// RESULTS.{linear,knn}-confusion.png beside it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// A duration such as `60m`, `1h 30m` or `900s`, in seconds.
fn parse_duration(text: &str) -> Result<f64, String> {
    let d = humantime::parse_duration(text).map_err(|e| format!("{e} (e.g. 60m, 1h 30m, 900s)"))?;
    if d.is_zero() {
        return Err("must be more than 0".into());
    }
    Ok(d.as_secs_f64())
}

/// A count that must be at least 1 (a batch size): `0` is refused when the flags are read.
fn at_least_one(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}
