//! PCA inverse: `latents` `Float32 [N, d]` in, `patches` `Float32 [N, D]` out (the rank-d
//! reconstruction).

use std::sync::Arc;

use arrow::array::Float32Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::device::DeviceName;
use ldae_pipeline::columns::{self, replace_field, require_tensor, tensor_array, tensor_field};
use std::path::PathBuf;

use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, ProcessWithSchema, Processed,
    Result, WithSchema,
};

use super::model::{LatentScale, PcaModel, Projector};

/// `pca_inverse`: `latents [N, d]` back to `patches [N, D]` (the rank-d reconstruction). The
/// latents must come from the same model, d and latent scale.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PcaInverseConfig {
    /// The PCA model file (`ldae pca fit`); relative to the spec's folder.
    pub pca: PathBuf,
    /// Latent dimension d (1..=D).
    pub dim: usize,
    /// Latent scale (default: the one recorded in the model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latent_scale: Option<LatentScale>,
    /// Compute device: `cpu`, `cuda` or `cuda:N`.
    #[serde(default)]
    pub device: DeviceName,
}

impl OperatorConfig for PcaInverseConfig {
    const KIND: &'static str = "pca_inverse";
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        let (model, scale, device) =
            super::load_for_spec(&self.pca, self.latent_scale, self.device, ctx)?;
        Ok(Arc::new(PcaInverse::new(&model, self.dim, scale, &device)?))
    }
}
ldae_pipeline::register_operator!(PcaInverseConfig);

/// The PCA inverse operator.
#[derive(Clone)]
pub struct PcaInverse {
    model: PcaModel,
    scale: LatentScale,
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
            .map_err(|e| e.at_plan(PcaInverseConfig::KIND))?;
        Ok(PcaInverse {
            model: model.clone(),
            scale,
            projector,
        })
    }
}

impl PcaInverse {
    /// The output schema for batches of `input`, with every plan-time check.
    fn plan_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let shape = require_tensor(
            input,
            columns::LATENTS,
            &DataType::Float32,
            PcaInverseConfig::KIND,
        )?;
        self.model.check_latent_metadata(
            input,
            self.projector.dim(),
            self.scale,
            PcaInverseConfig::KIND,
        )?;
        if shape.len() != 2 || shape[1] != self.projector.dim() {
            return Err(Error::plan(
                PcaInverseConfig::KIND,
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
}

impl Operator for PcaInverse {
    fn name(&self) -> String {
        PcaInverseConfig::KIND.into()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        Ok(Arc::new(WithSchema {
            schema: self.plan_schema(input)?,
            op: self.clone(),
        }))
    }
}

impl ProcessWithSchema for PcaInverse {
    fn process_with(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<Processed> {
        let schema = schema.clone();
        let shape = require_tensor(
            &schema,
            columns::PATCHES,
            &DataType::Float32,
            PcaInverseConfig::KIND,
        )?;
        let values: Float32Array = columns::tensor_values(&batch, columns::LATENTS)?;
        let patches = self.projector.inverse_slice(values.values(), shape[0])?;
        let patches = tensor_array(Arc::new(Float32Array::from(patches)), &shape)?;
        let index = batch.schema().index_of(columns::LATENTS)?;
        let mut cols = batch.columns().to_vec();
        cols[index] = Arc::new(patches);
        Ok(Processed::ok(RecordBatch::try_new(schema, cols)?))
    }
}
