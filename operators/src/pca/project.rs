//! PCA project: `patches` `Float32 [N, D]` in, `latents` `Float32 [N, d]` out.

use std::sync::Arc;

use arrow::array::Float32Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, replace_field, require_tensor, tensor_array, tensor_field};
use ldae_pipeline::{Error, Operator, Processed, Result};

use super::model::{LatentScale, PcaModel, Projector};

/// The PCA project operator.
pub struct PcaProject {
    projector: Projector,
    tokens: usize,
}

impl PcaProject {
    /// Project onto the first `dim` components of `model` with `scale`, computing on `device`.
    pub fn new(
        model: &PcaModel,
        dim: usize,
        scale: LatentScale,
        device: &candle_core::Device,
    ) -> Result<Self> {
        let projector = model
            .projector(dim, scale, device)
            .map_err(|e| Error::plan("pca_project", e.to_string()))?;
        let m = &model.meta;
        Ok(PcaProject {
            projector,
            tokens: (m.image_size / m.patch_size).pow(2),
        })
    }
}

impl Operator for PcaProject {
    fn name(&self) -> String {
        "pca_project".into()
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let shape = require_tensor(input, columns::PATCHES, &DataType::Float32, "pca_project")?;
        let expected = [self.tokens, self.projector.patch_dim()];
        if shape != expected {
            return Err(Error::plan(
                "pca_project",
                format!("patches are {shape:?} but the PCA model was fitted on {expected:?} (image size, patch size or channels differ)"),
            ));
        }
        Ok(replace_field(
            input,
            columns::PATCHES,
            tensor_field(
                columns::LATENTS,
                DataType::Float32,
                &[self.tokens, self.projector.dim()],
            ),
        ))
    }

    fn process(&self, batch: RecordBatch) -> Result<Processed> {
        let schema = self.output_schema(&batch.schema())?;
        let values: Float32Array = columns::tensor_values(&batch, columns::PATCHES)?;
        let latents = self.projector.project_slice(values.values(), self.tokens)?;
        let latents = tensor_array(
            Arc::new(Float32Array::from(latents)),
            &[self.tokens, self.projector.dim()],
        )?;
        let index = batch.schema().index_of(columns::PATCHES)?;
        let mut cols = batch.columns().to_vec();
        cols[index] = Arc::new(latents);
        Ok(Processed::ok(RecordBatch::try_new(schema, cols)?))
    }
}
