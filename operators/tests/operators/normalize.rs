//! Normalisation: every value is its channel's arithmetic, of pixels and of patches alike;
//! [-1, 1] maps and inverts.

use std::sync::Arc;

use arrow::array::{Float32Array, UInt8Array};
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use ldae_operators::normalize::{Normalization, Normalize};
use ldae_operators::patchify::PatchGeometry;
use ldae_pipeline::columns::{self, tensor_array, tensor_field};
use ldae_pipeline::Operator;

/// `normalize` over one batch of a UInt8 tensor column `column` of `shape`.
fn normalized(
    normalization: &Normalization,
    schema: &Arc<Schema>,
    column: &str,
    values: Vec<u8>,
    shape: &[usize],
) -> RecordBatch {
    let array = tensor_array(Arc::new(UInt8Array::from(values)), shape).unwrap();
    let field = tensor_field(column, DataType::UInt8, shape);
    let schema = Arc::new(Schema::new_with_metadata(
        vec![field],
        schema.metadata().clone(),
    ));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(array)]).unwrap();
    let bound = Normalize::new(normalization.clone()).bind(&schema).unwrap();
    bound.process(batch).unwrap().batch
}

#[test]
fn each_value_is_the_arithmetic_of_its_channel() {
    let normalization = |channels| Normalization::MeanStd {
        mean: (0..channels).map(|c| 0.4 + 0.03 * c as f32).collect(),
        std: (0..channels).map(|c| 0.22 + 0.01 * c as f32).collect(),
    };
    let none = Arc::new(Schema::empty());
    // Sizes that are and are not whole 8-pixel periods (the vector loop and its remainder),
    // at 1, 3 and 4 channels; every pixel value appears in every channel of the first.
    for shape in [[16usize, 16, 3], [5, 7, 3], [3, 3, 1], [3, 5, 4], [1, 1, 3]] {
        let (n, channels) = (shape.iter().product::<usize>(), shape[2]);
        let values: Vec<u8> = (0..n).map(|i| (i / channels * 37 + i) as u8).collect();
        let normalization = normalization(channels);
        let out = normalized(
            &normalization,
            &none,
            columns::PIXELS,
            values.clone(),
            &shape,
        );
        let got: Float32Array = columns::tensor_values(&out, columns::PIXELS).unwrap();
        let affine = normalization.affine(channels).unwrap();
        assert_eq!(got.len(), n);
        for (i, (&x, &y)) in values.iter().zip(got.values()).enumerate() {
            let (scale, offset) = affine[i % channels];
            assert_eq!(
                y.to_bits(),
                (x as f32 * scale + offset).to_bits(),
                "{shape:?}: value {i}"
            );
        }
    }
}

#[test]
fn normalized_patches_are_the_patches_of_normalized_pixels() {
    let normalization = Normalization::MeanStd {
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
    };
    let g = PatchGeometry::new(12, 3, 4).unwrap();
    let pixels: Vec<u8> = (0..12 * 12 * 3 * 2).map(|i| (i * 7 % 251) as u8).collect();
    let mut patches = Vec::new();
    for image in pixels.chunks_exact(12 * 12 * 3) {
        g.patchify_into(image, &mut patches);
    }
    let with_patch = Arc::new(
        Schema::empty()
            .with_metadata([(columns::META_PATCH_SIZE.to_string(), "4".to_string())].into()),
    );
    let none = Arc::new(Schema::empty());
    let a = normalized(
        &normalization,
        &with_patch,
        columns::PATCHES,
        patches,
        &[9, 48],
    );
    let b = normalized(&normalization, &none, columns::PIXELS, pixels, &[12, 12, 3]);
    let a: Float32Array = columns::tensor_values(&a, columns::PATCHES).unwrap();
    let b: Float32Array = columns::tensor_values(&b, columns::PIXELS).unwrap();
    let mut expected = Vec::new();
    for image in b.values().chunks_exact(12 * 12 * 3) {
        g.patchify_into(image, &mut expected);
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(a.values()), bits(&expected));
}

#[test]
fn patches_need_the_patch_size_to_know_their_channels() {
    let schema = Arc::new(Schema::new(vec![tensor_field(
        columns::PATCHES,
        DataType::UInt8,
        &[9, 48],
    )]));
    let err = Normalize::new(Normalization::MinusOneOne)
        .bind(&schema)
        .err()
        .expect("no patch size");
    let err = err.chain();
    assert!(err.contains("patch size"), "{err}");
}

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
