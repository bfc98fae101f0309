//! Rows handed over as Arrow batches by another engine (Ray Data, Spark, Daft, a notebook),
//! turned into the batches every source yields: `id, label, image`.
//!
//! What such batches look like: a Hugging Face `image` column (a `{bytes, path}` struct, or
//! plain binary), an optional integer `label`, often no `id`. The rules match the Parquet
//! source's: the encoded bytes are the image, labels are class indices, and a row that cannot
//! be read is rejected (not dropped, not a failure of the batch). The `id` is the batch's `id`
//! column when it has one, else the image's `path`, else the row's position in the batch.
//! Other columns are not carried (as with every source).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BinaryBuilder, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns;
use ldae_pipeline::{Error, Processed, Rejection, Result};

/// `ldae.source.kind` of batches made here.
pub const KIND: &str = "arrow";

/// The batch's rows as a source batch of `id, label, image` (Binary), with the rows that cannot
/// be read (no image bytes, a negative label) rejected by id. A batch whose columns cannot be
/// read at all (an `image` of another type, a non-integer `label`) is an error naming the
/// column.
pub fn source_rows(batch: &RecordBatch) -> Result<Processed> {
    let n = batch.num_rows();
    let image = batch
        .column_by_name(columns::IMAGE)
        .ok_or_else(|| {
            Error::data(format!(
                "no '{}' column of encoded images; the batch has {}",
                columns::IMAGE,
                columns::column_list(&batch.schema())
            ))
        })?
        .clone();
    let (bytes, paths) = match image.data_type() {
        DataType::Struct(_) => {
            let s = image.as_struct();
            let bytes = s.column_by_name("bytes").cloned().ok_or_else(|| {
                Error::data("column 'image' is a struct without a 'bytes' field".to_string())
            })?;
            let paths = s
                .column_by_name("path")
                .map(|p| arrow::compute::cast(p, &DataType::Utf8))
                .transpose()?;
            // A null struct hides its fields' values.
            let bytes = match s.nulls() {
                Some(nulls) => arrow::array::make_array(
                    bytes
                        .to_data()
                        .into_builder()
                        .nulls(arrow::buffer::NullBuffer::union(Some(nulls), bytes.nulls()))
                        .build()?,
                ),
                None => bytes,
            };
            (bytes, paths)
        }
        _ => (image, None),
    };
    if !matches!(
        bytes.data_type(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView
    ) {
        return Err(Error::data(format!(
            "column 'image' holds {}; expected encoded image bytes (binary, or a struct with a binary 'bytes' field)",
            bytes.data_type()
        )));
    }
    let bytes = arrow::compute::cast(&bytes, &DataType::LargeBinary)?;
    let bytes = bytes.as_binary::<i64>();

    let given_ids = batch
        .column_by_name(columns::ID)
        .map(|ids| {
            arrow::compute::cast(ids, &DataType::Utf8).map_err(|e| {
                let what = format!("column 'id' ({}) cannot be read as text", ids.data_type());
                Error::external(what, e)
            })
        })
        .transpose()?;
    let text = |a: &Option<ArrayRef>, row: usize| {
        a.as_ref()
            .map(|a| a.as_string::<i32>())
            .filter(|a| !a.is_null(row))
            .map(|a| a.value(row).to_string())
    };
    let ids: Vec<String> = (0..n)
        .map(|row| {
            text(&given_ids, row)
                .or_else(|| text(&paths, row))
                .unwrap_or_else(|| row.to_string())
        })
        .collect();

    let labels = match batch.column_by_name(columns::LABEL) {
        Some(l) if !l.data_type().is_integer() && l.data_type() != &DataType::Null => {
            return Err(Error::data(format!(
                "column 'label' is {}; labels must be integers (class indices), cast the column to int64",
                l.data_type()
            )))
        }
        Some(l) => Some((l.clone(), arrow::compute::cast(l, &DataType::Int64)?)),
        None => None,
    };

    let mut keep = Vec::with_capacity(n);
    let mut rejected = Vec::new();
    let mut out_labels = Vec::with_capacity(n);
    for (row, id) in ids.iter().enumerate() {
        let label = match &labels {
            Some((stored, cast)) if !stored.is_null(row) => {
                let cast = cast.as_primitive::<Int64Type>();
                if cast.is_null(row) {
                    Err(format!(
                        "read: label {} does not fit in int64",
                        arrow::util::display::array_value_to_string(stored, row)
                            .unwrap_or_default()
                    ))
                } else if cast.value(row) < 0 {
                    Err(format!("read: label {} is negative", cast.value(row)))
                } else {
                    Ok(Some(cast.value(row)))
                }
            }
            _ => Ok(None),
        };
        let problem = if bytes.is_null(row) {
            Err("read: image has no embedded bytes (only a path); embed the images".to_string())
        } else {
            label
        };
        match problem {
            Ok(label) => {
                keep.push(row);
                out_labels.push(label);
            }
            Err(message) => rejected.push(Rejection {
                id: id.clone(),
                message,
            }),
        }
    }

    let total: usize = keep.iter().map(|&r| bytes.value(r).len()).sum();
    let mut images = BinaryBuilder::with_capacity(keep.len(), total);
    for &r in &keep {
        images.append_value(bytes.value(r));
    }
    let out_ids: StringArray = keep.iter().map(|&r| Some(ids[r].as_str())).collect();
    let mut metadata =
        std::collections::HashMap::from([("ldae.source.kind".to_string(), KIND.to_string())]);
    if let Some(names) = batch.schema().metadata().get(columns::CLASS_NAMES) {
        metadata.insert(columns::CLASS_NAMES.to_string(), names.clone());
    }
    let schema = Arc::new(Schema::new_with_metadata(
        vec![
            Field::new(columns::ID, DataType::Utf8, false),
            Field::new(columns::LABEL, DataType::Int64, true),
            Field::new(columns::IMAGE, DataType::Binary, false),
        ],
        metadata,
    ));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(out_ids),
            Arc::new(Int64Array::from(out_labels)),
            Arc::new(images.finish()),
        ],
    )?;
    Ok(Processed { batch, rejected })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BinaryArray, Int32Array, StructArray};

    fn hf_batch() -> RecordBatch {
        let bytes: BinaryArray = vec![Some(&b"a"[..]), None, Some(&b"c"[..])].into();
        let paths = StringArray::from(vec![Some("x/1.jpg"), Some("x/2.jpg"), None]);
        let image = StructArray::from(vec![
            (
                Arc::new(Field::new("bytes", DataType::Binary, true)),
                Arc::new(bytes) as ArrayRef,
            ),
            (
                Arc::new(Field::new("path", DataType::Utf8, true)),
                Arc::new(paths) as ArrayRef,
            ),
        ]);
        let label = Int32Array::from(vec![Some(3), Some(1), None]);
        RecordBatch::try_from_iter(vec![
            ("image", Arc::new(image) as ArrayRef),
            ("label", Arc::new(label) as ArrayRef),
        ])
        .unwrap()
    }

    #[test]
    fn hugging_face_rows_get_ids_from_paths_and_keep_every_row() {
        let p = source_rows(&hf_batch()).unwrap();
        let ids = p.batch.column(0).as_string::<i32>();
        assert_eq!(ids.iter().flatten().collect::<Vec<_>>(), ["x/1.jpg", "2"]);
        let labels = p.batch.column(1).as_primitive::<Int64Type>();
        assert_eq!(labels.iter().collect::<Vec<_>>(), [Some(3), None]);
        assert_eq!(p.batch.column(2).as_binary::<i32>().value(1), b"c");
        assert_eq!(p.rejected.len(), 1);
        assert_eq!(p.rejected[0].id, "x/2.jpg");
        assert!(p.rejected[0].message.contains("no embedded bytes"));
    }

    #[test]
    fn negative_labels_are_rejected_and_text_labels_are_an_error() {
        let image: BinaryArray = vec![Some(&b"a"[..]), Some(&b"b"[..])].into();
        let batch = RecordBatch::try_from_iter(vec![
            ("image", Arc::new(image.clone()) as ArrayRef),
            ("label", Arc::new(Int64Array::from(vec![-1, 2])) as ArrayRef),
        ])
        .unwrap();
        let p = source_rows(&batch).unwrap();
        assert_eq!(p.batch.num_rows(), 1);
        assert_eq!(p.rejected[0].id, "0");
        let batch = RecordBatch::try_from_iter(vec![
            ("image", Arc::new(image) as ArrayRef),
            (
                "label",
                Arc::new(StringArray::from(vec!["a", "b"])) as ArrayRef,
            ),
        ])
        .unwrap();
        let e = source_rows(&batch).unwrap_err().to_string();
        assert!(e.contains("labels must be integers"), "{e}");
    }
}
