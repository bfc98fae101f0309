//! Normalise: `pixels` `UInt8 [H, W, C]` in, `pixels` `Float32 [H, W, C]` out; or `patches`
//! `UInt8 [N, D]` (from `patchify`) in, `patches` `Float32 [N, D]` out.

use std::mem::MaybeUninit;
use std::sync::Arc;

use arrow::array::{Float32Array, UInt8Array};
use arrow::datatypes::{DataType, Schema, SchemaRef};
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

/// `normalize`: u8 `pixels` to Float32 `pixels` (or u8 `patches` to Float32 `patches`, when
/// `patchify` came first: ldae's own jobs patchify the bytes, which moves a quarter of the
/// data), recording the normalisation in the schema so later stages (PCA, the encoder) can
/// check they see what they were fitted on.
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
        let (column, shape, channels) = values_to_map(input)?;
        let affine = self.normalization.affine(channels)?;
        let schema = replace_field(
            input,
            column,
            tensor_field(column, DataType::Float32, &shape),
        );
        let schema = columns::with_metadata(
            &schema,
            &[(
                columns::META_NORMALIZATION,
                self.normalization.metadata_value(),
            )],
        );
        Ok(Arc::new(BoundNormalize {
            index: schema.index_of(column)?,
            column,
            period: Period::new(&affine),
            shape,
            schema,
        }))
    }
}

/// The column `normalize` maps in `input`, its shape and its number of channels (the last,
/// fastest-varying, index of a pixel, and of a patch, whose values are `[p, p, C]`).
fn values_to_map(input: &Schema) -> Result<(&'static str, Vec<usize>, usize)> {
    let stage = NormalizeConfig::KIND;
    if input.field_with_name(columns::PIXELS).is_ok()
        || input.field_with_name(columns::PATCHES).is_err()
    {
        let shape = require_tensor(input, columns::PIXELS, &DataType::UInt8, stage)?;
        let channels = shape[shape.len() - 1];
        return Ok((columns::PIXELS, shape, channels));
    }
    let shape = require_tensor(input, columns::PATCHES, &DataType::UInt8, stage)?;
    let patch = input
        .metadata()
        .get(columns::META_PATCH_SIZE)
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            Error::plan(
                stage,
                "UInt8 patches without a patch size in the schema metadata (patchify writes it)",
            )
        })?;
    let dim = shape[shape.len() - 1];
    if !dim.is_multiple_of(patch * patch) {
        return Err(Error::plan(
            stage,
            format!("patches of {dim} values are not {patch}x{patch} patches of whole pixels"),
        ));
    }
    Ok((columns::PATCHES, shape, dim / (patch * patch)))
}

/// The affine maps of the channels, repeated over 8 pixels' values: a whole number of pixels
/// and of 8-lane vectors, so that the values are mapped 8 at a time with the lanes' own maps
/// ([`Period::map_avx2`]). Each value is `x * scale + offset`, a multiply and an add (never
/// fused): the same bits on every machine and at every level.
struct Period {
    scale: Vec<f32>,
    offset: Vec<f32>,
}

impl Period {
    /// Pixels per period (and lanes per vector).
    const PIXELS: usize = 8;

    fn new(affine: &[(f32, f32)]) -> Self {
        let run = affine.len() * Self::PIXELS;
        Period {
            scale: (0..run).map(|i| affine[i % affine.len()].0).collect(),
            offset: (0..run).map(|i| affine[i % affine.len()].1).collect(),
        }
    }

    fn channels(&self) -> usize {
        self.scale.len() / Self::PIXELS
    }

    /// `out[i] = values[i] * scale[c] + offset[c]`, `c` the channel of value `i`; `out` as long
    /// as `values`, a whole number of pixels.
    fn map(&self, values: &[u8], out: &mut [MaybeUninit<f32>]) {
        let mut done = 0;
        #[cfg(target_arch = "x86_64")]
        if crate::cpu::Isa::active() >= crate::cpu::Isa::Avx2 {
            // SAFETY: the CPU has AVX2 (the active level is at most the detected one).
            done = unsafe { self.map_avx2(values, out) };
        }
        // The rest (or all, below AVX2): value `i`'s channel is `i % channels`.
        let channels = self.channels();
        for (i, (o, &v)) in out[done..].iter_mut().zip(&values[done..]).enumerate() {
            let c = (done + i) % channels;
            o.write(v as f32 * self.scale[c] + self.offset[c]);
        }
    }

    /// [`Period::map`] 8 values at a time (the compiler leaves the portable loop scalar);
    /// returns how many values it mapped: all but the last fewer than 8.
    ///
    /// # Safety
    /// The CPU must have AVX2.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn map_avx2(&self, values: &[u8], out: &mut [MaybeUninit<f32>]) -> usize {
        use std::arch::x86_64::*;
        const LANES: usize = Period::PIXELS;
        let maps = self
            .scale
            .chunks_exact(LANES)
            .zip(self.offset.chunks_exact(LANES))
            .cycle();
        let n = values.len().min(out.len()) / LANES * LANES;
        for ((v, o), (s, b)) in values[..n]
            .chunks_exact(LANES)
            .zip(out[..n].chunks_exact_mut(LANES))
            .zip(maps)
        {
            // SAFETY: each chunk holds 8 values (8 bytes in, 8 floats out, 8 of each map).
            unsafe {
                let x = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(
                    v.as_ptr() as *const __m128i
                )));
                let y = _mm256_add_ps(
                    _mm256_mul_ps(x, _mm256_loadu_ps(s.as_ptr())),
                    _mm256_loadu_ps(b.as_ptr()),
                );
                _mm256_storeu_ps(o.as_mut_ptr() as *mut f32, y);
            }
        }
        n
    }
}

/// Normalise bound to its input: the per-channel affine maps and the mapped column.
struct BoundNormalize {
    period: Period,
    /// `pixels` or `patches`.
    column: &'static str,
    shape: Vec<usize>,
    index: usize,
    schema: SchemaRef,
}

impl BoundOperator for BoundNormalize {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&self, batch: RecordBatch) -> Result<Processed> {
        let channels = self.period.channels();
        let values: UInt8Array = columns::tensor_values(&batch, self.column)?;
        let values = values.values();
        if !values.len().is_multiple_of(channels) {
            return Err(Error::data(format!(
                "normalize: {} {} values are not whole {channels}-channel pixels",
                values.len(),
                self.column
            )));
        }
        // Into a pre-sized buffer, not zeroed first: `map` writes every value (at 224 px,
        // 150k values an image).
        let mut out = Vec::with_capacity(values.len());
        self.period
            .map(values, &mut out.spare_capacity_mut()[..values.len()]);
        // SAFETY: `map` wrote each of the first `values.len()` values.
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
