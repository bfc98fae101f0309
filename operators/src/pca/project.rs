//! PCA project: `patches` `Float32 [N, D]` in, `latents` `Float32 [N, d]` out.

use std::sync::Arc;

use arrow::array::Float32Array;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::device::DeviceName;
use ldae_pipeline::columns::{self, replace_field, tensor_array, tensor_field};
use std::path::PathBuf;

use ldae_pipeline::{
    BoundOperator, BuildContext, Operator, OperatorConfig, ProcessWithSchema, Processed, Result,
    WithSchema,
};

use super::model::{LatentScale, PcaModel, Projector};

/// `pca_project`: Float32 `patches [N, D]` to `latents [N, d]` with a fitted PCA model. The
/// patches must have been made with the model's normalisation, image size and patch size.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PcaProjectConfig {
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

impl OperatorConfig for PcaProjectConfig {
    const KIND: &'static str = "pca_project";
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        let (model, scale, device) =
            super::load_for_spec(&self.pca, self.latent_scale, self.device, ctx)?;
        Ok(Arc::new(PcaProject::new(&model, self.dim, scale, &device)?))
    }
}
ldae_pipeline::register_operator!(PcaProjectConfig);

/// The PCA projection operator.
#[derive(Clone)]
pub struct PcaProject {
    scale: LatentScale,
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
            .map_err(|e| e.at_plan(PcaProjectConfig::KIND))?;
        Ok(PcaProject {
            scale,
            model: model.clone(),
            projector,
            tokens: model.tokens(),
        })
    }
}

impl PcaProject {
    /// The output schema for batches of `input`, with every plan-time check.
    fn plan_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        self.model.check_patches(input, PcaProjectConfig::KIND)?;
        let schema = replace_field(
            input,
            columns::PATCHES,
            tensor_field(
                columns::LATENTS,
                DataType::Float32,
                &[self.tokens, self.projector.dim()],
            ),
        );
        Ok(columns::with_metadata(
            &schema,
            &self.model.latent_metadata(self.projector.dim(), self.scale),
        ))
    }
}

impl Operator for PcaProject {
    fn name(&self) -> String {
        PcaProjectConfig::KIND.into()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        Ok(Arc::new(WithSchema {
            schema: self.plan_schema(input)?,
            op: self.clone(),
        }))
    }
}

impl ProcessWithSchema for PcaProject {
    fn process_with(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<Processed> {
        let schema = schema.clone();
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
