//! Rejected rows at the Python boundary: how they leave a pipeline (the `error_stage` and
//! `error` columns after the good rows) and how they come back into the next one.
//!
//! Engines chain pipelines (Ray Data's `map_batches` twice, say), so a batch may hold rows an
//! earlier pipeline rejected: their tensors are null. They must not enter the operators, which
//! would read a null tensor's zeroed values as a black image and hand the row on as good; they
//! go round the operators and come out rejected again, with their first stage and reason. A
//! null tensor in a batch no pipeline made is rejected the same way, before the operators.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{new_null_array, Array, ArrayRef, BooleanArray, Int64Array, StringArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use ldae_pipeline::{columns, RejectedRow, Result};

/// Column that says which stage rejected a row (null for rows that went through).
pub const ERROR_STAGE: &str = "error_stage";
/// Column that says why a row was rejected (null for rows that went through).
pub const ERROR: &str = "error";

/// Each row's label by id.
pub type Labels = HashMap<String, Option<i64>>;

/// Rows set aside before the operators run: the rejections and the labels of their rows.
#[derive(Default)]
pub struct SetAside {
    /// The rows, in input order, with the stage and reason of their rejection.
    pub rows: Vec<RejectedRow>,
    /// Their labels, where the batch had them.
    pub labels: Labels,
}

impl SetAside {
    /// Moves the rows of `batch` where `bad(row)` gives a stage and reason into `self`;
    /// returns the others.
    fn take(
        &mut self,
        batch: &RecordBatch,
        bad: impl Fn(usize) -> Option<(String, String)>,
    ) -> Result<RecordBatch> {
        let ids = row_ids(batch);
        let labels = label_column(batch);
        let mut keep = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let reason = bad(row);
            keep.push(reason.is_none());
            if let Some((stage, message)) = reason {
                let id = ids(row);
                if let Some(l) = labels {
                    self.labels
                        .insert(id.clone(), l.is_valid(row).then(|| l.value(row)));
                }
                self.rows.push(RejectedRow { id, stage, message });
            }
        }
        if keep.iter().all(|k| *k) {
            return Ok(batch.clone());
        }
        Ok(filter_record_batch(batch, &BooleanArray::from(keep))?)
    }
}

/// The rows of `batch` an earlier pipeline rejected (a non-null `error`), set aside with their
/// stage and reason; the other rows are returned without the two error columns. Only the pair
/// a pipeline writes counts (`error_stage` and `error`, text of any string type: engines may
/// hand them on as large strings); a batch without it is returned as it is.
pub fn earlier_rejections(batch: RecordBatch, aside: &mut SetAside) -> Result<RecordBatch> {
    let text = |name| -> Option<StringArray> {
        let column = batch.column_by_name(name)?;
        let is_text = matches!(
            column.data_type(),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        );
        let column = arrow::compute::cast(column, &DataType::Utf8)
            .ok()
            .filter(|_| is_text)?;
        column.as_any().downcast_ref::<StringArray>().cloned()
    };
    let (Some(stage), Some(error)) = (text(ERROR_STAGE), text(ERROR)) else {
        return Ok(batch);
    };
    let mut good = aside.take(&batch, |row| {
        error.is_valid(row).then(|| {
            let stage = match stage.is_valid(row) {
                true => stage.value(row),
                false => "an earlier pipeline",
            };
            (stage.to_string(), error.value(row).to_string())
        })
    })?;
    for name in [ERROR, ERROR_STAGE] {
        if let Ok(i) = good.schema().index_of(name) {
            good.remove_column(i);
        }
    }
    Ok(good)
}

/// The rows of `batch` (with an `id` column) that have a null tensor, set aside as rejected
/// by `stage`; returns the others.
pub fn null_tensors(batch: RecordBatch, stage: &str, aside: &mut SetAside) -> Result<RecordBatch> {
    let tensors: Vec<(&str, &ArrayRef)> = batch
        .schema_ref()
        .fields()
        .iter()
        .zip(batch.columns())
        .filter(|(f, c)| matches!(f.data_type(), DataType::FixedSizeList(..)) && c.null_count() > 0)
        .map(|(f, c)| (f.name().as_str(), c))
        .collect();
    if tensors.is_empty() {
        return Ok(batch);
    }
    aside.take(&batch, |row| {
        tensors
            .iter()
            .find(|(_, c)| c.is_null(row))
            .map(|(name, _)| (stage.to_string(), format!("its `{name}` tensor is null")))
    })
}

/// Each row's label by id (only needed when some rows were rejected).
pub fn labels_by_id(batch: &RecordBatch) -> Labels {
    let Some(labels) = label_column(batch) else {
        return Labels::new();
    };
    let ids = row_ids(batch);
    (0..batch.num_rows())
        .map(|i| (ids(i), labels.is_valid(i).then(|| labels.value(i))))
        .collect()
}

fn label_column(batch: &RecordBatch) -> Option<&Int64Array> {
    batch
        .column_by_name(columns::LABEL)
        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
}

/// Row `i`'s id: its `id` value, else its position in the batch.
fn row_ids(batch: &RecordBatch) -> impl Fn(usize) -> String + '_ {
    let ids = batch
        .column_by_name(columns::ID)
        .and_then(|c| c.as_any().downcast_ref::<StringArray>());
    move |i| ids.map_or_else(|| i.to_string(), |ids| ids.value(i).to_string())
}

/// The good rows, then one row per rejected one (its id and label where known, every other
/// column null), with `error_stage` and `error` columns that are null for the good rows.
pub fn with_rejected_rows(
    good: &RecordBatch,
    rejected: &[RejectedRow],
    labels: &Labels,
) -> Result<RecordBatch> {
    let schema = good.schema();
    let mut fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    fields.push(Field::new(ERROR_STAGE, DataType::Utf8, true));
    fields.push(Field::new(ERROR, DataType::Utf8, true));
    let out_schema = Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()));
    let n = good.num_rows();
    let mut cols: Vec<ArrayRef> = good.columns().to_vec();
    cols.push(new_null_array(&DataType::Utf8, n));
    cols.push(new_null_array(&DataType::Utf8, n));
    let good = RecordBatch::try_new(out_schema.clone(), cols)?;
    if rejected.is_empty() {
        return Ok(good);
    }
    let k = rejected.len();
    let mut cols: Vec<ArrayRef> = Vec::with_capacity(out_schema.fields().len());
    for f in schema.fields() {
        let col: ArrayRef = match (f.name().as_str(), f.data_type()) {
            (columns::ID, DataType::Utf8) => Arc::new(
                rejected
                    .iter()
                    .map(|r| Some(r.id.as_str()))
                    .collect::<StringArray>(),
            ),
            (columns::LABEL, DataType::Int64) => Arc::new(
                rejected
                    .iter()
                    .map(|r| labels.get(&r.id).copied().flatten())
                    .collect::<Int64Array>(),
            ),
            (_, t) => new_null_array(t, k),
        };
        cols.push(col);
    }
    cols.push(Arc::new(
        rejected
            .iter()
            .map(|r| Some(r.stage.as_str()))
            .collect::<StringArray>(),
    ));
    cols.push(Arc::new(
        rejected
            .iter()
            .map(|r| Some(r.message.as_str()))
            .collect::<StringArray>(),
    ));
    let bad = RecordBatch::try_new(out_schema.clone(), cols)?;
    Ok(arrow::compute::concat_batches(&out_schema, [&good, &bad])?)
}
