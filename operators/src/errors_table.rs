//! The errors table: rejected rows (id, stage, message) written beside an output as Parquet.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::{RejectedRow, Result};

use crate::atomic::write_parquet_atomic;

/// Write `rows` to `path` (atomically; an empty table when no row was rejected, so a stale table
/// from an earlier run never survives).
pub fn write_errors_table(path: &std::path::Path, rows: &[RejectedRow]) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.id.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.stage.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.message.as_str()))
                    .collect::<StringArray>(),
            ),
        ],
    )?;
    write_parquet_atomic(path, &batch)
}
