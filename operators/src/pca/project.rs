//! PCA project: `patches` `Float32 [N, D]` in, `latents` `Float32 [N, d]` out.

use std::sync::Arc;

use arrow::array::Float32Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, replace_field, tensor_array, tensor_field};
use ldae_pipeline::{Error, Operator, Processed, Result};

use super::model::{LatentScale, PcaModel, Projector};

/// The PCA project operator.
pub struct PcaProject {
    model: PcaModel,
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
        Ok(PcaProject {
            model: model.clone(),
            projector,
            tokens: model.tokens(),
        })
    }
}

impl Operator for PcaProject {
    fn name(&self) -> String {
        "pca_project".into()
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        self.model.check_patches(input, "pca_project")?;
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
