//! The flags of the commands that train, read, export and probe networks.

use std::path::PathBuf;

use clap::Args;
use ldae_datasets::Format;
use ldae_model::denoiser::{Conditioning, Precision, Preset};
use ldae_model::encoder::{EncoderModel, Pooling};
use ldae_operators::decode::Interpolation;
use ldae_operators::device::DeviceName;
use ldae_operators::noise::{NoiseKind, SINGLE_SIGMA};
use ldae_operators::pca::LatentScale;
use ldae_pipeline::names::parse_name;

use super::common::{at_least_one, parse_duration, OutputArgs, RunArgs, SourceArgs};

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
    #[arg(long, default_value = "tiny", value_parser = parse_name::<Preset>)]
    pub preset: Preset,
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
    /// size, stored as bytes; kept and reused if complete) and train from it, instead of
    /// decoding every epoch. A cache decoded from another --input, split, size or channel
    /// count is refused, complete or not. With --augment, crops are then taken from the cached
    /// (resized) images. Read on 2 cores: 32 px about 330k images/s, 224 px 2,400-5,400/s,
    /// several times what they decode of JPEGs. A cache larger than 2 GiB is written in a
    /// shuffled order, so that the windows of row groups its shuffled reads keep in memory mix
    /// every class.
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
    #[arg(long, default_value = "cpu", value_parser = parse_name::<DeviceName>)]
    pub device: DeviceName,
    /// Matrix-product precision: f32, or bf16 (mixed precision: f32 master weights, optimizer
    /// state, norms and softmax). Default: bf16 on a GPU, f32 on CPU. With --resume it may
    /// change (a run started on the CPU goes on in bf16 on a GPU).
    #[arg(long)]
    pub precision: Option<Precision>,
    /// Print the pipeline spec (TOML) this command would run, then exit (`ldae run` runs it).
    #[arg(long)]
    pub print_spec: bool,
    /// Dataset kind, when it cannot be told from the path: folder, parquet, webdataset, idx,
    /// cifar or synthetic.
    #[arg(long, value_parser = parse_name::<Format>)]
    pub format: Option<Format>,
    /// Train on this split of a Hugging Face Parquet dataset (`train` for the files
    /// `train-NNNNN-of-NNNNN.parquet`, or a folder named `train`).
    #[arg(long)]
    pub split: Option<String>,
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
    /// timm ViT folder (config.json + model.safetensors) or a Hugging Face transformers one
    /// (ViT, MAE, DeiT, BEiT, DINOv2, DINOv3, CLIP, SigLIP, AIMv2...; with its preprocessor_config.json) for
    /// --kind ldae: its eval preprocessing and pooling come from its config (docs/timm.md). A
    /// hub id (facebook/dinov2-small, or ID@REVISION) that is not a folder here is read from
    /// the local Hugging Face cache (hf download ID puts it there).
    #[arg(long)]
    pub checkpoint: Option<PathBuf>,
    /// Read the tokens after this block, 1 = the first (default: the block the run records,
    /// else the last encoder block). Several (`--block 3,6`) give one column `features_K` per
    /// block, in one pass.
    #[arg(long, value_delimiter = ',')]
    pub block: Vec<usize>,
    /// How tokens become a feature: mean (average, [width]), grid2 / grid4 (the average of
    /// each cell of a 2x2 / 4x4 grid over the token grid, [4 width] / [16 width]; keeps where
    /// in the image a feature is), none (every token, [N, width]), token (a timm model's
    /// class token; DINOv3's own feature), token_mean (the class token and the patch mean
    /// side by side, [2 width]: DINOv2's linear-probe feature), map (a timm model's attention
    /// pooling, SigLIP's) or
    /// head (a timm model's
    /// output: its pooling, then its head, [num_classes]: a CLIP tower's image embedding in
    /// the space it shares with text, a classifier's logits). Default: the run's recorded
    /// pooling, else mean; a timm model's own global_pool.
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
    #[arg(long, default_value = "cpu", value_parser = parse_name::<DeviceName>)]
    pub device: DeviceName,
    /// Matrix-product precision of the network: f32 or bf16. Default: bf16 on a GPU, f32 on CPU.
    #[arg(long)]
    pub precision: Option<Precision>,
    /// timm / transformers model: input side in pixels (default: the model's; another size
    /// resamples the position embedding as timm or transformers does, or computes a rotary
    /// one for the new grid).
    #[arg(long)]
    pub image_size: Option<usize>,
    /// timm / transformers model: the eval crop, a fraction of the resized shorter side
    /// (default: the model's `crop_pct`, or its image processor's crop over its resize).
    #[arg(long)]
    pub crop_pct: Option<f64>,
    /// timm / transformers model: the resize filter, bilinear or bicubic (default: the model's).
    #[arg(long, value_parser = parse_name::<Interpolation>)]
    pub interpolation: Option<Interpolation>,
    /// timm / transformers model: per-channel means of x / 255, comma-separated (default: the
    /// model's).
    #[arg(long, value_delimiter = ',')]
    pub mean: Option<Vec<f32>>,
    /// timm / transformers model: per-channel standard deviations of x / 255 (default: the
    /// model's).
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
    #[arg(long, default_value = "cpu", value_parser = parse_name::<DeviceName>)]
    pub device: DeviceName,
    /// Write results here (JSON), with RESULTS.predictions.parquet and
    /// RESULTS.{linear,knn}-confusion.png beside it.
    #[arg(long)]
    pub out: Option<PathBuf>,
}
