//! Denoise: the trained network's prediction of the clean patches, from `noisy` `[N, D]` and
//! `sigma`, written as a column `denoised` `[N, D]` (patch layout, so `unpatchify` can turn it
//! into pictures). Images go through the network in fixed-size chunks, so a row's prediction
//! does not depend on the batch size or thread count.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{AsArray, Float32Array};
use arrow::datatypes::{DataType, Float32Type, SchemaRef};
use arrow::record_batch::RecordBatch;
use candle_core::{DType, Device, Tensor};

use ldae_operators::device::DeviceName;
use ldae_operators::pca::{candle_err, PcaModel};
use ldae_pipeline::columns::{self, replace_field, require_tensor, tensor_array, tensor_field};
use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, ProcessWithSchema, Processed,
    Result, WithSchema,
};

use crate::denoiser::model::timesteps;
use crate::denoiser::{Denoiser, Precision};
use crate::encoder::chunk_images;
use crate::train::trainer::{load_network, TrainConfig};

/// Name of the column the denoise operator writes.
pub const DENOISED: &str = "denoised";

/// `denoise`: the trained network's prediction of the clean patches for each row's `noisy`
/// patches at its `sigma`, as a column `denoised [N, D]`. The noise must have been made with
/// the checkpoint's PCA model, d and latent scale (checked when the plan is built).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DenoiseConfig {
    /// The training run folder (config.json, checkpoint/).
    pub checkpoint: PathBuf,
    /// Use the run's EMA weights.
    #[serde(default)]
    pub ema: bool,
    /// Compute device: `cpu`, `cuda` or `cuda:N`.
    #[serde(default)]
    pub device: DeviceName,
    /// Precision of the products: `f32` or `bf16` (default: bf16 on a GPU, f32 on CPU).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<Precision>,
}

impl OperatorConfig for DenoiseConfig {
    const KIND: &'static str = "denoise";
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        let device = self.device.open()?;
        let precision = self.precision.unwrap_or(Precision::default_for(&device));
        let (config, model) = load_network(
            &ctx.resolve(&self.checkpoint),
            &device,
            self.ema,
            precision,
            None,
        )?;
        let pca = PcaModel::load(&config.pca)?;
        Ok(Arc::new(Denoise {
            config,
            pca,
            model: Arc::new(model),
            device,
        }))
    }
}
ldae_pipeline::register_operator!(DenoiseConfig);

/// The denoise operator.
#[derive(Clone)]
pub struct Denoise {
    config: TrainConfig,
    pca: PcaModel,
    model: Arc<Denoiser>,
    device: Device,
}

impl Denoise {
    /// The output schema for batches of `input`, with every plan-time check.
    fn plan_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let stage = DenoiseConfig::KIND;
        let shape = require_tensor(input, columns::NOISY, &DataType::Float32, stage)?;
        match input.field_with_name(columns::SIGMA).map(|f| f.data_type()) {
            Ok(DataType::Float32) => {}
            _ => {
                return Err(Error::plan(
                    stage,
                    "needs a Float32 'sigma' column (put a noise operator before it)",
                ))
            }
        }
        // The noise must come from the checkpoint's PCA (checked first: the sharper message).
        self.pca
            .check_latent_metadata(input, self.config.dim, self.config.latent_scale, stage)?;
        self.pca.check_patch_metadata(input, stage)?;
        let c = self.model.config();
        if shape != [c.tokens(), c.patch_dim] {
            return Err(Error::plan(
                stage,
                format!(
                    "noisy patches are {shape:?}, the network takes [{}, {}]",
                    c.tokens(),
                    c.patch_dim
                ),
            ));
        }
        if input.field_with_name(DENOISED).is_ok() {
            return Err(Error::plan(
                stage,
                "the input already has a 'denoised' column",
            ));
        }
        Ok(replace_field(
            input,
            DENOISED,
            tensor_field(DENOISED, DataType::Float32, &shape),
        ))
    }
}

impl Operator for Denoise {
    fn name(&self) -> String {
        DenoiseConfig::KIND.into()
    }

    /// One worker on a GPU, as the encoder (the card runs one call at a time anyway).
    fn parallel(&self) -> bool {
        self.device.is_cpu()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        Ok(Arc::new(WithSchema {
            schema: self.plan_schema(input)?,
            op: self.clone(),
        }))
    }
}

impl ProcessWithSchema for Denoise {
    fn process_with(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<Processed> {
        let schema = schema.clone();
        let c = self.model.config();
        let (tokens, dim) = (c.tokens(), c.patch_dim);
        let per_image = tokens * dim;
        let noisy: Float32Array = columns::tensor_values(&batch, columns::NOISY)?;
        let sigma = batch
            .column_by_name(columns::SIGMA)
            .ok_or_else(|| Error::data("missing sigma column"))?
            .as_primitive::<Float32Type>()
            .values()
            .to_vec();
        let mut out = Vec::with_capacity(noisy.len());
        let images = chunk_images(self.device.is_cpu());
        for (chunk, sigmas) in noisy
            .values()
            .chunks(images * per_image)
            .zip(sigma.chunks(images))
        {
            let n = sigmas.len();
            let mut x = chunk.to_vec();
            x.resize(images * per_image, 0.0);
            let mut s = sigmas.to_vec();
            s.resize(images, 0.0);
            let x = Tensor::from_vec(x, (images, tokens, dim), &self.device).map_err(candle_err)?;
            let t = timesteps(&s, DType::F32, &self.device).map_err(candle_err)?;
            let y = self
                .model
                .forward(&x, &t)
                .and_then(|y| y.narrow(0, 0, n))
                .and_then(|y| y.to_dtype(DType::F32))
                .and_then(|y| y.flatten_all())
                .and_then(|y| y.to_vec1::<f32>())
                .map_err(candle_err)?;
            out.extend(y);
        }
        let denoised = tensor_array(Arc::new(Float32Array::from(out)), &[tokens, dim])?;
        let mut cols = batch.columns().to_vec();
        cols.push(Arc::new(denoised));
        Ok(Processed::ok(RecordBatch::try_new(schema, cols)?))
    }
}
