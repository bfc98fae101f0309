//! Encoder features: clean `patches` `[N, D]` in, feature columns out.
//!
//! Models: `ldae`/`random` (the denoiser's tokens after one or several blocks, at a fixed noise
//! level t, averaged over tokens or kept per token — a trained network, or the same network
//! randomly initialised with a seed), `pixels` (the normalised pixels, flattened) and `pca` (the
//! PCA latents, flattened). Images go through the network in chunks of a fixed size (the last
//! one padded), so every matrix product has the same shape whatever the batch size, and an
//! image's features are bit-for-bit the same in any batch and with any thread count.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, Float32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use candle_core::{Device, Tensor};

use ldae_operators::device::DeviceName;
use ldae_operators::pca::{PcaModel, Projector};
use ldae_pipeline::columns::{self, require_tensor, tensor_array, tensor_field};
use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, ProcessWithSchema, Processed,
    Result, WithSchema,
};

use crate::chunks::run_chunks;
pub use crate::chunks::{chunk_images, CPU_CHUNK, GPU_CHUNK};
use crate::denoiser::{Denoiser, Precision};
pub use crate::pooling::Pooling;
pub use crate::run_folder::FeatureDefaults;
use crate::run_folder::{default_t, load_network, read_train_config};
use crate::vit::{TimmFolder, Vit};

/// What a feature vector is made of.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum EncoderModel {
    /// The trained l-DAE network of `checkpoint`.
    #[default]
    Ldae,
    /// The same network, randomly initialised with `seed` (a baseline).
    Random,
    /// The normalised pixels, flattened (a baseline).
    Pixels,
    /// The PCA latents, flattened (a baseline).
    Pca,
}

/// `encoder`: clean `patches [N, D]` to `features` (or, with several `blocks`, one column
/// `features_K` per block K, all from one pass through the network).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EncoderConfig {
    /// `ldae` (the trained network), `random` (the network, randomly initialised), `pixels` or
    /// `pca`.
    #[serde(default)]
    pub model: EncoderModel,
    /// The training run folder (`ldae` and `random`: the network's sizes; `pca`: its PCA and d),
    /// or, for `ldae`, a timm / Hugging Face ViT folder (`config.json` + `model.safetensors`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint: Option<PathBuf>,
    /// Use the run's EMA weights.
    #[serde(default)]
    pub ema: bool,
    /// Blocks to read the tokens after, 1 = the first (default: the last encoder block; for a
    /// timm model, its last block).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<usize>,
    /// The continuous timestep fed to the network.
    #[serde(default = "default_t")]
    pub t: f32,
    /// `mean` over tokens (`[width]`), `grid2` / `grid4` (the average of each cell of a 2 x 2 /
    /// 4 x 4 grid over the token grid, `[4 width]` / `[16 width]`), `none` (`[N, width]`),
    /// `token` (a timm model's class token), `token_mean` (the class token and the patch mean
    /// side by side, `[2 width]`), `map` (a timm model's attention pooling) or
    /// `head` (a timm model's output, `[num_classes]`). Default: the model's own (`mean` for
    /// l-DAE networks; a timm model's `global_pool`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<Pooling>,
    /// A timm model's input side in pixels (default: the model's own; another size resamples
    /// the position embedding as timm does). A side the patch does not divide is read as the
    /// patch embedding reads it: its top-left multiple of the patch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_size: Option<usize>,
    /// `pca` model: the PCA file (default: the checkpoint's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pca: Option<PathBuf>,
    /// `pca` model: latent dimension (default: the checkpoint's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dim: Option<usize>,
    /// `random` model: the initialisation seed.
    #[serde(default)]
    pub seed: u64,
    /// Compute device: `cpu`, `cuda` or `cuda:N`.
    #[serde(default)]
    pub device: DeviceName,
    /// Precision of the products: `f32` or `bf16` (default: bf16 on a GPU, f32 on CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        EncoderConfig {
            model: EncoderModel::Ldae,
            checkpoint: None,
            ema: false,
            blocks: Vec::new(),
            t: default_t(),
            pooling: None,
            image_size: None,
            pca: None,
            dim: None,
            seed: 0,
            device: DeviceName::Cpu,
            precision: None,
        }
    }
}

impl OperatorConfig for EncoderConfig {
    const KIND: &'static str = "encoder";
    /// The network runs on chunks of [`chunk_images`] images and pads the last one.
    fn batch_multiple(&self) -> Option<usize> {
        Some(chunk_images(self.device == DeviceName::Cpu))
    }
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        let stage = EncoderConfig::KIND;
        let device = self.device.open()?;
        let precision = self.precision.unwrap_or(Precision::default_for(&device));
        let checkpoint = self.checkpoint.as_ref().map(|c| ctx.resolve(c));
        if let (EncoderModel::Ldae | EncoderModel::Random, Some(dir)) = (self.model, &checkpoint) {
            if crate::vit::is_model_folder(dir) {
                let kind = self.timm_kind(dir, device, precision)?;
                return Ok(Arc::new(Encoder { kind }));
            }
        }
        let network = match (self.model, &checkpoint) {
            (EncoderModel::Ldae | EncoderModel::Random, Some(run)) => {
                let seed = (self.model == EncoderModel::Random).then_some(self.seed);
                Some(load_network(run, &device, self.ema, precision, seed)?)
            }
            (EncoderModel::Ldae | EncoderModel::Random, None) => {
                return Err(Error::plan(
                    stage,
                    "models ldae and random need a checkpoint",
                ))
            }
            _ => None,
        };
        let kind = match self.model {
            EncoderModel::Ldae | EncoderModel::Random => {
                let (config, model) = network.ok_or_else(|| Error::internal("no network"))?;
                let blocks =
                    self.blocks_or(model.config().encoder_depth, model.config().depth())?;
                let pooling = self.pooling.unwrap_or_default();
                if let Some(needs) = pooling.needs_timm_model() {
                    return Err(Error::plan(
                        stage,
                        format!(
                            "pooling {} needs {needs}; l-DAE networks have none",
                            ldae_pipeline::names::name_of(&pooling)
                        ),
                    ));
                }
                FeatureKind::Network {
                    pca: PcaModel::load(&config.pca)?,
                    model: Arc::new(model),
                    blocks,
                    t: self.t,
                    pooling,
                    device,
                }
            }
            EncoderModel::Pixels => FeatureKind::Pixels,
            EncoderModel::Pca => {
                let from_run = match &checkpoint {
                    Some(run) => Some(read_train_config(run)?),
                    None => None,
                };
                let pca_path = match (&self.pca, &from_run) {
                    (Some(p), _) => ctx.resolve(p),
                    (None, Some(c)) => c.pca.clone(),
                    (None, None) => {
                        return Err(Error::plan(stage, "model pca needs pca (or checkpoint)"))
                    }
                };
                let dim = self
                    .dim
                    .or(from_run.map(|c| c.dim))
                    .ok_or_else(|| Error::plan(stage, "model pca needs dim (or checkpoint)"))?;
                let pca = PcaModel::load(&pca_path)?;
                let projector = pca.projector(dim, pca.meta.latent_scale, &device)?;
                FeatureKind::Pca { pca, projector }
            }
        };
        Ok(Arc::new(Encoder { kind }))
    }
}
ldae_pipeline::register_operator!(EncoderConfig);

impl EncoderConfig {
    /// The blocks asked for (`default` when none), each checked to be between 1 and `depth`.
    fn blocks_or(&self, default: usize, depth: usize) -> Result<Vec<usize>> {
        let blocks = match self.blocks.is_empty() {
            true => vec![default],
            false => self.blocks.clone(),
        };
        match blocks.iter().find(|&&b| b == 0 || b > depth) {
            Some(b) => Err(Error::plan(
                EncoderConfig::KIND,
                format!("block {b} is not between 1 and {depth}"),
            )),
            None => Ok(blocks),
        }
    }

    /// The feature kind of a timm model folder.
    fn timm_kind(&self, dir: &Path, device: Device, precision: Precision) -> Result<FeatureKind> {
        let stage = EncoderConfig::KIND;
        if self.model == EncoderModel::Random {
            return Err(Error::plan(
                stage,
                format!(
                    "model random needs an l-DAE training run; {} is a timm or transformers model folder",
                    dir.display()
                ),
            ));
        }
        if self.ema {
            return Err(Error::plan(
                stage,
                format!(
                    "{} is a timm or transformers model folder: it has no EMA weights",
                    dir.display()
                ),
            ));
        }
        let folder = TimmFolder::open(dir)?;
        let args = &folder.args;
        // The patch embedding (a stride-p convolution) reads the top-left multiple of p of an
        // input whose side p does not divide (SigLIP so400m/14 at 384 px: 378).
        let input = self.image_size.unwrap_or(folder.preprocess.image_size);
        let size = input - input % args.patch;
        if size == 0 {
            return Err(Error::plan(
                stage,
                format!(
                    "image size {input} is smaller than the model's patch {}",
                    args.patch
                ),
            ));
        }
        let blocks = self.blocks_or(args.depth, args.depth)?;
        let pooling = folder.pooling(self.pooling, &blocks)?;
        let model = Vit::load(&folder, size / args.patch, &device, precision)?;
        Ok(FeatureKind::Vit {
            model: Arc::new(model),
            blocks,
            pooling,
            image_size: size,
            device,
        })
    }
}

/// What the operator computes.
#[derive(Clone)]
enum FeatureKind {
    /// The denoiser's tokens after `blocks`, at timestep `t`.
    Network {
        /// The PCA the network was trained with (its patches must match).
        pca: PcaModel,
        model: Arc<Denoiser>,
        blocks: Vec<usize>,
        t: f32,
        pooling: Pooling,
        device: Device,
    },
    /// A timm ViT's tokens after `blocks`.
    Vit {
        model: Arc<Vit>,
        blocks: Vec<usize>,
        pooling: Pooling,
        /// The input side the position embedding is sampled for.
        image_size: usize,
        device: Device,
    },
    Pixels,
    Pca {
        pca: PcaModel,
        projector: Projector,
    },
}

/// The encoder operator.
#[derive(Clone)]
pub struct Encoder {
    kind: FeatureKind,
}

/// The name of the feature column of `block` when `count` blocks are asked for.
pub fn feature_column(block: usize, count: usize) -> String {
    if count == 1 {
        columns::FEATURES.to_string()
    } else {
        format!("{}_{block}", columns::FEATURES)
    }
}

impl Encoder {
    /// The output columns `(name, shape)` for patches of `shape`.
    fn outputs(&self, shape: &[usize]) -> Vec<(String, Vec<usize>)> {
        let per_block = |blocks: &[usize], feature: Vec<usize>| -> Vec<(String, Vec<usize>)> {
            blocks
                .iter()
                .map(|&b| (feature_column(b, blocks.len()), feature.clone()))
                .collect()
        };
        match &self.kind {
            FeatureKind::Network {
                model,
                blocks,
                pooling,
                ..
            } => per_block(
                blocks,
                pooling.feature_shape(shape[0], model.config().width),
            ),
            FeatureKind::Vit {
                model,
                blocks,
                pooling,
                ..
            } => {
                let width = match pooling {
                    Pooling::Head => model.args().num_classes,
                    _ => model.args().width,
                };
                per_block(blocks, pooling.feature_shape(model.tokens(), width))
            }
            FeatureKind::Pixels => vec![(columns::FEATURES.into(), vec![shape[0] * shape[1]])],
            FeatureKind::Pca { projector, .. } => {
                vec![(columns::FEATURES.into(), vec![shape[0] * projector.dim()])]
            }
        }
    }

    /// Features of a network: `values` are rows of `shape` patches; each output column gets
    /// what `forward` returns for its block (pooled `[chunk, W]`, or tokens `[chunk, L, W]`
    /// that `pooling` reduces to grid cells when it asks for them).
    fn network(
        &self,
        values: &[f32],
        shape: &[usize],
        outputs: &[(String, Vec<usize>)],
    ) -> Result<Vec<Vec<f32>>> {
        use crate::denoiser::fused;
        match &self.kind {
            FeatureKind::Network {
                model,
                blocks,
                t,
                pooling,
                device,
                ..
            } => {
                let forward = |x: &Tensor| {
                    let ts = Tensor::full(*t, x.dim(0)?, device)?;
                    model
                        .tokens_at(x, &ts, blocks)?
                        .iter()
                        .map(|h| match pooling {
                            Pooling::Mean => fused::mean_tokens(h),
                            _ => Ok(h.clone()),
                        })
                        .collect()
                };
                let width = model.config().width;
                run_chunks(values, shape, outputs, device, *pooling, width, forward)
            }
            FeatureKind::Vit {
                model,
                blocks,
                pooling,
                device,
                ..
            } => {
                let depth = model.args().depth;
                let prefix = model.args().prefix_tokens();
                let forward = |x: &Tensor| {
                    let tokens = model.tokens_at(x, blocks)?;
                    tokens
                        .iter()
                        .zip(blocks)
                        .map(|(h, &b)| match pooling {
                            Pooling::Token => model.class_token(h, b == depth),
                            Pooling::TokenMean => model.token_mean(h, b == depth),
                            Pooling::Map => model.attention_pool(h),
                            Pooling::Head => model.head(h),
                            Pooling::Mean => model.mean_patch_tokens(h, b == depth),
                            Pooling::None => Ok(h.clone()),
                            Pooling::Grid2 | Pooling::Grid4 => {
                                h.narrow(1, prefix, h.dim(1)? - prefix)
                            }
                        })
                        .collect()
                };
                let width = model.args().width;
                run_chunks(values, shape, outputs, device, *pooling, width, forward)
            }
            _ => Err(Error::internal("not a network")),
        }
    }
}

impl Encoder {
    /// The output schema for batches of `input`, with every plan-time check.
    fn plan_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let stage = EncoderConfig::KIND;
        let shape = require_tensor(input, columns::PATCHES, &DataType::Float32, stage)?;
        match &self.kind {
            FeatureKind::Network {
                pca,
                model,
                pooling,
                ..
            } => {
                // The network was trained on patches made like its PCA's: same normalisation,
                // image size and patch size.
                pca.check_patch_metadata(input, stage)?;
                let c = model.config();
                if shape != [c.tokens(), c.patch_dim] {
                    return Err(Error::plan(
                        stage,
                        format!(
                            "patches are {shape:?}, the network takes [{}, {}]",
                            c.tokens(),
                            c.patch_dim
                        ),
                    ));
                }
                if let Some(k) = pooling.grid() {
                    let side = crate::pooling::grid_side(c.tokens()).unwrap_or(0);
                    if side < k {
                        return Err(Error::plan(
                            stage,
                            format!(
                                "pooling {} needs a square token grid of at least {k} x {k}; \
                                 the network has {} tokens",
                                ldae_pipeline::names::name_of(pooling),
                                c.tokens()
                            ),
                        ));
                    }
                }
            }
            FeatureKind::Vit {
                model,
                pooling,
                image_size,
                ..
            } => {
                use ldae_pipeline::columns::{check_metadata, META_IMAGE_SIZE, META_PATCH_SIZE};
                let a = model.args();
                let what = format!("the timm model (input {image_size}, patch {})", a.patch);
                let expected = [
                    (META_IMAGE_SIZE, image_size.to_string()),
                    (META_PATCH_SIZE, a.patch.to_string()),
                ];
                check_metadata(input, &expected, stage, &what)?;
                let expected = [model.grid() * model.grid(), a.patch * a.patch * a.in_chans];
                if shape != expected {
                    return Err(Error::plan(
                        stage,
                        format!("patches are {shape:?}, the timm model takes {expected:?}"),
                    ));
                }
                if let Some(k) = pooling.grid() {
                    if model.grid() < k {
                        return Err(Error::plan(
                            stage,
                            format!(
                                "pooling grid{k}: the token grid is only {0} x {0}",
                                model.grid()
                            ),
                        ));
                    }
                }
            }
            FeatureKind::Pca { pca, .. } => {
                pca.check_patches(input, stage)?;
            }
            FeatureKind::Pixels => {}
        }
        let mut fields: Vec<Field> = input
            .fields()
            .iter()
            .filter(|f| f.name() != columns::PATCHES)
            .map(|f| f.as_ref().clone())
            .collect();
        let index = input.index_of(columns::PATCHES)?;
        for (i, (name, s)) in self.outputs(&shape).into_iter().enumerate() {
            fields.insert(index + i, tensor_field(&name, DataType::Float32, &s));
        }
        Ok(Arc::new(Schema::new_with_metadata(
            fields,
            input.metadata().clone(),
        )))
    }
}

impl Operator for Encoder {
    fn name(&self) -> String {
        EncoderConfig::KIND.into()
    }

    /// One worker when a network runs on a GPU: the card runs one call at a time anyway, and
    /// each worker would hold a chunk's activations there (gigabytes for `base`). One worker
    /// for a timm ViT on the CPU too: its products are large enough to use every thread within
    /// one chunk, and each further worker holds another chunk's activations (ViT-B/16 at 224
    /// px, 2 cores: 1.30-1.32 GB and 16.7-17.2 s for 128 photos with one worker, 1.78-1.91 GB
    /// and 17.9-18.9 s with two).
    fn parallel(&self) -> bool {
        match &self.kind {
            FeatureKind::Network { device, .. } => device.is_cpu(),
            FeatureKind::Vit { .. } => false,
            FeatureKind::Pixels | FeatureKind::Pca { .. } => true,
        }
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        Ok(Arc::new(WithSchema {
            schema: self.plan_schema(input)?,
            op: self.clone(),
        }))
    }
}

impl ProcessWithSchema for Encoder {
    fn process_with(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<Processed> {
        let schema = schema.clone();
        let shape = require_tensor(
            &batch.schema(),
            columns::PATCHES,
            &DataType::Float32,
            EncoderConfig::KIND,
        )?;
        let values: Float32Array = columns::tensor_values(&batch, columns::PATCHES)?;
        let outputs = self.outputs(&shape);
        let features = match &self.kind {
            FeatureKind::Network { .. } | FeatureKind::Vit { .. } => {
                self.network(values.values(), &shape, &outputs)?
            }
            FeatureKind::Pixels => vec![values.values().to_vec()],
            FeatureKind::Pca { projector, .. } => {
                vec![projector.project_slice(values.values(), shape[0])?]
            }
        };
        let index = batch.schema().index_of(columns::PATCHES)?;
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        cols.remove(index);
        for (i, (f, (_, s))) in features.into_iter().zip(&outputs).enumerate() {
            let array = tensor_array(Arc::new(Float32Array::from(f)), s)?;
            cols.insert(index + i, Arc::new(array));
        }
        Ok(Processed::ok(RecordBatch::try_new(schema, cols)?))
    }
}
