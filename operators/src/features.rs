//! Features: clean `patches` `[N, D]` in, `features` `Float32 [F]` out.
//!
//! Kinds: `ldae`/`random` (the denoiser's tokens after block K, default the last encoder block,
//! averaged over tokens, at a fixed noise level t — a trained or a seeded randomly initialised
//! network), `pixels` (the normalised pixels, flattened) and `pca` (the PCA latents, flattened).
//! Images go through the network in chunks of a fixed size (the last one padded), so every matrix
//! product has the same shape whatever the batch size, and an image's features are bit-for-bit
//! the same in any batch and with any thread count.

use std::sync::Arc;

use arrow::array::Float32Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use candle_core::{DType, Device, Tensor};

use ldae_pipeline::columns::{self, replace_field, require_tensor, tensor_array, tensor_field};
use ldae_pipeline::{Error, Operator, Processed, Result};

use crate::denoiser::Denoiser;
use crate::pca::{candle_err, Projector};

/// Images per network call (the padding unit that keeps results independent of batching).
pub const CHUNK: usize = 32;

/// What a feature vector is made of.
pub enum FeatureKind {
    /// The denoiser's pooled tokens after `block` blocks, at timestep `t`.
    Network {
        /// The network (trained or randomly initialised).
        model: Arc<Denoiser>,
        /// Blocks to run (default: the encoder).
        block: usize,
        /// Continuous timestep fed to the network.
        t: f32,
        /// Where to compute.
        device: Device,
    },
    /// The normalised pixels (patches flattened).
    Pixels,
    /// The flattened PCA latents.
    Pca(Projector),
}

/// The features operator.
pub struct Features {
    kind: FeatureKind,
}

impl Features {
    /// A features operator of `kind`.
    pub fn new(kind: FeatureKind) -> Self {
        Features { kind }
    }

    fn width(&self, shape: &[usize]) -> usize {
        match &self.kind {
            FeatureKind::Network { model, .. } => model.config().width,
            FeatureKind::Pixels => shape[0] * shape[1],
            FeatureKind::Pca(p) => shape[0] * p.dim(),
        }
    }

    fn network(
        &self,
        model: &Denoiser,
        block: usize,
        t: f32,
        device: &Device,
        values: &[f32],
        shape: &[usize],
    ) -> Result<Vec<f32>> {
        let per_image = shape[0] * shape[1];
        let rows = values.len() / per_image;
        let mut out = Vec::with_capacity(rows * model.config().width);
        for chunk in values.chunks(CHUNK * per_image) {
            let n = chunk.len() / per_image;
            let mut padded = chunk.to_vec();
            padded.resize(CHUNK * per_image, 0.0);
            let x = Tensor::from_vec(padded, (CHUNK, shape[0], shape[1]), device)
                .map_err(candle_err)?;
            let ts = Tensor::full(t, CHUNK, device).map_err(candle_err)?;
            let f = model
                .features(&x, &ts, Some(block))
                .and_then(|f| f.narrow(0, 0, n))
                .and_then(|f| f.to_dtype(DType::F32))
                .and_then(|f| f.flatten_all())
                .and_then(|f| f.to_vec1::<f32>())
                .map_err(candle_err)?;
            out.extend(f);
        }
        Ok(out)
    }
}

impl Operator for Features {
    fn name(&self) -> String {
        "features".into()
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let shape = require_tensor(input, columns::PATCHES, &DataType::Float32, "features")?;
        if let FeatureKind::Network { model, block, .. } = &self.kind {
            let c = model.config();
            if shape != [c.tokens(), c.patch_dim] {
                return Err(Error::plan(
                    "features",
                    format!(
                        "patches are {shape:?}, the network takes [{}, {}]",
                        c.tokens(),
                        c.patch_dim
                    ),
                ));
            }
            if *block == 0 || *block > c.depth() {
                return Err(Error::plan(
                    "features",
                    format!("block {block} is not between 1 and {}", c.depth()),
                ));
            }
        }
        if let FeatureKind::Pca(p) = &self.kind {
            if shape[1] != p.patch_dim() {
                return Err(Error::plan(
                    "features",
                    "patches do not match the PCA model",
                ));
            }
        }
        Ok(replace_field(
            input,
            columns::PATCHES,
            tensor_field(columns::FEATURES, DataType::Float32, &[self.width(&shape)]),
        ))
    }

    fn process(&self, batch: RecordBatch) -> Result<Processed> {
        let schema = self.output_schema(&batch.schema())?;
        let shape = require_tensor(
            &batch.schema(),
            columns::PATCHES,
            &DataType::Float32,
            "features",
        )?;
        let values: Float32Array = columns::tensor_values(&batch, columns::PATCHES)?;
        let features = match &self.kind {
            FeatureKind::Network {
                model,
                block,
                t,
                device,
            } => self.network(model, *block, *t, device, values.values(), &shape)?,
            FeatureKind::Pixels => values.values().to_vec(),
            FeatureKind::Pca(p) => p.project_slice(values.values(), shape[0])?,
        };
        let array = tensor_array(
            Arc::new(Float32Array::from(features)),
            &[self.width(&shape)],
        )?;
        let index = batch.schema().index_of(columns::PATCHES)?;
        let mut cols = batch.columns().to_vec();
        cols[index] = Arc::new(array);
        Ok(Processed::ok(RecordBatch::try_new(schema, cols)?))
    }
}
