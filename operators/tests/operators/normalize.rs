//! Normalisation: the lookup tables give the arithmetic's bits; [-1, 1] maps and inverts.

use std::sync::Arc;

use arrow::array::{Float32Array, UInt8Array};
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use ldae_operators::normalize::{Normalization, Normalize};
use ldae_pipeline::columns::{self, tensor_array, tensor_field};
use ldae_pipeline::Operator;

#[test]
fn tables_give_the_same_bits_as_the_arithmetic() {
    let normalization = Normalization::MeanStd {
        mean: vec![0.485, 0.456, 0.406],
        std: vec![0.229, 0.224, 0.225],
    };
    // Every pixel value in every channel: one 16 x 16 RGB image whose pixel k is (k, k, k).
    let values: Vec<u8> = (0..256 * 3).map(|i| (i / 3) as u8).collect();
    let shape = [16usize, 16, 3];
    let pixels = tensor_array(Arc::new(UInt8Array::from(values.clone())), &shape).unwrap();
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![tensor_field(
        columns::PIXELS,
        DataType::UInt8,
        &shape,
    )]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(pixels)]).unwrap();
    let bound = Normalize::new(normalization.clone()).bind(&schema).unwrap();
    let out = bound.process(batch).unwrap().batch;
    let got: Float32Array = columns::tensor_values(&out, columns::PIXELS).unwrap();
    let affine = normalization.affine(3).unwrap();
    for (i, (&x, &y)) in values.iter().zip(got.values()).enumerate() {
        let (scale, offset) = affine[i % 3];
        assert_eq!(
            y.to_bits(),
            (x as f32 * scale + offset).to_bits(),
            "value {i}"
        );
    }
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
