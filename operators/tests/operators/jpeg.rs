//! The JPEG fast paths: libjpeg-turbo (where it loads) decodes like the general decoder, at
//! full size and scaled in the inverse DCT; zune-jpeg equals it bit for bit; both decline what
//! they do not decode cleanly and check the pixel limit from the header.

use image::codecs::jpeg::JpegEncoder;
use image::{DynamicImage, RgbImage};
use ldae_operators::jpeg::{self, DecodePlan, FastJpeg, Region};

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
fn the_decoder_names_itself() {
    let name = jpeg::decoder().to_string();
    assert!(
        name.starts_with("libjpeg") || name.starts_with("zune-jpeg"),
        "{name}"
    );
}

/// Whether libjpeg-turbo decodes here. The header this was built with comes with its library
/// (libjpeg-dev depends on it), so a build with the shim that cannot load it is a failure, not
/// a skip; a build without the header has only the Rust path (tested below).
fn libjpeg_loaded() -> bool {
    let decoder = jpeg::decoder();
    if jpeg::BUILT_WITH_LIBJPEG && std::env::var("LDAE_JPEG_DECODER").as_deref() != Ok("rust") {
        assert!(decoder.scales_in_dct(), "{decoder}");
    }
    decoder.scales_in_dct()
}

#[test]
fn decodes_like_the_general_decoder() {
    if !libjpeg_loaded() {
        return;
    }
    let jpeg = photo_jpeg();
    let FastJpeg::Decoded {
        image: fast,
        eighths: 8,
        ..
    } = libjpeg(&jpeg, u64::MAX, |_, _| 8)
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
    if !libjpeg_loaded() {
        return;
    }
    let jpeg = photo_jpeg();
    assert!(matches!(
        libjpeg(&jpeg[..jpeg.len() / 2], u64::MAX, |_, _| 8),
        FastJpeg::Declined
    ));
    assert!(matches!(
        libjpeg(b"\x89PNG\r\n\x1a\n", u64::MAX, |_, _| 8),
        FastJpeg::Declined
    ));
    assert!(matches!(
        libjpeg(&jpeg, 1000, |_, _| 8),
        FastJpeg::TooLarge(300, 200)
    ));
}

#[test]
fn scaled_decode_has_the_rounded_up_size_and_the_same_picture() {
    if !libjpeg_loaded() {
        return;
    }
    let jpeg = photo_jpeg();
    let mut sizes = Vec::new();
    for m in 1..=8 {
        let FastJpeg::Decoded { image, eighths, .. } = libjpeg(&jpeg, u64::MAX, |w, h| {
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
    let FastJpeg::Decoded { image: half, .. } = libjpeg(&jpeg, u64::MAX, |_, _| 4) else {
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

#[test]
fn decodes_into_recycled_buffers_as_into_fresh_ones() {
    if !libjpeg_loaded() {
        return;
    }
    let jpeg = photo_jpeg();
    let decode = |eighths: u32| match libjpeg(&jpeg, u64::MAX, |_, _| eighths) {
        FastJpeg::Decoded { image, .. } => image.into_rgb8(),
        _ => panic!("declined at {eighths}/8"),
    };
    let fresh: Vec<RgbImage> = [8, 2, 8].map(decode).into();
    // Each image's buffer is given back before the next decode, a large one before a small
    // one and a small one (with a large capacity) before a large one.
    for (i, eighths) in [8, 2, 8].into_iter().enumerate() {
        jpeg::recycle(vec![0xAB; 400_000]);
        let again = decode(eighths);
        assert_eq!(again, fresh[i], "at {eighths}/8");
        jpeg::recycle(again.into_raw());
    }
}

/// The libjpeg-turbo path alone.
fn libjpeg<P: Into<DecodePlan>>(
    bytes: &[u8],
    max_pixels: u64,
    plan: impl FnOnce(u32, u32) -> P,
) -> FastJpeg {
    jpeg::decode_libjpeg(bytes, max_pixels, plan).expect("libjpeg-turbo loaded")
}

#[test]
fn a_region_decode_gives_the_whole_decodes_pixels_there() {
    if !libjpeg_loaded() {
        return;
    }
    let jpeg = photo_jpeg(); // 300 x 200, chroma subsampled
    for (eighths, region) in [
        (
            8,
            Region {
                x0: 37,
                y0: 21,
                x1: 251,
                y1: 170,
            },
        ),
        (
            8,
            Region {
                x0: 0,
                y0: 0,
                x1: 130,
                y1: 200,
            },
        ),
        (
            8,
            Region {
                x0: 100,
                y0: 150,
                x1: 300,
                y1: 200,
            },
        ),
        (
            4,
            Region {
                x0: 20,
                y0: 9,
                x1: 120,
                y1: 91,
            },
        ),
    ] {
        let FastJpeg::Decoded { image: whole, .. } = libjpeg(&jpeg, u64::MAX, |_, _| eighths)
        else {
            panic!("declined whole")
        };
        let plan = DecodePlan {
            eighths,
            region: Some(region),
        };
        let FastJpeg::Decoded {
            image: part,
            eighths: m,
            origin,
        } = libjpeg(&jpeg, u64::MAX, |_, _| plan)
        else {
            panic!("declined {region:?}")
        };
        assert_eq!(m, eighths);
        let (whole, part) = (whole.into_rgb8(), part.into_rgb8());
        // The rows asked for; at least the columns asked for (widened to whole blocks), and
        // fewer than the whole width where the region is narrower.
        assert_eq!(origin.1, region.y0);
        assert_eq!(part.height(), region.y1 - region.y0);
        assert!(
            origin.0 <= region.x0 && origin.0 + part.width() >= region.x1,
            "{origin:?} {}",
            part.width()
        );
        if region.x1 - region.x0 < whole.width() / 2 {
            assert!(part.width() < whole.width());
        }
        for (x, y, p) in part.enumerate_pixels() {
            assert_eq!(
                p,
                whole.get_pixel(origin.0 + x, origin.1 + y),
                "({x}, {y}) of {region:?} at {eighths}/8"
            );
        }
    }
}

#[test]
fn equals_the_general_decoder_bit_for_bit() {
    let jpeg = photo_jpeg();
    let FastJpeg::Decoded {
        image, eighths: 8, ..
    } = jpeg::rust::decode(&jpeg, u64::MAX)
    else {
        panic!("a plain JPEG is declined");
    };
    let general = image::load_from_memory(&jpeg).unwrap();
    assert_eq!(image, general);
    let gray = DynamicImage::ImageRgb8(general.into_rgb8()).into_luma8();
    let mut gray_jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut gray_jpeg, 90)
        .encode_image(&gray)
        .unwrap();
    let FastJpeg::Decoded { image, .. } = jpeg::rust::decode(&gray_jpeg, u64::MAX) else {
        panic!("a grayscale JPEG is declined");
    };
    assert_eq!(image, image::load_from_memory(&gray_jpeg).unwrap());
}

#[test]
fn checks_the_limit_and_declines_what_is_not_a_jpeg() {
    let jpeg = photo_jpeg();
    assert!(matches!(
        jpeg::rust::decode(&jpeg, 1000),
        FastJpeg::TooLarge(300, 200)
    ));
    assert!(matches!(
        jpeg::rust::decode(b"\xFF\xD8\xFFgarbage", u64::MAX),
        FastJpeg::Declined
    ));
}
