//! Patch geometry: unpatchify inverts patchify, patchify_into appends the same values, the
//! documented element order, bad sizes, the operator on bytes and on floats.

use ldae_operators::patchify::PatchGeometry;

#[test]
fn unpatchify_inverts_patchify() {
    for (s, c, p) in [(32, 3, 4), (28, 1, 7), (16, 3, 16), (6, 2, 1)] {
        let g = PatchGeometry::new(s, c, p).unwrap();
        let image: Vec<f32> = (0..s * s * c).map(|x| (x as f32).sin()).collect();
        let mut patches = vec![0.0; image.len()];
        g.patchify(&image, &mut patches);
        let mut back = vec![0.0; image.len()];
        g.unpatchify(&patches, &mut back);
        assert_eq!(back, image);
    }
}

#[test]
fn patchify_into_appends_what_patchify_writes() {
    for (s, c, p) in [(32, 3, 4), (28, 1, 7), (16, 3, 16), (6, 2, 1)] {
        let g = PatchGeometry::new(s, c, p).unwrap();
        let image: Vec<f32> = (0..s * s * c).map(|x| (x as f32).cos()).collect();
        let mut patches = vec![0.0; image.len()];
        g.patchify(&image, &mut patches);
        // Two images one after another, after something already in the buffer.
        let mut appended = vec![7.0];
        g.patchify_into(&image, &mut appended);
        g.patchify_into(&image, &mut appended);
        assert_eq!(appended.len(), 1 + 2 * image.len());
        assert_eq!(appended[0], 7.0);
        assert_eq!(&appended[1..1 + image.len()], &patches[..]);
        assert_eq!(&appended[1 + image.len()..], &patches[..]);
    }
}

#[test]
fn element_order_is_as_documented() {
    let g = PatchGeometry::new(4, 3, 2).unwrap();
    let image: Vec<f32> = (0..48).map(|x| x as f32).collect();
    let mut patches = vec![0.0; 48];
    g.patchify(&image, &mut patches);
    // token 1 = grid (0, 1); element (py=1, px=0, c=2) = pixel (1, 2) channel 2.
    let d = g.patch_dim();
    assert_eq!(patches[d + (2) * 3 + 2], image[(4 + 2) * 3 + 2]);
}

#[test]
fn rejects_patch_not_dividing_size() {
    assert!(PatchGeometry::new(32, 3, 5).is_err());
}

#[test]
fn the_operator_patchifies_bytes_and_floats_alike() {
    use std::sync::Arc;

    use arrow::array::{Float32Array, UInt8Array};
    use arrow::datatypes::{DataType, Schema};
    use arrow::record_batch::RecordBatch;
    use ldae_operators::patchify::Patchify;
    use ldae_pipeline::columns::{self, tensor_array, tensor_field, tensor_type};
    use ldae_pipeline::Operator;

    let g = PatchGeometry::new(8, 3, 4).unwrap();
    let bytes: Vec<u8> = (0..2 * 8 * 8 * 3).map(|i| (i * 13 % 256) as u8).collect();
    let run = |values: arrow::array::ArrayRef, element: DataType| {
        let schema = Arc::new(Schema::new(vec![tensor_field(
            columns::PIXELS,
            element.clone(),
            &[8, 8, 3],
        )]));
        let bound = Patchify::new(4).bind(&schema).unwrap();
        let field = bound
            .schema()
            .field_with_name(columns::PATCHES)
            .unwrap()
            .clone();
        assert_eq!(tensor_type(&field), Some((element, vec![4, 48])));
        let pixels = tensor_array(values, &[8, 8, 3]).unwrap();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(pixels)]).unwrap();
        bound.process(batch).unwrap().batch
    };
    let out = run(Arc::new(UInt8Array::from(bytes.clone())), DataType::UInt8);
    let got: UInt8Array = columns::tensor_values(&out, columns::PATCHES).unwrap();
    let floats: Vec<f32> = bytes.iter().map(|&b| b as f32).collect();
    let out = run(
        Arc::new(Float32Array::from(floats.clone())),
        DataType::Float32,
    );
    let got_f: Float32Array = columns::tensor_values(&out, columns::PATCHES).unwrap();
    let mut expected = Vec::new();
    for image in floats.chunks_exact(8 * 8 * 3) {
        g.patchify_into(image, &mut expected);
    }
    assert_eq!(got_f.values().to_vec(), expected);
    let widened: Vec<f32> = got.values().iter().map(|&b| b as f32).collect();
    assert_eq!(widened, expected);
}
