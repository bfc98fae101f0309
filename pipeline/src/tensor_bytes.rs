//! UInt8 tensor columns stored as fixed-size binary, the fast storage for pixel tables.
//!
//! A tensor column ([`columns`](crate::columns)) is a `FixedSizeList`, which Parquet stores as a
//! list: every element carries repetition and definition levels, so reading a 224 px pixel row
//! (150,528 values) costs more in level decoding than in decompression. The same bytes as a
//! `FixedSizeBinary` value have no levels: the Rust Parquet reader reads them 8x faster and
//! writes them 6x faster, at the same size. Other tools then see binary values rather than
//! tensors (`numpy.frombuffer(value, numpy.uint8).reshape(shape)` reads one), so this storage
//! is chosen per table ([`TensorStorage`]), and ldae's readers turn it back into tensors.
//!
//! A stored-as-bytes column is a `FixedSizeBinary(prod(shape))` field with the tensor's shape
//! in its metadata under [`BYTES_TENSOR_SHAPE`]. The conversion shares the value buffer; ldae's
//! Parquet source reads such a column's rows as they are.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, FixedSizeBinaryArray, FixedSizeListArray, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use serde::{Deserialize, Serialize};

use crate::columns::tensor_type;
use crate::{Error, Result};

/// Field metadata key holding the shape (a JSON array) of a UInt8 tensor stored as bytes.
pub const BYTES_TENSOR_SHAPE: &str = "ldae.tensor_shape";

/// How a table stores its UInt8 tensor columns (other tensors are always lists).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TensorStorage {
    /// Arrow's fixed-shape tensor over a fixed-size list: pyarrow, pandas, polars and DuckDB
    /// read the column as tensors.
    #[default]
    List,
    /// Fixed-size binary with the shape in the field metadata: 8x faster to read and 6x
    /// faster to write (224 px pixels), read as tensors by ldae only.
    Bytes,
}

impl TensorStorage {
    /// Whether this is the default storage (left out of a serialized spec, so that the
    /// identity of jobs written before the setting existed does not change).
    pub fn is_list(&self) -> bool {
        *self == TensorStorage::List
    }
}

/// The shape of a UInt8 tensor stored as bytes, or `None` if `field` is not one.
pub fn bytes_tensor_shape(field: &Field) -> Option<Vec<usize>> {
    let DataType::FixedSizeBinary(size) = field.data_type() else {
        return None;
    };
    let shape: Vec<usize> = serde_json::from_str(field.metadata().get(BYTES_TENSOR_SHAPE)?).ok()?;
    (shape.iter().product::<usize>() == *size as usize).then_some(shape)
}

/// The element type and shape of a tensor column in either storage (see [`tensor_type`]).
pub fn stored_tensor_type(field: &Field) -> Option<(DataType, Vec<usize>)> {
    tensor_type(field).or_else(|| bytes_tensor_shape(field).map(|s| (DataType::UInt8, s)))
}

/// `schema` with its UInt8 tensor columns stored as `storage`; other columns unchanged.
pub fn stored_schema(schema: &Schema, storage: TensorStorage) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match (storage, tensor_type(f)) {
            (TensorStorage::Bytes, Some((DataType::UInt8, shape))) => bytes_field(f, &shape),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

fn bytes_field(tensor: &Field, shape: &[usize]) -> Field {
    let mut metadata: HashMap<String, String> = tensor.metadata().clone();
    metadata.remove(crate::columns::EXTENSION_NAME);
    metadata.remove(crate::columns::EXTENSION_METADATA);
    metadata.insert(
        BYTES_TENSOR_SHAPE.to_string(),
        serde_json::json!(shape).to_string(),
    );
    let size = shape.iter().product::<usize>() as i32;
    Field::new(
        tensor.name(),
        DataType::FixedSizeBinary(size),
        tensor.is_nullable(),
    )
    .with_metadata(metadata)
}

/// `batch` (of the logical schema) in the storage of `stored` (from [`stored_schema`]).
pub fn to_storage(batch: &RecordBatch, stored: &SchemaRef) -> Result<RecordBatch> {
    // Lists stored as lists (the default): the batch as it is.
    if batch.schema_ref().fields() == stored.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(stored.fields())
        .map(|(col, field)| match field.data_type() {
            DataType::FixedSizeBinary(size)
                if matches!(col.data_type(), DataType::FixedSizeList(..)) =>
            {
                list_to_bytes(col.as_fixed_size_list(), *size)
            }
            _ => Ok(col.clone()),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(stored.clone(), columns)?)
}

fn list_to_bytes(list: &FixedSizeListArray, size: i32) -> Result<ArrayRef> {
    let n = size as usize;
    let values = list.values().slice(list.offset() * n, list.len() * n);
    let values = values
        .as_any()
        .downcast_ref::<UInt8Array>()
        .ok_or_else(|| Error::internal("a bytes tensor column whose elements are not UInt8"))?;
    if values.null_count() > 0 {
        return Err(Error::data(
            "a UInt8 tensor with missing elements cannot be stored as bytes",
        ));
    }
    let bytes = FixedSizeBinaryArray::try_new(
        size,
        values.values().inner().clone(),
        list.nulls().cloned(),
    )?;
    Ok(Arc::new(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::{tensor_array, tensor_field};
    use arrow::datatypes::DataType;

    fn pixels(rows: usize, shape: &[usize]) -> RecordBatch {
        let n = shape.iter().product::<usize>();
        let values: Vec<u8> = (0..rows * n).map(|i| (i * 7 % 251) as u8).collect();
        let list = tensor_array(Arc::new(UInt8Array::from(values)), shape).unwrap();
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            tensor_field("pixels", DataType::UInt8, shape),
        ]);
        let ids: Vec<String> = (0..rows).map(|i| format!("r{i}")).collect();
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(arrow::array::StringArray::from(ids)),
                Arc::new(list),
            ],
        )
        .unwrap()
    }

    #[test]
    fn bytes_storage_round_trips_a_sliced_batch() {
        let shape = [2, 3, 3];
        let batch = pixels(5, &shape).slice(1, 3);
        let stored = stored_schema(&batch.schema(), TensorStorage::Bytes);
        assert_eq!(stored.field(1).data_type(), &DataType::FixedSizeBinary(18));
        assert_eq!(bytes_tensor_shape(stored.field(1)), Some(shape.to_vec()));
        assert_eq!(
            stored_tensor_type(stored.field(1)),
            Some((DataType::UInt8, shape.to_vec()))
        );
        let out = to_storage(&batch, &stored).unwrap();
        let bytes = out.column(1).as_fixed_size_binary();
        let list = batch.column(1).as_fixed_size_list();
        for row in 0..3 {
            let expected = list.value(row);
            assert_eq!(
                bytes.value(row),
                expected
                    .as_primitive::<arrow::datatypes::UInt8Type>()
                    .values()
                    .as_ref()
            );
        }
    }

    #[test]
    fn list_storage_and_other_columns_are_left_alone() {
        let batch = pixels(2, &[4]);
        let schema = batch.schema();
        assert_eq!(stored_schema(&schema, TensorStorage::List), schema);
        let f32_tensor = Schema::new(vec![tensor_field("x", DataType::Float32, &[4])]);
        assert_eq!(
            stored_schema(&f32_tensor, TensorStorage::Bytes).field(0),
            f32_tensor.field(0)
        );
    }

    #[test]
    fn a_shape_that_does_not_fill_the_bytes_is_no_tensor() {
        let field = Field::new("pixels", DataType::FixedSizeBinary(12), false).with_metadata(
            HashMap::from([(BYTES_TENSOR_SHAPE.to_string(), "[2, 5]".to_string())]),
        );
        assert_eq!(bytes_tensor_shape(&field), None);
    }
}
