//! The errors table: rejected rows (id, stage, message) written beside an output as Parquet.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;

use ldae_pipeline::{Error, RejectedRow, Result};

use crate::atomic::{commit, temp_path};

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
    let temp = temp_path(path);
    let file = std::fs::File::create(&temp).map_err(|e| Error::io(&temp, e))?;
    let mut writer = ArrowWriter::try_new(file, schema, None)
        .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    writer
        .write(&batch)
        .and_then(|_| writer.close().map(|_| ()))
        .map_err(|e| Error::msg(format!("{}: {e}", path.display())))?;
    commit(&temp, path)
}
