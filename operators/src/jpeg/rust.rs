//! zune-jpeg called directly, with the options the `image` crate gives it (lenient, RGB out
//! of YCbCr or RGB, luma out of grayscale), so its pixels are the general decoder's.

use image::{DynamicImage, GrayImage, RgbImage};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::FastJpeg;

/// Decode a JPEG at full size; anything but 8-bit YCbCr, RGB or grayscale, and any error, is
/// declined to the general decoder (which gives the reason).
pub fn decode(bytes: &[u8], max_pixels: u64) -> FastJpeg {
    let options = DecoderOptions::default()
        .set_strict_mode(false)
        .set_max_width(usize::MAX)
        .set_max_height(usize::MAX);
    let mut decoder = JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    if decoder.decode_headers().is_err() {
        return FastJpeg::Declined;
    }
    let (Some((w, h)), Some(input)) = (decoder.dimensions(), decoder.input_colorspace()) else {
        return FastJpeg::Declined;
    };
    let (Ok(w), Ok(h)) = (u32::try_from(w), u32::try_from(h)) else {
        return FastJpeg::Declined;
    };
    if w as u64 * h as u64 > max_pixels {
        return FastJpeg::TooLarge(w, h);
    }
    let out = match input {
        ColorSpace::YCbCr | ColorSpace::RGB => ColorSpace::RGB,
        ColorSpace::Luma => ColorSpace::Luma,
        _ => return FastJpeg::Declined,
    };
    decoder.set_options(decoder.options().jpeg_set_out_colorspace(out));
    let Ok(pixels) = decoder.decode() else {
        return FastJpeg::Declined;
    };
    let image = match out {
        ColorSpace::Luma => GrayImage::from_raw(w, h, pixels).map(DynamicImage::ImageLuma8),
        _ => RgbImage::from_raw(w, h, pixels).map(DynamicImage::ImageRgb8),
    };
    match image {
        Some(image) => FastJpeg::Decoded {
            image,
            eighths: 8,
            origin: (0, 0),
        },
        None => FastJpeg::Declined,
    }
}
