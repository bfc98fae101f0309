//! Patchify / unpatchify: images `[S, S, C]` <-> patch tokens `[N, D]`.
//!
//! Element order (the contract every later stage and the PCA basis rely on): token
//! `t = gy * (S/p) + gx` is the patch whose top-left pixel is `(gy*p, gx*p)` (row-major over the
//! patch grid), and within a token element `(py * p + px) * C + c` is channel `c` of pixel
//! `(gy*p + py, gx*p + px)`, i.e. each patch is itself a row-major `[p, p, C]` block, as in
//! MAE/DiT's `patchify`.

use std::sync::Arc;

use arrow::array::{ArrayRef, ArrowPrimitiveType, Float32Array, PrimitiveArray, UInt8Array};
use arrow::datatypes::{DataType, Float32Type, SchemaRef, UInt8Type};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, replace_field, require_tensor, tensor_array, tensor_field};
use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, Processed, Result,
};

/// Geometry of patchifying `size x size x channels` images with `patch x patch` patches. In a
/// PCA file's metadata its keys are `image_size`, `patch_size` and `channels`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PatchGeometry {
    /// Image side S.
    #[serde(rename = "image_size")]
    pub size: usize,
    /// Patch side p.
    #[serde(rename = "patch_size")]
    pub patch: usize,
    /// Channels C.
    pub channels: usize,
}

impl std::fmt::Display for PatchGeometry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "image size {}, patch {}, {} channel(s)",
            self.size, self.patch, self.channels
        )
    }
}

impl PatchGeometry {
    /// Check that `patch` divides `size`.
    pub fn new(size: usize, channels: usize, patch: usize) -> Result<Self> {
        if patch == 0 || !size.is_multiple_of(patch) {
            return Err(Error::invalid(format!(
                "patch size {patch} does not divide image size {size}"
            )));
        }
        Ok(PatchGeometry {
            size,
            channels,
            patch,
        })
    }

    /// Patches per side, S/p.
    pub fn grid(&self) -> usize {
        self.size / self.patch
    }

    /// Tokens per image, N = (S/p)^2.
    pub fn tokens(&self) -> usize {
        self.grid() * self.grid()
    }

    /// Values per patch, D = p*p*C.
    pub fn patch_dim(&self) -> usize {
        self.patch * self.patch * self.channels
    }

    /// Patchify one image (`S*S*C` values) into `out` (`N*D` values).
    ///
    /// ```
    /// use ldae_operators::patchify::PatchGeometry;
    /// let g = PatchGeometry::new(4, 1, 2).unwrap();
    /// let image: Vec<f32> = (0..16).map(|x| x as f32).collect();
    /// let mut patches = vec![0.0; 16];
    /// g.patchify(&image, &mut patches);
    /// assert_eq!(&patches[..4], &[0.0, 1.0, 4.0, 5.0]); // top-left 2x2 block
    /// let mut back = vec![0.0; 16];
    /// g.unpatchify(&patches, &mut back);
    /// assert_eq!(back, image);
    /// ```
    pub fn patchify<T: Copy>(&self, image: &[T], out: &mut [T]) {
        self.for_each_run(|pixel, token| {
            let run = self.patch * self.channels;
            out[token..token + run].copy_from_slice(&image[pixel..pixel + run]);
        });
    }

    /// [`PatchGeometry::patchify`] appending to `out` (no zeroed buffer first: the runs come
    /// in the patches' order, one after another).
    pub fn patchify_into<T: Copy>(&self, image: &[T], out: &mut Vec<T>) {
        let run = self.patch * self.channels;
        self.for_each_run(|pixel, _| out.extend_from_slice(&image[pixel..pixel + run]));
    }

    /// The exact inverse of [`PatchGeometry::patchify`].
    pub fn unpatchify<T: Copy>(&self, patches: &[T], out: &mut [T]) {
        self.for_each_run(|pixel, token| {
            let run = self.patch * self.channels;
            out[pixel..pixel + run].copy_from_slice(&patches[token..token + run]);
        });
    }

    /// Call `f(pixel_offset, patch_offset)` for every run of `p*C` contiguous values (one patch
    /// row), which are contiguous in both layouts.
    fn for_each_run(&self, mut f: impl FnMut(usize, usize)) {
        let (g, p, c, s) = (self.grid(), self.patch, self.channels, self.size);
        let d = self.patch_dim();
        for gy in 0..g {
            for gx in 0..g {
                let token = (gy * g + gx) * d;
                for py in 0..p {
                    let pixel = ((gy * p + py) * s + gx * p) * c;
                    f(pixel, token + py * p * c);
                }
            }
        }
    }
}

/// `patchify`: `pixels [S, S, C]` to `patches [N, D]`, `N = (S/p)^2`, `D = p*p*C` (patches in
/// grid row-major order; inside a patch: rows, then columns, then channels), of the same
/// element type: Float32 (normalised pixels) or UInt8 (decoded pixels, before `normalize`,
/// which maps patches as it maps pixels; the order ldae's own jobs use, as it moves a quarter
/// of the bytes).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchifyConfig {
    /// Patch side p (must divide the image side).
    pub patch: usize,
}

impl OperatorConfig for PatchifyConfig {
    const KIND: &'static str = "patchify";
    fn build(&self, _ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        Ok(Arc::new(Patchify::new(self.patch)))
    }
}
ldae_pipeline::register_operator!(PatchifyConfig);

/// The patchify operator: `pixels` `[S, S, C]` in, `patches` `[N, D]` out, Float32 or UInt8.
pub struct Patchify {
    patch: usize,
}

impl Patchify {
    /// Patchify with `patch x patch` patches.
    pub fn new(patch: usize) -> Self {
        Patchify { patch }
    }

    /// The geometry and element type of the pixels `input` holds.
    fn geometry(&self, input: &SchemaRef) -> Result<(PatchGeometry, DataType)> {
        let element = input
            .field_with_name(columns::PIXELS)
            .ok()
            .and_then(columns::tensor_type)
            .map(|(element, _)| element)
            .filter(|e| *e == DataType::UInt8)
            .unwrap_or(DataType::Float32);
        let shape = require_tensor(input, columns::PIXELS, &element, PatchifyConfig::KIND)?;
        if shape.len() != 3 || shape[0] != shape[1] {
            return Err(Error::plan(
                PatchifyConfig::KIND,
                format!("pixels must be a square [S, S, C] tensor, got {shape:?}"),
            ));
        }
        let g = PatchGeometry::new(shape[0], shape[2], self.patch)
            .map_err(|e| e.at_plan(PatchifyConfig::KIND))?;
        Ok((g, element))
    }
}

impl Operator for Patchify {
    fn name(&self) -> String {
        PatchifyConfig::KIND.into()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        let (g, element) = self.geometry(input)?;
        let schema = replace_field(
            input,
            columns::PIXELS,
            tensor_field(
                columns::PATCHES,
                element.clone(),
                &[g.tokens(), g.patch_dim()],
            ),
        );
        let schema = columns::with_metadata(
            &schema,
            &[
                (columns::META_IMAGE_SIZE, g.size.to_string()),
                (columns::META_PATCH_SIZE, g.patch.to_string()),
                (columns::META_PATCH_ORDER, columns::PATCH_ORDER.to_string()),
            ],
        );
        Ok(Arc::new(BoundPatchify {
            index: input.index_of(columns::PIXELS)?,
            g,
            bytes: element == DataType::UInt8,
            schema,
        }))
    }
}

/// Patchify bound to its input: the geometry and the pixel column's place.
struct BoundPatchify {
    g: PatchGeometry,
    /// UInt8 pixels (else Float32).
    bytes: bool,
    index: usize,
    schema: SchemaRef,
}

impl BoundPatchify {
    /// Every image's values of `batch` in patch order.
    fn patchify_values<T: ArrowPrimitiveType>(
        &self,
        batch: &RecordBatch,
    ) -> Result<Vec<T::Native>> {
        let values: PrimitiveArray<T> = columns::tensor_values(batch, columns::PIXELS)?;
        let per_image = self.g.size * self.g.size * self.g.channels;
        let mut out = Vec::with_capacity(values.len());
        for image in values.values().chunks_exact(per_image) {
            self.g.patchify_into(image, &mut out);
        }
        Ok(out)
    }
}

impl BoundOperator for BoundPatchify {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&self, batch: RecordBatch) -> Result<Processed> {
        let g = &self.g;
        let values: ArrayRef = match self.bytes {
            true => Arc::new(UInt8Array::from(self.patchify_values::<UInt8Type>(&batch)?)),
            false => Arc::new(Float32Array::from(
                self.patchify_values::<Float32Type>(&batch)?,
            )),
        };
        let patches = tensor_array(values, &[g.tokens(), g.patch_dim()])?;
        let mut cols = batch.columns().to_vec();
        cols[self.index] = Arc::new(patches);
        Ok(Processed::ok(RecordBatch::try_new(
            self.schema.clone(),
            cols,
        )?))
    }
}
