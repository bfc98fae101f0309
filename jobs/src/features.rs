//! The features job (`ldae features`): images -> patches -> encoder -> Parquet.

use std::path::PathBuf;

use ldae_datasets::SourceOptions;
use ldae_model::denoiser::Precision;
use ldae_model::encoder::{EncoderConfig, EncoderModel, FeatureDefaults, Pooling};
use ldae_model::train::trainer::read_train_config;
use ldae_model::vit::{hub_cache, is_model_folder, TimmFolder};
use ldae_operators::decode::{DecodeConfig, Interpolation};
use ldae_operators::device::DeviceName;
use ldae_operators::normalize::{NormalizeConfig, NormalizeMode};
use ldae_operators::pca::PcaModel;
use ldae_pipeline::Error;

use crate::pca_fit::{absolute, patch_front_decoding, patch_front_of, table_spec, TableWrite};
use crate::spec::Spec;
use crate::Result;
use ldae_pipeline::OperatorSpec;

/// Feature vectors of a dataset's images from a trained encoder or a baseline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FeaturesJob {
    /// Dataset path or `synthetic:N`.
    pub input: String,
    /// How to read it.
    pub source: SourceOptions,
    /// Output table folder.
    pub out: PathBuf,
    /// What to do with work already in `out`.
    #[serde(default)]
    pub write: TableWrite,
    /// What the features are made of.
    pub model: EncoderModel,
    /// The training run folder.
    pub checkpoint: Option<PathBuf>,
    /// Blocks to read (empty: the run's recorded block, else the last encoder block).
    pub blocks: Vec<usize>,
    /// Timestep fed to the network (default: the run's recorded one, else 10).
    pub t: Option<f32>,
    /// Mean over tokens, or every token (default: the run's, else mean).
    pub pooling: Option<Pooling>,
    /// Use the EMA weights (default: as the run records, else no).
    pub ema: Option<bool>,
    /// PCA file (`pca` and `pixels` models; default: the checkpoint's).
    pub pca: Option<PathBuf>,
    /// Latent dimension (`pca` model; default: the checkpoint's).
    pub dim: Option<usize>,
    /// Seed of the `random` model's initialisation.
    pub seed: u64,
    /// Compute device.
    pub device: DeviceName,
    /// Precision of the products.
    pub precision: Option<Precision>,
    /// A timm or transformers model's preprocessing, where it should differ from its own.
    #[serde(default)]
    pub preprocess: PreprocessOverrides,
}

/// Settings that replace a timm or transformers model's recorded eval preprocessing (each left `None` keeps the
/// model's own).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PreprocessOverrides {
    /// Input side in pixels (another than the model's resamples its position embedding).
    pub image_size: Option<usize>,
    /// Fraction of the resized shorter side the centre crop keeps.
    pub crop_pct: Option<f64>,
    /// Resize filter.
    pub interpolation: Option<Interpolation>,
    /// Per-channel mean of `x / 255`.
    pub mean: Option<Vec<f32>>,
    /// Per-channel standard deviation of `x / 255`.
    pub std: Option<Vec<f32>>,
}

impl FeaturesJob {
    /// The pipeline this job runs: the PCA's geometry and normalisation in front of the encoder.
    pub fn spec(&self) -> Result<Spec> {
        // A hub id (`facebook/dinov2-small`) that is not a folder here is looked up in the
        // Hugging Face cache; the job records the snapshot it read.
        let checkpoint = match self.checkpoint.as_deref() {
            Some(c) => Some(absolute(&hub_cache::resolve(c)?)),
            None => None,
        };
        if let Some(dir) = checkpoint.as_deref().filter(|d| is_model_folder(d)) {
            return self.timm_spec(dir);
        }
        if self.preprocess != PreprocessOverrides::default() {
            return Err(Error::invalid(
                "--image-size, --crop-pct, --interpolation, --mean and --std apply to timm and \
                 transformers model folders; an l-DAE run's preprocessing is its PCA's",
            ));
        }
        let network = matches!(self.model, EncoderModel::Ldae | EncoderModel::Random);
        if network && checkpoint.is_none() {
            return Err(Error::invalid(format!(
                "model {} needs a checkpoint (--checkpoint RUN_DIR)",
                ldae_pipeline::names::name_of(&self.model)
            )));
        }
        let pca_path = match (&self.pca, &checkpoint) {
            (Some(p), _) => absolute(p),
            (None, Some(run)) => read_train_config(run)?.pca,
            (None, None) => {
                return Err(Error::invalid(
                    "the pixels and pca baselines need a PCA file (--pca) or a checkpoint",
                ))
            }
        };
        // The run's recorded feature settings fill what the job leaves unset.
        let recorded = match (&checkpoint, network) {
            (Some(run), true) => read_train_config(run)?.features,
            _ => FeatureDefaults::default(),
        };
        let blocks = match (self.blocks.is_empty(), recorded.block) {
            (true, Some(block)) => vec![block],
            _ => self.blocks.clone(),
        };
        let model = PcaModel::load(&pca_path)?;
        let mut operators = patch_front_of(&model)?;
        operators.push(OperatorSpec::new(EncoderConfig {
            model: self.model,
            checkpoint,
            // A random network has no average of its own.
            ema: self
                .ema
                .unwrap_or(recorded.ema && self.model == EncoderModel::Ldae),
            blocks,
            t: self.t.unwrap_or(recorded.t),
            pooling: Some(self.pooling.unwrap_or(recorded.pooling)),
            image_size: None,
            pca: (self.model == EncoderModel::Pca).then_some(pca_path),
            dim: self.dim,
            seed: self.seed,
            device: self.device,
            precision: self.precision,
        }));
        table_spec(&self.input, &self.source, operators, &self.out, self.write)
    }

    /// The pipeline for a timm or transformers model folder: its eval preprocessing (with the
    /// overrides), patches, then the encoder.
    fn timm_spec(&self, dir: &std::path::Path) -> Result<Spec> {
        if self.model != EncoderModel::Ldae {
            return Err(Error::invalid(format!(
                "--kind {} needs an l-DAE run; {} is a timm or transformers model folder",
                ldae_pipeline::names::name_of(&self.model),
                dir.display()
            )));
        }
        if self.t.is_some() || self.ema == Some(true) {
            return Err(Error::invalid(format!(
                "--t and --ema apply to l-DAE runs; {} is a timm or transformers model folder",
                dir.display()
            )));
        }
        let folder = TimmFolder::open(dir)?;
        let recorded = &folder.preprocess;
        let o = &self.preprocess;
        let image_size = o.image_size.unwrap_or(recorded.image_size);
        let interpolation = match &o.interpolation {
            Some(i) => *i,
            None => recorded
                .interpolation
                .parse()
                .map_err(|e: Error| e.context(format!("{}: pretrained_cfg", dir.display())))?,
        };
        let normalize = NormalizeConfig {
            mode: NormalizeMode::MeanStd,
            mean: o.mean.clone().unwrap_or(recorded.mean.clone()),
            std: o.std.clone().unwrap_or(recorded.std.clone()),
        };
        // A transformers processor's resize side holds for its own crop only: another size
        // or crop fraction scales it as timm's `floor(size / crop_pct)`.
        let own_geometry = o.image_size.is_none() && o.crop_pct.is_none();
        let decode = DecodeConfig {
            image_size: image_size as u32,
            channels: recorded.channels as u8,
            crop_pct: Some(o.crop_pct.unwrap_or(recorded.crop_pct)),
            resize_side: recorded
                .resize_side
                .filter(|_| own_geometry)
                .map(|s| s as u32),
            squash: recorded.squash,
            floor_offsets: recorded.floor_offsets,
            interpolation,
            // The patch embedding's stride-p convolution reads the top-left multiple of p.
            trim: (image_size % folder.args.patch) as u32,
            ..DecodeConfig::default()
        };
        let mut operators = patch_front_decoding(decode, folder.args.patch, normalize)?;
        operators.push(OperatorSpec::new(EncoderConfig {
            model: self.model,
            checkpoint: Some(dir.to_path_buf()),
            ema: false,
            blocks: self.blocks.clone(),
            pooling: self.pooling,
            // The encoder reads the top-left multiple of the patch itself, as decode's trim.
            image_size: Some(image_size),
            device: self.device,
            precision: self.precision,
            ..EncoderConfig::default()
        }));
        table_spec(&self.input, &self.source, operators, &self.out, self.write)
    }
}
