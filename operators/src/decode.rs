//! Decode: encoded images (JPEG, PNG) or raw `u8` pixels in, `pixels` `UInt8 [S, S, C]` out.
//!
//! Fused with the geometry: the centre square crop of the shorter side resized to S x S
//! (evaluation, the default); with `crop_pct`, timm's eval transform (the shorter side resized
//! to `floor(S / crop_pct)`, then the centre S x S); or a seeded random-resized-crop and flip
//! (training, when `augment` is set). Grayscale, RGBA, CMYK and 16-bit images are converted to the requested
//! channel count (1 or 3). A pixel-count limit, checked from the header before any pixel is
//! decoded, guards against decompression bombs. A row that cannot be decoded is rejected with
//! the decoder's reason; the run goes on.
//!
//! JPEGs go through the JPEG fast paths (the system's libjpeg-turbo where it loads, else
//! zune-jpeg; see `crate::jpeg`), everything else (and every JPEG they decline) through the
//! `image` crate (zune-jpeg, png).

use std::io::Cursor;
use std::sync::Arc;

use arrow::array::{Array, AsArray, StringArray, UInt8Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use fast_image_resize::PixelType;
use image::{DynamicImage, ImageBuffer, ImageDecoder, ImageReader, Limits};

use ldae_pipeline::columns::{self, replace_field, tensor_array, tensor_field, tensor_type};
use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, ProcessWithSchema, Processed,
    Rejection, Result, WithSchema,
};

use crate::augment::{center_square, random_resized_crop, AugmentConfig, CropPlan};
use crate::jpeg::{DecodePlan, FastJpeg, Region};
pub use crate::resize::Interpolation;
use crate::resize::{
    flip_rows, resize_crop, resize_then_center_crop, top_left, DecodedPixels, EvalResize,
};

/// `decode`: encoded images (or raw u8 pixels) to `pixels` `UInt8 [S, S, C]`, centre-cropped
/// (or randomly resized-cropped and flipped with `[augment]`) and resized to S x S.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeConfig {
    /// Output side S in pixels.
    pub image_size: u32,
    /// Output channels: 3 (RGB) or 1 (luma).
    pub channels: u8,
    /// Largest accepted width x height of an input image.
    pub max_pixels: u64,
    /// Random-resized-crop and flip instead of the centre crop (for training).
    pub augment: Option<AugmentConfig>,
    /// Let libjpeg-turbo decode a JPEG at 1/2, 1/4 or 1/8 of its size in the inverse DCT (the
    /// smallest that leaves the crop at least S pixels on each side) before the resize. Off by
    /// default: on photos twice S it saves about 20% of the decode's CPU time, but the pixels
    /// move off Pillow's (mean 0.7 of a level, some images 3-4 levels) and features with them
    /// (about 1% on average; linear probes 0.7-0.9 points lower on upscaled CIFAR-10 copies,
    /// `benches/decode_options.py`; see docs/performance.md). Only where
    /// libjpeg-turbo is loaded (`ldae --version` says); the pure-Rust decoder always decodes at
    /// full size.
    pub jpeg_dct_scaling: bool,
    /// Decode only the part of a JPEG the resize reads: the crop's rows and (whole 8- or
    /// 16-pixel blocks of) columns, with the filter's reach around them (libjpeg-turbo's
    /// `jpeg_crop_scanline` and `jpeg_skip_scanlines`; the rows outside are still read, so a
    /// damaged file is judged as in a whole decode). On by default: 9% more images/s for a
    /// whole 224 px encode of 500x375 photos on one core. The region's pixels are the whole
    /// decode's, but the resize then runs on an image with another origin, and its filter
    /// weights can round differently: on the 500 photos the output was identical with
    /// `bilinear` and 1 level off in 7 of 75M values with `bicubic`. `false`: every image
    /// decoded whole, to reproduce a run made without it exactly. Not used with the eval
    /// transform (`crop_pct`, `resize_side`).
    pub jpeg_region: bool,
    /// Resize the whole image, its shorter side to `floor(S / crop_pct)` and the aspect ratio
    /// kept, then take the centre S x S: torchvision's `Resize(int)` then `CenterCrop(S)`, the
    /// eval transform of timm models (which record their `crop_pct`). Between 0 and 1. Absent:
    /// the centre square of the shorter side resized to S.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop_pct: Option<f64>,
    /// The side the eval resize targets, instead of `floor(S / crop_pct)` (a transformers
    /// processor's `size`, which `crop_pct` cannot always give exactly). At least S; implies
    /// the eval transform, with or without `crop_pct`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize_side: Option<u32>,
    /// The eval resize takes both sides to its target, the aspect ratio not kept (timm's
    /// `crop_mode = squash`; transformers' `size = {height, width}`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub squash: bool,
    /// The eval crop's offsets rounded down, as transformers' processors do, instead of to the
    /// nearest, half to even (torchvision's `CenterCrop`). They differ by one pixel where the
    /// resized side exceeds S by an odd number whose half is odd.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub floor_offsets: bool,
    /// The resize filter: `bilinear` (the default) or `bicubic`, both antialiased as Pillow's
    /// (the support widens with the downscale factor; bicubic is Pillow's a = -0.5).
    #[serde(skip_serializing_if = "Interpolation::is_bilinear")]
    pub interpolation: Interpolation,
    /// Pixels dropped from the right and bottom of the S x S crop, so the output is `S - trim`
    /// a side: what a stride-p patch embedding leaves unread when p does not divide S (timm's
    /// and transformers' SigLIP so400m/14 at 384 px read the top-left 378). Less than S.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trim: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            image_size: 32,
            channels: 3,
            max_pixels: 64_000_000,
            augment: None,
            jpeg_dct_scaling: false,
            jpeg_region: true,
            crop_pct: None,
            resize_side: None,
            squash: false,
            floor_offsets: false,
            interpolation: Interpolation::Bilinear,
            trim: 0,
        }
    }
}

impl DecodeConfig {
    /// The eval transform's resize, when the config asks for one (`crop_pct` or
    /// `resize_side`): timm's `floor(S / crop_pct)` unless a side is given.
    pub(crate) fn eval_resize(&self) -> Option<EvalResize> {
        let short = match (self.resize_side, self.crop_pct) {
            (Some(side), _) => side,
            (None, Some(pct)) => (self.image_size as f64 / pct).floor() as u32,
            (None, None) => return None,
        };
        Some(EvalResize {
            short,
            squash: self.squash,
            floor_offsets: self.floor_offsets,
        })
    }
}

/// Bytes of decoded f32 pixels one batch may hold when its size is chosen from the images:
/// small enough that a batch's buffers are reused by the allocator (not mapped, faulted in and
/// returned for every batch: at 224 px, 256 rows are 154 MB of f32 pixels per stage), large
/// enough that per-batch costs vanish.
pub const BATCH_PIXEL_BYTES: usize = 4 << 20;

impl OperatorConfig for DecodeConfig {
    const KIND: &'static str = "decode";
    fn batch_rows_hint(&self) -> Option<usize> {
        let bytes = (self.image_size as usize)
            .saturating_mul(self.image_size as usize)
            .saturating_mul(self.channels as usize)
            .saturating_mul(std::mem::size_of::<f32>())
            .max(1);
        Some((BATCH_PIXEL_BYTES / bytes).clamp(1, ldae_pipeline::registry::DEFAULT_BATCH_ROWS))
    }
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        let mut config = self.clone();
        if let Some(augment) = &mut config.augment {
            augment.epoch = ctx.epoch;
        }
        Ok(Arc::new(Decode::new(config)?))
    }
}
ldae_pipeline::register_operator!(DecodeConfig);

/// The decode operator.
pub struct Decode {
    config: DecodeConfig,
}

impl Decode {
    /// A decode operator; checks the settings.
    pub fn new(config: DecodeConfig) -> Result<Self> {
        if config.channels != 1 && config.channels != 3 {
            return Err(Error::plan(
                DecodeConfig::KIND,
                format!("channels must be 1 or 3, got {}", config.channels),
            ));
        }
        if config.image_size == 0 {
            return Err(Error::plan(
                DecodeConfig::KIND,
                "image size must be positive",
            ));
        }
        if config.trim >= config.image_size {
            return Err(Error::plan(
                DecodeConfig::KIND,
                format!(
                    "trim {} leaves nothing of the {} crop",
                    config.trim, config.image_size
                ),
            ));
        }
        if let Some(pct) = config.crop_pct {
            if !(pct > 0.0 && pct <= 1.0) {
                return Err(Error::plan(
                    DecodeConfig::KIND,
                    format!("crop_pct {pct} is not in (0, 1]"),
                ));
            }
        }
        if let Some(side) = config.resize_side {
            if side < config.image_size {
                return Err(Error::plan(
                    DecodeConfig::KIND,
                    format!(
                        "resize_side {side} is smaller than the {} crop",
                        config.image_size
                    ),
                ));
            }
        }
        match config.eval_resize() {
            Some(_) if config.augment.is_some() || config.jpeg_dct_scaling => {
                return Err(Error::plan(
                    DecodeConfig::KIND,
                    "crop_pct / resize_side (the eval resize-then-crop) does not combine with \
                     augment or jpeg_dct_scaling",
                ))
            }
            None if config.squash || config.floor_offsets => {
                return Err(Error::plan(
                    DecodeConfig::KIND,
                    "squash and floor_offsets shape the eval resize-then-crop: they need \
                     crop_pct or resize_side",
                ))
            }
            _ => {}
        }
        Ok(Decode { config })
    }

    /// The output schema's metadata: the image size, and no normalisation yet.
    fn with_size(&self, schema: &arrow::datatypes::Schema) -> SchemaRef {
        let mut schema = columns::with_metadata(
            schema,
            &[
                (columns::META_IMAGE_SIZE, self.config.image_size.to_string()),
                (
                    columns::META_AUGMENT,
                    self.config.augment.is_some().to_string(),
                ),
            ],
        )
        .as_ref()
        .clone();
        schema.metadata.remove(columns::META_NORMALIZATION);
        schema.metadata.remove(columns::META_PATCH_SIZE);
        Arc::new(schema)
    }

    fn out_shape(&self) -> [usize; 3] {
        let s = (self.config.image_size - self.config.trim) as usize;
        [s, s, self.config.channels as usize]
    }

    /// The crop of row `id`, a `w x h` image: the centre square, or a random resized crop.
    fn crop_plan(&self, id: &str, w: u32, h: u32) -> CropPlan {
        match &self.config.augment {
            Some(a) => random_resized_crop(a, id, w, h),
            None => center_square(w, h),
        }
    }

    /// The scale, in eighths, a JPEG of `w x h` may be decoded at for row `id`: the smallest of
    /// 1/8, 1/4, 1/2 that keeps the crop at least S pixels on each side, else 8 (full size,
    /// also when scaling is off).
    pub fn dct_eighths(&self, id: &str, w: u32, h: u32) -> u32 {
        self.eighths_for(&self.crop_plan(id, w, h))
    }

    /// [`Decode::dct_eighths`] for the crop `plan`.
    fn eighths_for(&self, plan: &CropPlan) -> u32 {
        if !self.config.jpeg_dct_scaling {
            return 8;
        }
        let need = 8 * self.config.image_size as u64;
        // Only the halvings: libjpeg-turbo's 1/2, 1/4 and 1/8 inverse DCTs are SIMD, the other
        // M/8 are plain C and no faster than a full decode (measured: 5/8 on 500x375 photos).
        [1, 2, 4]
            .into_iter()
            .find(|&m: &u32| {
                plan.width as u64 * m as u64 >= need && plan.height as u64 * m as u64 >= need
            })
            .unwrap_or(8)
    }

    /// How a JPEG of `w x h` is decoded for row `id`: at [`Decode::dct_eighths`], and with
    /// `jpeg_region` only the region the resize reads (the crop and its filter's reach around
    /// it), where the crop is planned on the image itself (not with `crop_pct`, which resizes
    /// the whole image).
    pub fn decode_plan(&self, id: &str, w: u32, h: u32) -> DecodePlan {
        let plan = self.crop_plan(id, w, h);
        let eighths = self.eighths_for(&plan);
        if self.config.eval_resize().is_some() || !self.config.jpeg_region {
            return eighths.into();
        }
        let scale = eighths as f64 / 8.0;
        // The resize's filter reaches `radius * factor` source pixels either side of an output
        // pixel's centre (its support widens with the downscale factor); two more for rounding.
        let radius = match self.config.interpolation {
            Interpolation::Bilinear => 1.0,
            Interpolation::Bicubic => 2.0,
        };
        let side = self.config.image_size as f64;
        let factor = (plan.width.max(plan.height) as f64 * scale / side).max(1.0);
        let margin = (radius * factor).ceil() + 2.0;
        let (ow, oh) = ((w * eighths).div_ceil(8), (h * eighths).div_ceil(8));
        let lo = |at: u32| (at as f64 * scale - margin).floor().max(0.0) as u32;
        let hi = |end: u32, size: u32| ((end as f64 * scale + margin).ceil() as u32).min(size);
        DecodePlan {
            eighths,
            region: Some(Region {
                x0: lo(plan.x),
                y0: lo(plan.y),
                x1: hi(plan.x + plan.width, ow),
                y1: hi(plan.y + plan.height, oh),
            }),
        }
    }

    /// Decode encoded bytes of row `id`, refusing oversized images before decoding them.
    fn decode_bytes(&self, bytes: &[u8], id: &str) -> std::result::Result<Decoded, String> {
        if bytes.is_empty() {
            return Err("empty file".into());
        }
        // The header's size, seen by the scale chooser (paths that cannot scale do not ask).
        let mut full = None;
        let plan = |w, h| {
            full = Some((w, h));
            self.decode_plan(id, w, h)
        };
        match crate::jpeg::decode(bytes, self.config.max_pixels, plan) {
            FastJpeg::Decoded {
                image,
                eighths,
                origin,
            } => {
                return Ok(match full {
                    Some(full) => Decoded {
                        image,
                        full,
                        eighths,
                        origin,
                    },
                    None => Decoded::full_size(image),
                });
            }
            FastJpeg::TooLarge(w, h) => return Err(self.too_large(w, h)),
            FastJpeg::Declined => {}
        }
        let mut reader = ImageReader::new(Cursor::new(bytes))
            .with_guessed_format()
            .map_err(|e| e.to_string())?;
        if reader.format().is_none() {
            return Err("not a recognised image format (JPEG or PNG)".into());
        }
        let mut limits = Limits::default();
        limits.max_alloc = Some(self.config.max_pixels.saturating_mul(8).max(1 << 26));
        reader.limits(limits);
        let decoder = reader.into_decoder().map_err(|e| e.to_string())?;
        let (w, h) = decoder.dimensions();
        if (w as u64) * (h as u64) > self.config.max_pixels {
            return Err(self.too_large(w, h));
        }
        let image = DynamicImage::from_decoder(decoder).map_err(|e| e.to_string())?;
        Ok(Decoded::full_size(image))
    }

    /// The reason a `w x h` image over the pixel limit is rejected.
    fn too_large(&self, w: u32, h: u32) -> String {
        format!(
            "{w}x{h} image exceeds the limit of {} pixels",
            self.config.max_pixels
        )
    }

    /// Crop, resize and convert one image to the output pixels. The crop is planned on the
    /// full-size image (so a row's augmentation is the same at any decode scale) and scaled
    /// onto the decoded one.
    fn finish_image(&self, decoded: Decoded, id: &str) -> std::result::Result<Vec<u8>, String> {
        let Decoded {
            image,
            full,
            eighths,
            origin,
        } = decoded;
        let (w, h) = (image.width(), image.height());
        let (pixels, pixel_type) = match self.config.channels {
            1 => (image.into_luma8().into_raw(), PixelType::U8),
            _ => (image.into_rgb8().into_raw(), PixelType::U8x3),
        };
        let source = DecodedPixels {
            pixels: &pixels,
            width: w,
            height: h,
            pixel_type,
            scale: eighths as f64 / 8.0,
            origin,
        };
        let filter = self.config.interpolation.filter();
        let out = match self.config.eval_resize() {
            Some(geometry) => {
                resize_then_center_crop(&source, geometry, self.config.image_size, filter)
            }
            None => {
                let plan = self.crop_plan(id, full.0, full.1);
                resize_crop(&source, &plan, self.config.image_size, filter).map(|mut out| {
                    if plan.flip {
                        flip_rows(&mut out, self.config.image_size as usize, pixel_type.size());
                    }
                    out
                })
            }
        };
        crate::jpeg::recycle(pixels);
        match self.config.trim {
            0 => out,
            trim => out.map(|out| {
                let (s, c) = (self.config.image_size as usize, pixel_type.size());
                top_left(&out, s, s - trim as usize, c)
            }),
        }
    }
}

/// A decoded image, with the size of the full-size image it came from.
struct Decoded {
    image: DynamicImage,
    /// Width and height at full size (the header's).
    full: (u32, u32),
    /// The scale it was decoded at, in eighths of the full size (8: full size).
    eighths: u32,
    /// Where `image` (a region) starts in the whole image at that scale.
    origin: (u32, u32),
}

impl Decoded {
    fn full_size(image: DynamicImage) -> Self {
        Decoded {
            full: (image.width(), image.height()),
            image,
            eighths: 8,
            origin: (0, 0),
        }
    }
}

/// A raw `u8` HWC buffer as an image.
fn raw_image(pixels: &[u8], shape: &[usize]) -> Option<DynamicImage> {
    let (h, w, c) = (shape[0] as u32, shape[1] as u32, shape[2]);
    match c {
        1 => ImageBuffer::from_raw(w, h, pixels.to_vec()).map(DynamicImage::ImageLuma8),
        3 => ImageBuffer::from_raw(w, h, pixels.to_vec()).map(DynamicImage::ImageRgb8),
        4 => ImageBuffer::from_raw(w, h, pixels.to_vec()).map(DynamicImage::ImageRgba8),
        _ => None,
    }
}

impl Decode {
    /// The output schema of decoding batches of `input`.
    fn plan_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        let out = tensor_field(columns::PIXELS, DataType::UInt8, &self.out_shape());
        if let Ok(field) = input.field_with_name(columns::IMAGE) {
            if !matches!(field.data_type(), DataType::Binary | DataType::LargeBinary) {
                return Err(Error::plan(
                    DecodeConfig::KIND,
                    format!(
                        "column 'image' has type {}, expected binary",
                        field.data_type()
                    ),
                ));
            }
            let schema = replace_field(input, columns::IMAGE, out);
            return Ok(self.with_size(&schema));
        }
        let field = input.field_with_name(columns::PIXELS).map_err(|_| {
            Error::plan(
                DecodeConfig::KIND,
                format!(
                    "needs an 'image' or 'pixels' column, the input has [{}]",
                    columns::column_list(input)
                ),
            )
        })?;
        match tensor_type(field) {
            Some((DataType::UInt8, shape)) if shape.len() == 3 && [1, 3, 4].contains(&shape[2]) => {
                Ok(self.with_size(&replace_field(input, columns::PIXELS, out)))
            }
            _ => Err(Error::plan(
                DecodeConfig::KIND,
                "column 'pixels' must be a UInt8 tensor [H, W, C] with C = 1, 3 or 4",
            )),
        }
    }
}

impl Operator for Decode {
    fn name(&self) -> String {
        DecodeConfig::KIND.into()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        Ok(Arc::new(WithSchema {
            schema: self.plan_schema(input)?,
            op: Decode {
                config: self.config.clone(),
            },
        }))
    }
}

impl ProcessWithSchema for Decode {
    fn process_with(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<Processed> {
        let ids: &StringArray = batch
            .column_by_name(columns::ID)
            .map(|c| c.as_string::<i32>())
            .ok_or_else(|| Error::data("missing id column"))?;
        let n = batch.num_rows();
        let out_size: usize = self.out_shape().iter().product();
        let mut flat = Vec::with_capacity(n * out_size);
        let mut keep = Vec::with_capacity(n);
        let mut rejected = Vec::new();
        let mut handle = |i: usize, image: std::result::Result<Decoded, String>| match image {
            Ok(img) => match self.finish_image(img, ids.value(i)) {
                Ok(px) => {
                    debug_assert_eq!(px.len(), out_size);
                    flat.extend_from_slice(&px);
                    keep.push(i as u32);
                }
                Err(message) => rejected.push(Rejection {
                    id: ids.value(i).to_string(),
                    message: format!("decode: {message}"),
                }),
            },
            Err(message) => rejected.push(Rejection {
                id: ids.value(i).to_string(),
                message: format!("decode: {message}"),
            }),
        };
        let input_col;
        if let Some(col) = batch.column_by_name(columns::IMAGE) {
            input_col = columns::IMAGE;
            // Binary and LargeBinary are read in place (a cast would copy every file's bytes).
            let as_large;
            let values = match col.data_type() {
                DataType::Binary => binary_values(col.as_binary::<i32>()),
                DataType::LargeBinary => binary_values(col.as_binary::<i64>()),
                _ => {
                    as_large = arrow::compute::cast(col, &DataType::LargeBinary)?;
                    binary_values(as_large.as_binary::<i64>())
                }
            };
            for (i, bytes) in values.into_iter().enumerate() {
                handle(i, self.decode_bytes(bytes, ids.value(i)));
            }
        } else {
            input_col = columns::PIXELS;
            let field = batch.schema().field_with_name(columns::PIXELS)?.clone();
            let (_, shape) = tensor_type(&field).ok_or_else(|| Error::data("bad pixels column"))?;
            let values: UInt8Array = columns::tensor_values(&batch, columns::PIXELS)?;
            let size: usize = shape.iter().product();
            for i in 0..n {
                let px = &values.values()[i * size..(i + 1) * size];
                let img = raw_image(px, &shape)
                    .map(Decoded::full_size)
                    .ok_or_else(|| "bad pixel buffer".to_string());
                handle(i, img);
            }
        }
        let pixels = tensor_array(Arc::new(UInt8Array::from(flat)), &self.out_shape())?;
        let keep = arrow::array::UInt32Array::from(keep);
        let schema = schema.clone();
        let mut cols = Vec::with_capacity(batch.num_columns());
        for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
            if field.name() == input_col {
                cols.push(Arc::new(pixels.clone()) as Arc<dyn Array>);
            } else {
                cols.push(arrow::compute::take(col, &keep, None)?);
            }
        }
        Ok(Processed {
            batch: RecordBatch::try_new(schema, cols)?,
            rejected,
        })
    }
}

/// Each row's bytes (empty for a null row).
fn binary_values<O: arrow::array::OffsetSizeTrait>(
    array: &arrow::array::GenericBinaryArray<O>,
) -> Vec<&[u8]> {
    array.iter().map(Option::unwrap_or_default).collect()
}
