//! Decode: shapes and channels, augmentation independent of batching, DCT-scaled JPEG decoding
//! close to the full decode, region decoding the same as the whole decode, the trim.

use std::sync::Arc;

use arrow::array::{AsArray, StringArray, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema, UInt8Type};
use arrow::record_batch::RecordBatch;
use ldae_operators::augment::AugmentConfig;
use ldae_operators::decode::{Decode, DecodeConfig};
use ldae_pipeline::columns::{self, tensor_array, tensor_field, tensor_type};
use ldae_pipeline::Operator;

/// A batch of `n` raw 40x30 RGB images with ids `img{i}`.
fn raw_batch(n: usize) -> RecordBatch {
    let shape = [30, 40, 3];
    let size: usize = shape.iter().product();
    let pixels: Vec<u8> = (0..n * size).map(|i| (i * 31 % 251) as u8).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new(columns::ID, DataType::Utf8, false),
        tensor_field(columns::PIXELS, DataType::UInt8, &shape),
    ]));
    let ids: StringArray = (0..n).map(|i| Some(format!("img{i}"))).collect();
    let px = tensor_array(Arc::new(UInt8Array::from(pixels)), &shape).unwrap();
    RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(px)]).unwrap()
}

fn pixels(batch: &RecordBatch) -> Vec<u8> {
    let list = batch
        .column_by_name(columns::PIXELS)
        .unwrap()
        .as_fixed_size_list();
    list.values().as_primitive::<UInt8Type>().values().to_vec()
}

#[test]
fn centre_crop_resize_gives_requested_shape_and_channels() {
    for channels in [1u8, 3] {
        let op = Decode::new(DecodeConfig {
            image_size: 16,
            channels,
            ..DecodeConfig::default()
        })
        .unwrap();
        let batch = raw_batch(3);
        let out = op.process_once(batch.clone()).unwrap();
        assert!(out.rejected.is_empty());
        let field = out
            .batch
            .schema()
            .field_with_name(columns::PIXELS)
            .unwrap()
            .clone();
        assert_eq!(
            tensor_type(&field),
            Some((DataType::UInt8, vec![16, 16, channels as usize]))
        );
        assert_eq!(pixels(&out.batch).len(), 3 * 16 * 16 * channels as usize);
    }
}

#[test]
fn augmentation_is_per_row_whatever_the_batching() {
    let op = Decode::new(DecodeConfig {
        image_size: 16,
        augment: Some(AugmentConfig {
            seed: 9,
            ..AugmentConfig::default()
        }),
        ..DecodeConfig::default()
    })
    .unwrap();
    let batch = raw_batch(6);
    let whole = pixels(&op.process_once(batch.clone()).unwrap().batch);
    let mut parts = pixels(&op.process_once(batch.slice(0, 4)).unwrap().batch);
    parts.extend(pixels(&op.process_once(batch.slice(4, 2)).unwrap().batch));
    assert_eq!(whole, parts);
    let plain = Decode::new(DecodeConfig {
        image_size: 16,
        ..DecodeConfig::default()
    })
    .unwrap();
    assert_ne!(whole, pixels(&plain.process_once(batch).unwrap().batch));
}

/// A batch of one encoded image under `id` `photo`.
fn encoded_batch(bytes: Vec<u8>) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new(columns::ID, DataType::Utf8, false),
        Field::new(columns::IMAGE, DataType::Binary, false),
    ]));
    let ids = StringArray::from(vec!["photo"]);
    let images = arrow::array::BinaryArray::from(vec![bytes.as_slice()]);
    RecordBatch::try_new(schema, vec![Arc::new(ids), Arc::new(images)]).unwrap()
}

#[test]
fn dct_scaled_decode_stays_close_to_the_full_decode_and_keeps_augmentation() {
    // A 900x700 photo-like JPEG: at S = 96 the 700 px crop decodes at 1/4 (175 >= 96).
    let (w, h) = (900u32, 700u32);
    let rgb = image::RgbImage::from_fn(w, h, |x, y| {
        let r = (128.0 + 100.0 * (x as f32 / 41.0).sin() * (y as f32 / 57.0).cos()) as u8;
        let g = ((x / 3 + y / 5) % 256) as u8;
        let b = if (x / 90 + y / 70) % 2 == 0 { 40 } else { 210 };
        image::Rgb([r, g, b])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 92)
        .encode_image(&rgb)
        .unwrap();
    for augment in [None, Some(AugmentConfig::default())] {
        let run = |scaling: bool| {
            let op = Decode::new(DecodeConfig {
                image_size: 96,
                augment: augment.clone(),
                jpeg_dct_scaling: scaling,
                ..DecodeConfig::default()
            })
            .unwrap();
            let eighths = op.dct_eighths("photo", w, h);
            match (scaling, &augment) {
                (false, _) => assert_eq!(eighths, 8),
                (true, None) => assert_eq!(eighths, 2),
                // The random crop decides; it must still cover S pixels each side.
                (true, Some(_)) => assert!(eighths < 8, "crop decoded at full size"),
            }
            pixels(&op.process_once(encoded_batch(jpeg.clone())).unwrap().batch)
        };
        let (full, scaled) = (run(false), run(true));
        if !ldae_operators::jpeg::decoder().scales_in_dct() {
            // The pure-Rust decoder ignores the setting: the same pixels.
            assert_eq!(full, scaled);
            continue;
        }
        assert_ne!(full, scaled, "the scaled path ran");
        let diffs: Vec<i32> = full
            .iter()
            .zip(&scaled)
            .map(|(&a, &b)| (a as i32 - b as i32).abs())
            .collect();
        let mean = diffs.iter().sum::<i32>() as f64 / diffs.len() as f64;
        // The same crop (planned on the full size) of the same picture: a wrong crop or a
        // wrong coordinate scale would move whole edges, tens of levels.
        assert!(mean < 2.5, "mean difference {mean} (augment {augment:?})");
    }
}

/// A `w x h` photo-like JPEG (smooth waves, ramps and hard edges) at quality 90.
fn photo(w: u32, h: u32) -> Vec<u8> {
    let rgb = image::RgbImage::from_fn(w, h, |x, y| {
        let r = (128.0 + 100.0 * (x as f32 / 17.0).sin() * (y as f32 / 29.0).cos()) as u8;
        let g = ((x * 2 + y) % 256) as u8;
        let b = if (x / 37 + y / 23) % 2 == 0 { 35 } else { 215 };
        image::Rgb([r, g, b])
    });
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode_image(&rgb)
        .unwrap();
    jpeg
}

#[test]
fn region_decoding_gives_the_whole_decodes_output() {
    use ldae_operators::decode::Interpolation;
    for (w, h) in [(500u32, 375u32), (375, 500)] {
        let jpeg = photo(w, h);
        for interpolation in [Interpolation::Bilinear, Interpolation::Bicubic] {
            for augment in [None, Some(AugmentConfig::default())] {
                let run = |region: bool| {
                    let op = Decode::new(DecodeConfig {
                        image_size: 224,
                        interpolation,
                        augment: augment.clone(),
                        jpeg_region: region,
                        ..DecodeConfig::default()
                    })
                    .unwrap();
                    let plan = op.decode_plan("photo", w, h);
                    assert_eq!(plan.region.is_some(), region);
                    pixels(&op.process_once(encoded_batch(jpeg.clone())).unwrap().batch)
                };
                let (whole, part) = (run(false), run(true));
                // The region's pixels are the whole decode's (tested in jpeg.rs); the resize
                // then runs from another origin, whose filter weights may round apart by a
                // level now and then (the decode config's documentation states this).
                let off: Vec<i32> = whole
                    .iter()
                    .zip(&part)
                    .map(|(&a, &b)| (a as i32 - b as i32).abs())
                    .filter(|&d| d > 0)
                    .collect();
                let case = format!("{w}x{h} {interpolation:?} augment {}", augment.is_some());
                assert!(off.iter().all(|&d| d <= 1), "{case}: {off:?}");
                assert!(
                    off.len() * 10_000 <= whole.len(),
                    "{case}: {} values off",
                    off.len()
                );
            }
        }
    }
}

/// `trim` keeps the top-left `S - trim` square of the eval crop, pixel for pixel: what a
/// stride-14 patch embedding reads of a 384 px crop (378). A trim as large as the crop is refused.
#[test]
fn trim_keeps_the_top_left_of_the_crop() {
    let jpeg = photo(500, 375);
    let run = |trim: u32| {
        let op = Decode::new(DecodeConfig {
            image_size: 384,
            crop_pct: Some(1.0),
            trim,
            ..DecodeConfig::default()
        })
        .unwrap();
        let out = op.process_once(encoded_batch(jpeg.clone())).unwrap().batch;
        let field = out
            .schema()
            .field_with_name(columns::PIXELS)
            .unwrap()
            .clone();
        (tensor_type(&field).unwrap().1, pixels(&out))
    };
    let (whole_shape, whole) = run(0);
    let (shape, trimmed) = run(6);
    assert_eq!((whole_shape, shape), (vec![384, 384, 3], vec![378, 378, 3]));
    for y in [0usize, 200, 377] {
        let row = &whole[y * 384 * 3..(y * 384 + 378) * 3];
        assert_eq!(&trimmed[y * 378 * 3..(y + 1) * 378 * 3], row, "row {y}");
    }
    let too_much = DecodeConfig {
        image_size: 16,
        trim: 16,
        ..DecodeConfig::default()
    };
    assert!(Decode::new(too_much).is_err());
}
