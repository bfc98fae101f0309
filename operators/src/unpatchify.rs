//! Unpatchify: a patch-layout column `[N, D]` (clean, noisy or denoised patches) back to an
//! image `[S, S, C]`, optionally mapped back to u8 pixels with the recorded normalisation, so a
//! table of images can be opened and looked at from any Arrow reader.

use std::sync::Arc;

use arrow::array::{Float32Array, UInt8Array};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, require_tensor, tensor_array, tensor_field};
use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, Processed, Result,
};

use crate::normalize::Normalization;
use crate::patchify::PatchGeometry;

/// `unpatchify`: a patch-layout column `[N, D]` to an image column `[S, S, C]`. The patch size
/// and normalisation are read from the schema (written there by `patchify` and `normalize`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct UnpatchifyConfig {
    /// The patch-layout column to turn into images (`patches`, `noisy`, `denoised`, ...).
    pub column: String,
    /// The image column written (replacing `column` at its position).
    pub output: String,
    /// Map values back to u8 pixels (0..=255) with the normalisation recorded in the schema;
    /// `false` keeps the normalised Float32 values.
    pub to_u8: bool,
}

impl Default for UnpatchifyConfig {
    fn default() -> Self {
        UnpatchifyConfig {
            column: columns::PATCHES.to_string(),
            output: columns::PIXELS.to_string(),
            to_u8: true,
        }
    }
}

impl OperatorConfig for UnpatchifyConfig {
    const KIND: &'static str = "unpatchify";
    fn build(&self, _ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        if self.column.is_empty() || self.output.is_empty() {
            return Err(Error::plan(
                UnpatchifyConfig::KIND,
                "column and output must be named",
            ));
        }
        Ok(Arc::new(Unpatchify {
            config: self.clone(),
        }))
    }
}
ldae_pipeline::register_operator!(UnpatchifyConfig);

/// The unpatchify operator.
pub struct Unpatchify {
    config: UnpatchifyConfig,
}

/// Unpatchify bound to its input: the geometry, the normalisation to undo, the output schema.
struct BoundUnpatchify {
    column: String,
    geometry: PatchGeometry,
    normalization: Option<Normalization>,
    schema: SchemaRef,
}

impl Operator for Unpatchify {
    fn name(&self) -> String {
        UnpatchifyConfig::KIND.into()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        let stage = UnpatchifyConfig::KIND;
        let c = &self.config;
        let shape = require_tensor(input, &c.column, &DataType::Float32, stage)?;
        let patch: usize = input
            .metadata()
            .get(columns::META_PATCH_SIZE)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                Error::plan(
                    stage,
                    format!(
                        "the input records no patch size ({}); only patches made by patchify can be put back together",
                        columns::META_PATCH_SIZE
                    ),
                )
            })?;
        let grid = (shape[0] as f64).sqrt().round() as usize;
        if shape.len() != 2 || grid * grid != shape[0] || shape[1] % (patch * patch) != 0 {
            return Err(Error::plan(
                stage,
                format!(
                    "column '{}' is {shape:?}, not patches of side {patch}",
                    c.column
                ),
            ));
        }
        let channels = shape[1] / (patch * patch);
        let geometry = PatchGeometry::new(grid * patch, channels, patch)?;
        let normalization = if c.to_u8 {
            let text = input
                .metadata()
                .get(columns::META_NORMALIZATION)
                .ok_or_else(|| {
                    Error::plan(
                    stage,
                    "the input records no normalisation to undo; set to_u8 = false to keep floats",
                )
                })?;
            Some(serde_json::from_str(text).map_err(|e| Error::plan(stage, e.to_string()))?)
        } else {
            None
        };
        let element = if c.to_u8 {
            DataType::UInt8
        } else {
            DataType::Float32
        };
        let s = geometry.size;
        let field = tensor_field(&c.output, element, &[s, s, channels]);
        let mut fields: Vec<_> = input.fields().iter().map(|f| f.as_ref().clone()).collect();
        let index = input.index_of(&c.column)?;
        fields[index] = field;
        if fields.iter().filter(|f| f.name() == &c.output).count() > 1 {
            return Err(Error::plan(
                stage,
                format!("the input already has a column '{}'", c.output),
            ));
        }
        let schema = Arc::new(Schema::new_with_metadata(fields, input.metadata().clone()));
        Ok(Arc::new(BoundUnpatchify {
            column: c.column.clone(),
            geometry,
            normalization,
            schema,
        }))
    }
}

impl BoundOperator for BoundUnpatchify {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&self, batch: RecordBatch) -> Result<Processed> {
        let g = self.geometry;
        let values: Float32Array = columns::tensor_values(&batch, &self.column)?;
        let per_image = g.size * g.size * g.channels;
        let mut image = vec![0f32; values.len()];
        for (patches, out) in values
            .values()
            .chunks_exact(per_image)
            .zip(image.chunks_exact_mut(per_image))
        {
            g.unpatchify(patches, out);
        }
        let shape = [g.size, g.size, g.channels];
        let array = match &self.normalization {
            Some(n) => {
                let pixels: Vec<u8> = image
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| n.to_u8(v, i % g.channels))
                    .collect();
                tensor_array(Arc::new(UInt8Array::from(pixels)), &shape)?
            }
            None => tensor_array(Arc::new(Float32Array::from(image)), &shape)?,
        };
        let index = batch.schema().index_of(&self.column)?;
        let mut cols = batch.columns().to_vec();
        cols[index] = Arc::new(array);
        Ok(Processed::ok(RecordBatch::try_new(
            self.schema.clone(),
            cols,
        )?))
    }
}
