//! The features job (`ldae features`): images -> patches -> encoder -> Parquet.

use std::path::PathBuf;

use ldae_datasets::SourceOptions;
use ldae_model::denoiser::Precision;
use ldae_model::encoder::{EncoderConfig, EncoderModel, FeatureDefaults, Pooling};
use ldae_model::train::trainer::read_train_config;
use ldae_operators::pca::PcaModel;
use ldae_pipeline::Error;

use crate::pca_fit::{absolute, patch_front_of, table_spec, TableWrite};
use crate::spec::{Component, Spec};
use crate::Result;

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
    pub device: String,
    /// Precision of the products.
    pub precision: Option<Precision>,
}

impl FeaturesJob {
    /// The pipeline this job runs: the PCA's geometry and normalisation in front of the encoder.
    pub fn spec(&self) -> Result<Spec> {
        let checkpoint = self.checkpoint.as_deref().map(absolute);
        let network = matches!(self.model, EncoderModel::Ldae | EncoderModel::Random);
        if network && checkpoint.is_none() {
            return Err(Error::msg(format!(
                "model {} needs a checkpoint (--checkpoint RUN_DIR)",
                ldae_pipeline::names::name_of(&self.model)
            )));
        }
        let pca_path = match (&self.pca, &checkpoint) {
            (Some(p), _) => absolute(p),
            (None, Some(run)) => read_train_config(run)?.pca,
            (None, None) => {
                return Err(Error::msg(
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
        operators.push(Component::operator(&EncoderConfig {
            model: self.model,
            checkpoint,
            // A random network has no average of its own.
            ema: self
                .ema
                .unwrap_or(recorded.ema && self.model == EncoderModel::Ldae),
            blocks,
            t: self.t.unwrap_or(recorded.t),
            pooling: self.pooling.unwrap_or(recorded.pooling),
            pca: (self.model == EncoderModel::Pca).then_some(pca_path),
            dim: self.dim,
            seed: self.seed,
            device: self.device.clone(),
            precision: self.precision,
        })?);
        table_spec(&self.input, &self.source, operators, &self.out, self.write)
    }
}
