//! PCA inverse: `latents` `Float32 [N, d]` in, `patches` `Float32 [N, D]` out (the rank-d
//! reconstruction).

use std::sync::Arc;

use arrow::array::Float32Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, replace_field, require_tensor, tensor_array, tensor_field};
use ldae_pipeline::{Error, Operator, Processed, Result};

use super::model::{LatentScale, PcaModel, Projector};

/// The PCA inverse operator.
pub struct PcaInverse {
    projector: Projector,
}

impl PcaInverse {
    /// Map latents of dimension `dim` (scaled with `scale`) back to patches of `model`.
    pub fn new(
        model: &PcaModel,
        dim: usize,
        scale: LatentScale,
        device: &candle_core::Device,
    ) -> Result<Self> {
        let projector = model
            .projector(dim, scale, device)
            .map_err(|e| Error::plan("pca_inverse", e.to_string()))?;
        Ok(PcaInverse { projector })
    }
}

impl Operator for PcaInverse {
    fn name(&self) -> String {
        "pca_inverse".into()
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let shape = require_tensor(input, columns::LATENTS, &DataType::Float32, "pca_inverse")?;
        if shape.len() != 2 || shape[1] != self.projector.dim() {
            return Err(Error::plan(
                "pca_inverse",
                format!(
                    "latents are {shape:?}, expected [N, {}]",
                    self.projector.dim()
                ),
            ));
        }
        Ok(replace_field(
            input,
            columns::LATENTS,
            tensor_field(
                columns::PATCHES,
                DataType::Float32,
                &[shape[0], self.projector.patch_dim()],
            ),
        ))
    }

    fn process(&self, batch: RecordBatch) -> Result<Processed> {
        let schema = self.output_schema(&batch.schema())?;
        let shape = require_tensor(&schema, columns::PATCHES, &DataType::Float32, "pca_inverse")?;
        let values: Float32Array = columns::tensor_values(&batch, columns::LATENTS)?;
        let patches = self.projector.inverse_slice(values.values(), shape[0])?;
        let patches = tensor_array(Arc::new(Float32Array::from(patches)), &shape)?;
        let index = batch.schema().index_of(columns::LATENTS)?;
        let mut cols = batch.columns().to_vec();
        cols[index] = Arc::new(patches);
        Ok(Processed::ok(RecordBatch::try_new(schema, cols)?))
    }
}
