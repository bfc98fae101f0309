//! Normalise: `pixels` `UInt8 [H, W, C]` in, `pixels` `Float32 [H, W, C]` out.

use std::sync::Arc;

use arrow::array::{Float32Array, UInt8Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, replace_field, require_tensor, tensor_array, tensor_field};
use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, Processed, Result,
};

/// How pixel values are mapped to floats.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode")]
pub enum Normalization {
    /// `x / 127.5 - 1`, so pixels lie in [-1, 1] (the recipe's default).
    #[default]
    MinusOneOne,
    /// `(x / 255 - mean[c]) / std[c]` per channel.
    MeanStd {
        /// Per-channel mean of `x / 255`.
        mean: Vec<f32>,
        /// Per-channel standard deviation of `x / 255`.
        std: Vec<f32>,
    },
}

impl Normalization {
    /// Per-channel (scale, offset) so that `value = x * scale + offset`.
    pub fn affine(&self, channels: usize) -> Result<Vec<(f32, f32)>> {
        match self {
            Normalization::MinusOneOne => Ok(vec![(1.0 / 127.5, -1.0); channels]),
            Normalization::MeanStd { mean, std } => {
                if mean.len() != channels || std.len() != channels {
                    return Err(Error::plan(
                        NormalizeConfig::KIND,
                        format!(
                            "mean/std have {}/{} values for {channels} channels",
                            mean.len(),
                            std.len()
                        ),
                    ));
                }
                if std.iter().any(|s| *s <= 0.0) {
                    return Err(Error::plan(
                        NormalizeConfig::KIND,
                        "std values must be positive",
                    ));
                }
                Ok(mean
                    .iter()
                    .zip(std)
                    .map(|(m, s)| (1.0 / (255.0 * s), -m / s))
                    .collect())
            }
        }
    }

    /// The inverse map of one normalised value of channel `c` back to `0..=255`.
    pub fn to_u8(&self, value: f32, c: usize) -> u8 {
        let x = match self {
            Normalization::MinusOneOne => (value + 1.0) * 127.5,
            Normalization::MeanStd { mean, std } => (value * std[c] + mean[c]) * 255.0,
        };
        x.round().clamp(0.0, 255.0) as u8
    }
}

impl Normalization {
    /// The normalisation as recorded in schema metadata ([`columns::META_NORMALIZATION`]).
    pub fn metadata_value(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The two pixel normalisations, as named in specs.
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
#[serde(rename_all = "snake_case")]
pub enum NormalizeMode {
    /// `x / 127.5 - 1`: pixels in [-1, 1] (the recipe's default).
    #[default]
    MinusOneOne,
    /// `(x / 255 - mean[c]) / std[c]` per channel.
    MeanStd,
}

/// `normalize`: u8 `pixels` to Float32 `pixels`, recording the normalisation in the schema so
/// later stages (PCA, the encoder) can check they see what they were fitted on.
#[derive(
    Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct NormalizeConfig {
    /// `minus_one_one` (default) or `mean_std`.
    pub mode: NormalizeMode,
    /// Per-channel means of `x / 255` (`mean_std` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mean: Vec<f32>,
    /// Per-channel standard deviations of `x / 255` (`mean_std` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub std: Vec<f32>,
}

impl NormalizeConfig {
    /// The normalisation these settings describe.
    pub fn normalization(&self) -> Result<Normalization> {
        match self.mode {
            NormalizeMode::MinusOneOne if self.mean.is_empty() && self.std.is_empty() => {
                Ok(Normalization::MinusOneOne)
            }
            NormalizeMode::MinusOneOne => Err(Error::plan(
                NormalizeConfig::KIND,
                "mean and std are only used with mode = \"mean_std\"",
            )),
            NormalizeMode::MeanStd => Ok(Normalization::MeanStd {
                mean: self.mean.clone(),
                std: self.std.clone(),
            }),
        }
    }
}

impl From<&Normalization> for NormalizeConfig {
    fn from(n: &Normalization) -> Self {
        match n {
            Normalization::MinusOneOne => NormalizeConfig::default(),
            Normalization::MeanStd { mean, std } => NormalizeConfig {
                mode: NormalizeMode::MeanStd,
                mean: mean.clone(),
                std: std.clone(),
            },
        }
    }
}

impl OperatorConfig for NormalizeConfig {
    const KIND: &'static str = "normalize";
    fn build(&self, _ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        Ok(Arc::new(Normalize::new(self.normalization()?)))
    }
}
ldae_pipeline::register_operator!(NormalizeConfig);

/// The normalise operator.
pub struct Normalize {
    normalization: Normalization,
}

impl Normalize {
    /// A normalise operator.
    pub fn new(normalization: Normalization) -> Self {
        Normalize { normalization }
    }
}

impl Operator for Normalize {
    fn name(&self) -> String {
        NormalizeConfig::KIND.into()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        let shape = require_tensor(
            input,
            columns::PIXELS,
            &DataType::UInt8,
            NormalizeConfig::KIND,
        )?;
        let channels = shape[shape.len() - 1];
        let affine = self.normalization.affine(channels)?;
        let schema = replace_field(
            input,
            columns::PIXELS,
            tensor_field(columns::PIXELS, DataType::Float32, &shape),
        );
        let schema = columns::with_metadata(
            &schema,
            &[(
                columns::META_NORMALIZATION,
                self.normalization.metadata_value(),
            )],
        );
        // One 256-entry table per channel, each entry computed as `x * scale + offset`, so
        // the values are the same bits as the arithmetic, without a multiply, an add and a
        // modulo per value.
        let tables = affine
            .iter()
            .map(|&(scale, offset)| std::array::from_fn(|x| x as f32 * scale + offset))
            .collect();
        Ok(Arc::new(BoundNormalize {
            index: schema.index_of(columns::PIXELS)?,
            tables,
            shape,
            schema,
        }))
    }
}

/// Normalise bound to its input: the per-channel affine maps and the pixel column's place.
struct BoundNormalize {
    /// Per channel, the normalised value of each of the 256 pixel values.
    tables: Vec<[f32; 256]>,
    shape: Vec<usize>,
    index: usize,
    schema: SchemaRef,
}

impl BoundOperator for BoundNormalize {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&self, batch: RecordBatch) -> Result<Processed> {
        let channels = self.tables.len();
        let values: UInt8Array = columns::tensor_values(&batch, columns::PIXELS)?;
        let values = values.values();
        if !values.len().is_multiple_of(channels) {
            return Err(Error::data(format!(
                "normalize: {} pixel values are not whole {channels}-channel pixels",
                values.len()
            )));
        }
        // One table lookup per value into a pre-sized buffer: at 224 px this is 150k values an
        // image, where extending a vector a pixel at a time cost about 0.3 ms. The buffer is
        // not zeroed first (every value is written below).
        let mut out = Vec::with_capacity(values.len());
        let pixels = out.spare_capacity_mut()[..values.len()]
            .chunks_exact_mut(channels)
            .zip(values.chunks_exact(channels));
        match self.tables.as_slice() {
            [r, g, b] => {
                for (o, p) in pixels {
                    o[0].write(r[p[0] as usize]);
                    o[1].write(g[p[1] as usize]);
                    o[2].write(b[p[2] as usize]);
                }
            }
            tables => {
                for (o, p) in pixels {
                    for ((o, &x), t) in o.iter_mut().zip(p).zip(tables) {
                        o.write(t[x as usize]);
                    }
                }
            }
        }
        // SAFETY: `values.len()` is a multiple of `channels` (checked above), so the loops
        // wrote every one of the first `values.len()` values.
        unsafe { out.set_len(values.len()) };
        let pixels = tensor_array(Arc::new(Float32Array::from(out)), &self.shape)?;
        let mut cols = batch.columns().to_vec();
        cols[self.index] = Arc::new(pixels);
        Ok(Processed::ok(RecordBatch::try_new(
            self.schema.clone(),
            cols,
        )?))
    }
}
