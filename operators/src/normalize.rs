//! Normalise: `pixels` `UInt8 [H, W, C]` in, `pixels` `Float32 [H, W, C]` out.

use std::sync::Arc;

use arrow::array::{Float32Array, UInt8Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, replace_field, require_tensor, tensor_array, tensor_field};
use ldae_pipeline::{Error, Operator, Processed, Result};

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
    fn affine(&self, channels: usize) -> Result<Vec<(f32, f32)>> {
        match self {
            Normalization::MinusOneOne => Ok(vec![(1.0 / 127.5, -1.0); channels]),
            Normalization::MeanStd { mean, std } => {
                if mean.len() != channels || std.len() != channels {
                    return Err(Error::plan(
                        "normalize",
                        format!(
                            "mean/std have {}/{} values for {channels} channels",
                            mean.len(),
                            std.len()
                        ),
                    ));
                }
                if std.iter().any(|s| *s <= 0.0) {
                    return Err(Error::plan("normalize", "std values must be positive"));
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
        "normalize".into()
    }

    fn output_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let shape = require_tensor(input, columns::PIXELS, &DataType::UInt8, "normalize")?;
        self.normalization.affine(shape[shape.len() - 1])?;
        Ok(replace_field(
            input,
            columns::PIXELS,
            tensor_field(columns::PIXELS, DataType::Float32, &shape),
        ))
    }

    fn process(&self, batch: RecordBatch) -> Result<Processed> {
        let schema = self.output_schema(&batch.schema())?;
        let shape = require_tensor(&schema, columns::PIXELS, &DataType::Float32, "normalize")?;
        let channels = shape[shape.len() - 1];
        let affine = self.normalization.affine(channels)?;
        let values: UInt8Array = columns::tensor_values(&batch, columns::PIXELS)?;
        let out: Vec<f32> = values
            .values()
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                let (scale, offset) = affine[i % channels];
                x as f32 * scale + offset
            })
            .collect();
        let pixels = tensor_array(Arc::new(Float32Array::from(out)), &shape)?;
        let index = schema.index_of(columns::PIXELS)?;
        let mut cols = batch.columns().to_vec();
        cols[index] = Arc::new(pixels);
        Ok(Processed::ok(RecordBatch::try_new(schema, cols)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_one_one_maps_ends_and_inverts() {
        let n = Normalization::MinusOneOne;
        let a = n.affine(3).unwrap();
        assert_eq!(0.0 * a[0].0 + a[0].1, -1.0);
        assert!((255.0 * a[0].0 + a[0].1 - 1.0).abs() < 1e-6);
        for x in [0u8, 1, 127, 128, 254, 255] {
            assert_eq!(n.to_u8(x as f32 * a[0].0 + a[0].1, 0), x);
        }
    }
}
