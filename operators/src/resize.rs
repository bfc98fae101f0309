//! The resize behind `decode`: Pillow's antialiased filters (SIMD convolution of
//! `fast_image_resize`, in 8-bit fixed point) over a crop of a decoded image, the eval
//! resize-then-centre-crop (torchvision's and transformers'), and the horizontal flip.

use fast_image_resize::images::{Image as FirImage, ImageRef};
use fast_image_resize::{FilterType as FirFilter, PixelType, ResizeAlg, ResizeOptions, Resizer};

use ldae_pipeline::{Error, Result};

use crate::augment::CropPlan;

/// The filter images are resized with.
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
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// Pillow's `BILINEAR` (triangle filter).
    #[default]
    Bilinear,
    /// Pillow's `BICUBIC` (Keys' cubic, a = -0.5).
    Bicubic,
}

impl Interpolation {
    pub(crate) fn is_bilinear(&self) -> bool {
        *self == Interpolation::Bilinear
    }

    pub(crate) fn filter(self) -> FirFilter {
        match self {
            Interpolation::Bilinear => FirFilter::Bilinear,
            // Catmull-Rom is Keys' cubic with a = -0.5, Pillow's BICUBIC.
            Interpolation::Bicubic => FirFilter::CatmullRom,
        }
    }
}

impl std::str::FromStr for Interpolation {
    type Err = Error;
    /// The serde name (`bilinear`, `bicubic`), as `--interpolation` and a timm folder's
    /// `pretrained_cfg` name it.
    fn from_str(s: &str) -> Result<Self> {
        ldae_pipeline::names::parse_name(s)
    }
}

/// Interleaved u8 pixels (luma or RGB) decoded at `scale` of the full-size image: the whole
/// image, or a region of it whose top-left pixel is `origin` (in pixels at that scale).
pub(crate) struct DecodedPixels<'a> {
    pub(crate) pixels: &'a [u8],
    pub(crate) width: u32,
    pub(crate) height: u32,
    pub(crate) pixel_type: PixelType,
    pub(crate) scale: f64,
    pub(crate) origin: (u32, u32),
}

/// The `plan` crop (in full-size pixels) of `src`, resized to `side x side` with an
/// antialiased `filter` whose support widens with the downscale factor, as Pillow's (SIMD
/// convolution of `fast_image_resize`, in 8-bit fixed point; a full-size crop already
/// `side x side` is copied as it is).
pub(crate) fn resize_crop(
    src: &DecodedPixels,
    plan: &CropPlan,
    side: u32,
    filter: FirFilter,
) -> std::result::Result<Vec<u8>, String> {
    let CropPlan {
        x,
        y,
        width,
        height,
        ..
    } = *plan;
    let DecodedPixels {
        pixels,
        width: w,
        height: h,
        pixel_type,
        scale,
        origin: (ox, oy),
    } = *src;
    let bpp = pixel_type.size();
    if (width, height) == (side, side) && scale == 1.0 {
        let mut out = Vec::with_capacity((side * side) as usize * bpp);
        for row in y - oy..y - oy + height {
            let start = (row as usize * w as usize + (x - ox) as usize) * bpp;
            out.extend_from_slice(&pixels[start..start + width as usize * bpp]);
        }
        return Ok(out);
    }
    let src = ImageRef::new(w, h, pixels, pixel_type).map_err(|e| e.to_string())?;
    let mut dst = FirImage::new(side, side, pixel_type);
    // A decode at M/8 maps full-size coordinate u to u * M/8 (each scaled pixel covers 8/M
    // full-size ones), exactly in f64; the scaled size is rounded up, so the crop stays inside.
    let options = ResizeOptions::new()
        .resize_alg(ResizeAlg::Convolution(filter))
        .crop(
            x as f64 * scale - ox as f64,
            y as f64 * scale - oy as f64,
            width as f64 * scale,
            height as f64 * scale,
        );
    RESIZER
        .with_borrow_mut(|r| r.resize(&src, &mut dst, &options))
        .map_err(|e| format!("resize: {e}"))?;
    Ok(dst.into_vec())
}

/// Where the eval transform's resize goes before its centre crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EvalResize {
    /// The side the resize targets: the shorter side's new length, or both sides' with `squash`.
    pub(crate) short: u32,
    /// Both sides resized to `short`, the aspect ratio not kept (timm's `crop_mode = squash`,
    /// transformers' `size = {height, width}`).
    pub(crate) squash: bool,
    /// The crop's offsets rounded down (transformers' `center_crop`) rather than to the
    /// nearest, half to even (torchvision's `CenterCrop`).
    pub(crate) floor_offsets: bool,
}

/// torchvision's `Resize(short)` then `CenterCrop(side)` of a full-size `src`: the shorter side
/// resized to `short` (the longer one to `int(short * long / short_side)`), or both sides with
/// `squash`, then the centre `side x side`, its offsets `round((size - side) / 2)` with
/// Python's round (half to even), or rounded down with `floor_offsets`.
pub(crate) fn resize_then_center_crop(
    src: &DecodedPixels,
    geometry: EvalResize,
    side: u32,
    filter: FirFilter,
) -> std::result::Result<Vec<u8>, String> {
    let (w, h, bpp) = (src.width, src.height, src.pixel_type.size());
    let short = geometry.short;
    let long = |l: u32, s: u32| (short as f64 * l as f64 / s as f64) as u32;
    let (new_w, new_h) = if geometry.squash {
        (short, short)
    } else if w <= h {
        (short, long(h, w))
    } else {
        (long(w, h), short)
    };
    if new_w < side || new_h < side {
        return Err(format!(
            "{w}x{h} image resized to {new_w}x{new_h} is smaller than the {side} crop"
        ));
    }
    // Pillow resizes rows first, then columns, rounding to 8 bits in between;
    // fast_image_resize does columns first for u8 images. The order matters where a cubic
    // filter overshoots and the intermediate clips (up to 14 levels apart on real photos), so
    // the two passes are run one at a time, in Pillow's order.
    let resize = |pixels: &[u8], from: (u32, u32), to: (u32, u32)| {
        if from == to {
            return Ok(pixels.to_vec());
        }
        let src =
            ImageRef::new(from.0, from.1, pixels, src.pixel_type).map_err(|e| e.to_string())?;
        let mut dst = FirImage::new(to.0, to.1, src.pixel_type());
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(filter));
        RESIZER
            .with_borrow_mut(|r| r.resize(&src, &mut dst, &options))
            .map_err(|e| format!("resize: {e}"))?;
        Ok::<_, String>(dst.into_vec())
    };
    let rows = resize(src.pixels, (w, h), (new_w, h))?;
    let resized = resize(&rows, (new_w, h), (new_w, new_h))?;
    let offset = |size: u32| match geometry.floor_offsets {
        true => ((size - side) / 2) as usize,
        false => ((size - side) as f64 / 2.0).round_ties_even() as usize,
    };
    let (top, left) = (offset(new_h), offset(new_w));
    let row = new_w as usize * bpp;
    let mut out = Vec::with_capacity((side * side) as usize * bpp);
    for y in top..top + side as usize {
        let start = y * row + left * bpp;
        out.extend_from_slice(&resized[start..start + side as usize * bpp]);
    }
    Ok(out)
}

/// Mirror each row of a `side x side` image of `bpp` bytes per pixel in place.
pub(crate) fn flip_rows(pixels: &mut [u8], side: usize, bpp: usize) {
    for row in pixels.chunks_exact_mut(side * bpp) {
        for i in 0..side / 2 {
            let j = side - 1 - i;
            for c in 0..bpp {
                row.swap(i * bpp + c, j * bpp + c);
            }
        }
    }
}

thread_local! {
    /// One resizer per decode thread: it keeps its scratch buffers between images.
    static RESIZER: std::cell::RefCell<Resizer> = std::cell::RefCell::new(Resizer::new());
}

/// The top-left `keep x keep` pixels of a row-major `side x side` image of `bpp` bytes a pixel
/// (what a stride-p patch embedding reads when p does not divide the side).
pub(crate) fn top_left(pixels: &[u8], side: usize, keep: usize, bpp: usize) -> Vec<u8> {
    pixels
        .chunks_exact(side * bpp)
        .take(keep)
        .flat_map(|row| &row[..keep * bpp])
        .copied()
        .collect()
}
