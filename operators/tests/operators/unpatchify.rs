//! Unpatchify inverts normalize + patchify back to the u8 pixels.

use std::sync::Arc;

use arrow::array::{StringArray, UInt8Array};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use ldae_operators::normalize::{Normalize, NormalizeConfig};
use ldae_operators::patchify::Patchify;
use ldae_operators::unpatchify::UnpatchifyConfig;
use ldae_pipeline::columns::{self, tensor_array, tensor_field};
use ldae_pipeline::{BuildContext, Operator, OperatorConfig};

#[test]
fn patchify_then_unpatchify_gives_the_u8_pixels_back() {
    let (s, c) = (8usize, 3usize);
    let pixels: Vec<u8> = (0..2 * s * s * c).map(|i| (i * 7 % 256) as u8).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        tensor_field(columns::PIXELS, DataType::UInt8, &[s, s, c]),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec!["a", "b"])),
            Arc::new(tensor_array(Arc::new(UInt8Array::from(pixels.clone())), &[s, s, c]).unwrap()),
        ],
    )
    .unwrap();
    let norm = NormalizeConfig::default().normalization().unwrap();
    let b = Normalize::new(norm).process_once(batch).unwrap().batch;
    let b = Patchify::new(4).process_once(b).unwrap().batch;
    let op = UnpatchifyConfig::default()
        .build(&BuildContext::default())
        .unwrap();
    let out = op.process_once(b).unwrap().batch;
    let back: UInt8Array = columns::tensor_values(&out, columns::PIXELS).unwrap();
    assert_eq!(back.values().to_vec(), pixels);
}
