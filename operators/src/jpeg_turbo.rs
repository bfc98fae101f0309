//! The fast path for JPEG: libjpeg-turbo (through the `turbojpeg` crate, cargo feature
//! `turbojpeg`), 1.3x faster per photo than the pure-Rust decoder on ImageNet-like photos,
//! with the same upsampling and IDCT as Pillow's.
//!
//! It can decode at a reduced scale M/8 in the inverse DCT; the caller chooses M from the
//! header's size (see `Decode`: 1/2, 1/4 or 1/8, whose SIMD inverse DCTs cost a fraction of a
//! full decode), so the crop it resizes from still has at least the output's pixels.
//!
//! It takes only what it decodes cleanly: 8-bit lossy JPEGs in YCbCr, RGB or grayscale,
//! baseline or progressive. Anything else (CMYK and YCCK, 12-bit and lossless JPEGs, and every
//! file libjpeg-turbo stops on or warns about, truncated ones included) goes to the general
//! decoder, which accepts or rejects it, with its reason, as it does without this path.

use std::cell::RefCell;

use image::{DynamicImage, RgbImage};
use turbojpeg::{Colorspace, Decompressor, Image, PixelFormat, ScalingFactor};

/// What the fast path made of a file.
pub(crate) enum Turbo {
    /// Decoded to RGB at `eighths / 8` of the header's size (rounded up).
    Decoded {
        /// The decoded (possibly scaled) image.
        image: DynamicImage,
        /// The scale it was decoded at, in eighths (8: full size).
        eighths: u32,
    },
    /// A clean header whose image is over the pixel limit: `(width, height)`.
    TooLarge(u32, u32),
    /// Not for this path (not a JPEG, or a kind or a defect the general decoder judges).
    Declined,
}

thread_local! {
    /// One decompressor per decode thread (it is `Send`, not `Sync`); made on first use.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Decode `bytes` if they are a JPEG this path takes, checking `max_pixels` from the header
/// before any pixel is decoded; `eighths(width, height)` chooses the scale (1..=8 eighths) from
/// the full size.
pub(crate) fn decode(
    bytes: &[u8],
    max_pixels: u64,
    eighths: impl FnOnce(u32, u32) -> u32,
) -> Turbo {
    if !bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Turbo::Declined;
    }
    DECOMPRESSOR.with_borrow_mut(|slot| {
        if slot.is_none() {
            *slot = Decompressor::new().ok();
        }
        match slot {
            Some(decompressor) => decode_with(decompressor, bytes, max_pixels, eighths),
            None => Turbo::Declined,
        }
    })
}

fn decode_with(
    decompressor: &mut Decompressor,
    bytes: &[u8],
    max_pixels: u64,
    eighths: impl FnOnce(u32, u32) -> u32,
) -> Turbo {
    let Ok(header) = decompressor.read_header(bytes) else {
        return Turbo::Declined;
    };
    let plain = matches!(
        header.colorspace,
        Colorspace::YCbCr | Colorspace::RGB | Colorspace::Gray
    );
    if !plain || header.is_lossless {
        return Turbo::Declined;
    }
    let (Ok(w), Ok(h)) = (u32::try_from(header.width), u32::try_from(header.height)) else {
        return Turbo::Declined;
    };
    if (w as u64) * (h as u64) > max_pixels {
        return Turbo::TooLarge(w, h);
    }
    let m = eighths(w, h).clamp(1, 8);
    // `new` reduces the fraction: libjpeg-turbo knows 3/4, not 6/8.
    let factor = ScalingFactor::new(m as usize, 8);
    if decompressor.set_scaling_factor(factor).is_err() {
        return Turbo::Declined;
    }
    let scaled = header.scaled(factor);
    let mut pixels = vec![0u8; 3 * scaled.width * scaled.height];
    let image = Image {
        pixels: pixels.as_mut_slice(),
        width: scaled.width,
        pitch: 3 * scaled.width,
        height: scaled.height,
        format: PixelFormat::RGB,
    };
    // An error here includes libjpeg-turbo's warnings (a truncated file, corrupt data): the
    // general decoder then judges the file, so a damaged photo is not half-grey here and
    // rejected (or repaired) there.
    if decompressor.decompress(bytes, image).is_err() {
        return Turbo::Declined;
    }
    match RgbImage::from_raw(scaled.width as u32, scaled.height as u32, pixels) {
        Some(rgb) => Turbo::Decoded {
            image: DynamicImage::ImageRgb8(rgb),
            eighths: m,
        },
        None => Turbo::Declined,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::codecs::jpeg::JpegEncoder;

    /// A 300x200 photo-like JPEG (smooth gradients and edges) at quality 90.
    fn photo_jpeg() -> Vec<u8> {
        let (w, h) = (300u32, 200u32);
        let rgb = RgbImage::from_fn(w, h, |x, y| {
            let r = (128.0 + 100.0 * (x as f32 / 23.0).sin()) as u8;
            let g = ((x + y) % 256) as u8;
            let b = if (x / 50 + y / 40) % 2 == 0 { 30 } else { 220 };
            image::Rgb([r, g, b])
        });
        let mut out = Vec::new();
        JpegEncoder::new_with_quality(&mut out, 90)
            .encode_image(&rgb)
            .unwrap();
        out
    }

    #[test]
    fn decodes_like_the_general_decoder() {
        let jpeg = photo_jpeg();
        let Turbo::Decoded {
            image: fast,
            eighths: 8,
        } = decode(&jpeg, u64::MAX, |_, _| 8)
        else {
            panic!("a plain JPEG is declined");
        };
        let general = image::load_from_memory(&jpeg).unwrap().into_rgb8();
        let fast = fast.into_rgb8();
        assert_eq!(fast.dimensions(), general.dimensions());
        let diffs: Vec<i32> = fast
            .as_raw()
            .iter()
            .zip(general.as_raw())
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .collect();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        // The two differ only in IDCT rounding and chroma upsampling.
        assert!(mean < 1.0, "mean difference {mean}");
        assert!(*diffs.iter().max().unwrap() <= 24);
    }

    #[test]
    fn declines_what_it_does_not_decode_cleanly_and_checks_the_limit() {
        let jpeg = photo_jpeg();
        assert!(matches!(
            decode(&jpeg[..jpeg.len() / 2], u64::MAX, |_, _| 8),
            Turbo::Declined
        ));
        assert!(matches!(
            decode(b"\x89PNG\r\n\x1a\n", u64::MAX, |_, _| 8),
            Turbo::Declined
        ));
        assert!(matches!(
            decode(&jpeg, 1000, |_, _| 8),
            Turbo::TooLarge(300, 200)
        ));
    }

    #[test]
    fn scaled_decode_has_the_rounded_up_size_and_the_same_picture() {
        let jpeg = photo_jpeg();
        let mut sizes = Vec::new();
        for m in 1..=8 {
            let Turbo::Decoded { image, eighths } = decode(&jpeg, u64::MAX, |w, h| {
                assert_eq!((w, h), (300, 200));
                m
            }) else {
                panic!("declined at {m}/8");
            };
            assert_eq!(eighths, m);
            sizes.push((image.width(), image.height()));
        }
        // ceil(300 m / 8) x ceil(200 m / 8)
        assert_eq!(sizes[0], (38, 25));
        assert_eq!(sizes[4], (188, 125));
        assert_eq!(sizes[5], (225, 150));
        assert_eq!(sizes[7], (300, 200));
        // At half scale each pixel is close to the mean of its 2x2 block at full scale.
        let Turbo::Decoded { image: half, .. } = decode(&jpeg, u64::MAX, |_, _| 4) else {
            panic!()
        };
        let full = image::load_from_memory(&jpeg).unwrap().into_rgb8();
        let half = half.into_rgb8();
        let mut total = 0.0;
        for (x, y, p) in half.enumerate_pixels() {
            for c in 0..3 {
                let block: f64 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                    .iter()
                    .map(|(dx, dy)| full.get_pixel(2 * x + dx, 2 * y + dy)[c] as f64)
                    .sum::<f64>()
                    / 4.0;
                total += (p[c] as f64 - block).abs();
            }
        }
        let mean = total / (3 * half.width() * half.height()) as f64;
        assert!(mean < 3.0, "mean difference from the 2x2 means {mean}");
    }
}
