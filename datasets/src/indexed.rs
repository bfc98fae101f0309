//! The one mechanism behind every source: a random-access row reader plus a row order.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryBuilder, Int64Array, StringArray, UInt8Array};
use arrow::buffer::Buffer;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use ldae_pipeline::columns::{self, tensor_array, tensor_field};
use ldae_pipeline::{Processed, Rejection, Result, Source};

/// What a reader returns for one row.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Encoded image file bytes (JPEG, PNG, ...).
    Encoded(Vec<u8>),
    /// Decoded `u8` pixels in the reader's [`RowReader::pixel_shape`], row-major `[H, W, C]`:
    /// a buffer of their own (`Buffer::from_vec`) or a view of a larger one (a Parquet row
    /// group), copied once, into the batch.
    Pixels(Buffer),
}

/// One row as read from a dataset.
#[derive(Debug, Clone)]
pub struct RawRow {
    /// Stable key: relative path or `source:index`.
    pub id: String,
    /// Class index, if the dataset has labels.
    pub label: Option<i64>,
    /// The image.
    pub payload: Payload,
}

/// Random access to the rows of one dataset.
pub trait RowReader: Send {
    /// The dataset kind, e.g. `folder`.
    fn kind(&self) -> &'static str;
    /// Number of rows in the whole dataset.
    fn len(&self) -> usize;
    /// Whether the dataset is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// `Some([H, W, C])` when rows are decoded pixels of one fixed shape, `None` when rows are
    /// encoded image bytes.
    fn pixel_shape(&self) -> Option<[usize; 3]>;
    /// Class names, index = label, when the dataset names its classes.
    fn class_names(&self) -> Option<Vec<String>>;
    /// Read row `index`; a row that cannot be read is a [`Rejection`] naming it, not a failure
    /// of the whole source.
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection>;
    /// Take back the bytes of an encoded row once they are copied into a batch, to read a
    /// later row into (readers that allocate a buffer per row keep a few). By default they
    /// are dropped.
    fn recycle(&mut self, _bytes: Vec<u8>) {}
    /// The blocks rows are read in, for readers that decode a whole block to read one row
    /// (Parquet row groups), so that a shuffle can keep to the blocks in memory
    /// ([`crate::order::row_order`]). By default rows are read one at a time.
    fn blocks(&self) -> Option<crate::order::Blocks> {
        None
    }
    /// Get ready to read `upcoming[..next]` (the next batch), with the rest of `upcoming` to
    /// follow in that order: a reader that decodes whole blocks decodes the missing ones of
    /// the next batch, with those of the rows after it, several at once. By default nothing.
    fn prefetch(&mut self, _upcoming: &[usize], _next: usize) {}
}

impl RowReader for Box<dyn RowReader> {
    fn kind(&self) -> &'static str {
        (**self).kind()
    }
    fn len(&self) -> usize {
        (**self).len()
    }
    fn pixel_shape(&self) -> Option<[usize; 3]> {
        (**self).pixel_shape()
    }
    fn class_names(&self) -> Option<Vec<String>> {
        (**self).class_names()
    }
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        (**self).read(index)
    }
    fn recycle(&mut self, bytes: Vec<u8>) {
        (**self).recycle(bytes)
    }
    fn blocks(&self) -> Option<crate::order::Blocks> {
        (**self).blocks()
    }
    fn prefetch(&mut self, upcoming: &[usize], next: usize) {
        (**self).prefetch(upcoming, next)
    }
}

/// A [`Source`] reading the rows of a [`RowReader`] in a given order, `batch_size` at a time.
pub struct IndexedSource<R: RowReader> {
    reader: R,
    order: Vec<usize>,
    position: usize,
    batch_size: usize,
    schema: SchemaRef,
    name: String,
    /// Number of classes the dataset names, which bounds its labels.
    classes: Option<usize>,
}

/// Why `label` cannot be a class index of a dataset with `classes` classes (any non-negative
/// label when the dataset names no classes).
fn label_problem(label: i64, classes: Option<usize>) -> Option<String> {
    match classes {
        _ if label < 0 => Some(format!("label {label} is negative")),
        Some(n) if label as u64 >= n as u64 => Some(format!(
            "label {label} is outside the dataset's {n} classes (0..{})",
            n - 1
        )),
        _ => None,
    }
}

impl<R: RowReader> IndexedSource<R> {
    /// Read `order` (indices into `reader`) in batches of `batch_size`.
    pub fn new(reader: R, order: Vec<usize>, batch_size: usize, origin: &str) -> Self {
        let image_field = match reader.pixel_shape() {
            Some(shape) => tensor_field(columns::PIXELS, DataType::UInt8, &shape),
            None => Field::new(columns::IMAGE, DataType::Binary, false),
        };
        let mut metadata = std::collections::HashMap::from([
            ("ldae.source.kind".to_string(), reader.kind().to_string()),
            ("ldae.source.input".to_string(), origin.to_string()),
        ]);
        if let Some(names) = reader.class_names() {
            metadata.insert(
                columns::CLASS_NAMES.to_string(),
                serde_json::Value::from(names).to_string(),
            );
        }
        let schema = Arc::new(Schema::new_with_metadata(
            vec![
                Field::new(columns::ID, DataType::Utf8, false),
                Field::new(columns::LABEL, DataType::Int64, true),
                image_field,
            ],
            metadata,
        ));
        let name = format!("source:{}", reader.kind());
        let classes = reader.class_names().map(|n| n.len());
        IndexedSource {
            classes,
            reader,
            order,
            position: 0,
            batch_size: batch_size.max(1),
            schema,
            name,
        }
    }

    fn build(&mut self, rows: Vec<RawRow>) -> Result<RecordBatch> {
        let ids: StringArray = rows.iter().map(|r| Some(r.id.as_str())).collect();
        let labels: Int64Array = rows.iter().map(|r| r.label).collect();
        let images: ArrayRef = match self.reader.pixel_shape() {
            Some(shape) => {
                let mut flat = Vec::with_capacity(rows.len() * shape.iter().product::<usize>());
                for r in &rows {
                    if let Payload::Pixels(p) = &r.payload {
                        flat.extend_from_slice(p.as_slice());
                    }
                }
                Arc::new(tensor_array(Arc::new(UInt8Array::from(flat)), &shape)?)
            }
            None => {
                let total = rows
                    .iter()
                    .map(|r| match &r.payload {
                        Payload::Encoded(b) => b.len(),
                        Payload::Pixels(_) => 0,
                    })
                    .sum();
                let mut b = BinaryBuilder::with_capacity(rows.len(), total);
                for r in &rows {
                    match &r.payload {
                        Payload::Encoded(bytes) => b.append_value(bytes),
                        Payload::Pixels(_) => b.append_value([]),
                    }
                }
                for r in rows {
                    if let Payload::Encoded(bytes) = r.payload {
                        self.reader.recycle(bytes);
                    }
                }
                Arc::new(b.finish())
            }
        };
        Ok(RecordBatch::try_new(
            self.schema.clone(),
            vec![Arc::new(ids), Arc::new(labels), images],
        )?)
    }
}

impl<R: RowReader> Source for IndexedSource<R> {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn total_rows(&self) -> Option<u64> {
        Some(self.order.len() as u64)
    }

    fn next_batch(&mut self) -> Option<Result<Processed>> {
        if self.position >= self.order.len() {
            return None;
        }
        let end = (self.position + self.batch_size).min(self.order.len());
        let expected = self
            .reader
            .pixel_shape()
            .map(|s| s.iter().product::<usize>());
        self.reader
            .prefetch(&self.order[self.position..], end - self.position);
        let mut rows = Vec::with_capacity(end - self.position);
        let mut rejected = Vec::new();
        for &index in &self.order[self.position..end] {
            match self.reader.read(index) {
                Ok(row) => match (&row.payload, expected) {
                    (Payload::Pixels(p), Some(n)) if p.len() != n => rejected.push(Rejection {
                        id: row.id,
                        message: format!("read: {} pixel values, expected {n}", p.len()),
                    }),
                    _ => match row.label.and_then(|l| label_problem(l, self.classes)) {
                        Some(problem) => rejected.push(Rejection {
                            id: row.id,
                            message: format!("read: {problem}"),
                        }),
                        None => rows.push(row),
                    },
                },
                Err(r) => rejected.push(r),
            }
        }
        self.position = end;
        Some(self.build(rows).map(|batch| Processed { batch, rejected }))
    }
}
