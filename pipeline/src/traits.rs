//! The three kinds of pipeline stage: where rows come from, what transforms them, where they go.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::Result;

/// A row an operator or source could not handle (corrupt file, unsupported format, ...).
///
/// Rejected rows leave the batch but are never lost: the executor carries them to the sink,
/// which records them in an errors table, so rows in = rows out + rows rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The row's `id` (relative path or `source:index`).
    pub id: String,
    /// Why the row was rejected, in words.
    pub message: String,
}

/// A [`Rejection`] with the name of the stage that made it; what the errors table stores.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RejectedRow {
    /// The row's `id`.
    pub id: String,
    /// The stage that rejected it.
    pub stage: String,
    /// Why.
    pub message: String,
}

/// What a source or operator hands on: the good rows and the rows it rejected.
#[derive(Debug, Clone)]
pub struct Processed {
    /// The rows that go on, in input order.
    pub batch: RecordBatch,
    /// The rows that were dropped, in input order.
    pub rejected: Vec<Rejection>,
}

impl Processed {
    /// A batch with no rejected rows.
    pub fn ok(batch: RecordBatch) -> Self {
        Processed {
            batch,
            rejected: Vec::new(),
        }
    }
}

/// Where rows come from: a dataset read as batches of `id, label, image` (or `pixels`).
pub trait Source: Send {
    /// Short name for logs and the metrics table.
    fn name(&self) -> String;
    /// The schema of every batch this source yields.
    fn schema(&self) -> SchemaRef;
    /// How many rows the source will yield (after limit and sharding), when known.
    fn total_rows(&self) -> Option<u64>;
    /// The next batch, `None` at the end. A batch may carry rows rejected while reading.
    fn next_batch(&mut self) -> Option<Result<Processed>>;
}

/// A transformation of batches, before it knows its input.
///
/// [`Operator::bind`] is called once, when the pipeline is planned, with the schema of the
/// batches the operator will receive: it checks the columns, shapes and metadata, derives
/// everything that depends on them (output schema, column positions, geometry) and returns the
/// [`BoundOperator`] that transforms batches of exactly that schema, re-deriving nothing.
pub trait Operator: Send + Sync {
    /// Short name for logs, errors and the metrics table.
    fn name(&self) -> String;
    /// Bind to the input schema: a missing column, a wrong shape or a model fitted on other
    /// data is a plan error here, before any work starts.
    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>>;
    /// Whether several worker threads may run this operator at once (default: yes).
    fn parallel(&self) -> bool {
        true
    }
    /// Bind to `batch`'s own schema and transform it: for one-off use (tests, small tools).
    fn process_once(&self, batch: RecordBatch) -> Result<Processed> {
        self.bind(&batch.schema())?.process(batch)
    }
}

/// An operator bound to one input schema.
///
/// Bound operators are stateless (`&self`), so the executor may run several copies of one on
/// worker threads when [`Operator::parallel`] says so; output order is restored by the executor.
pub trait BoundOperator: Send + Sync {
    /// The schema of every batch this operator produces.
    fn schema(&self) -> SchemaRef;
    /// Transform one batch. Per-row failures go into [`Processed::rejected`]; an `Err` fails the
    /// whole run.
    fn process(&self, batch: RecordBatch) -> Result<Processed>;
}

/// The per-batch work of an operator that needs nothing from binding but its output schema.
pub trait ProcessWithSchema: Send + Sync {
    /// Transform one batch into `schema` (the output schema fixed when the plan was built).
    fn process_with(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<Processed>;
}

/// A bound operator made of a copy of the operator and its output schema, for operators whose
/// binding decides nothing else (see [`ProcessWithSchema`]).
pub struct WithSchema<T> {
    /// The operator (a cheap copy: models are shared).
    pub op: T,
    /// Its output schema for the input it was bound to.
    pub schema: SchemaRef,
}

impl<T: ProcessWithSchema> BoundOperator for WithSchema<T> {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn process(&self, batch: RecordBatch) -> Result<Processed> {
        self.op.process_with(batch, &self.schema)
    }
}

/// Counts a sink is told when the stream ends.
#[derive(Debug, Clone)]
pub struct RunSummary<'a> {
    /// Rows read by the source, rejected ones included.
    pub rows_in: u64,
    /// Rows that reached the sink.
    pub rows_out: u64,
    /// Every rejected row, in input order.
    pub rejected: &'a [RejectedRow],
}

/// Where rows go: a file writer, a statistics accumulator, a trainer.
pub trait Sink: Send {
    /// Short name for logs and the metrics table.
    fn name(&self) -> String;
    /// Check the incoming schema before any work starts.
    fn check_schema(&mut self, input: &SchemaRef) -> Result<()>;
    /// Consume one batch.
    fn write(&mut self, batch: &RecordBatch) -> Result<()>;
    /// Called after each source batch has been fully handled: it accounted for `rows_in`
    /// source rows, of which `rejected` were dropped on the way (the rest went to
    /// [`Sink::write`]). A sink that commits its output as it goes (and so can be resumed
    /// after `rows_in` rows) cuts its commits here.
    fn consumed(&mut self, _rows_in: u64, _rejected: &[RejectedRow]) -> Result<()> {
        Ok(())
    }
    /// The stream ended without error: write the final outputs. Returns a JSON description of
    /// what was written, for the report.
    fn finish(&mut self, summary: &RunSummary<'_>) -> Result<serde_json::Value>;
    /// The run failed or was cancelled: remove temporary files. Never leaves a file that looks
    /// complete.
    fn abort(&mut self) {}
}
