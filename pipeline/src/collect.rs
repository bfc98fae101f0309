//! An in-memory sink: keeps every batch (for small jobs, previews and tests).

use std::sync::{Arc, Mutex};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use crate::{Error, Result, RunSummary, Sink};

/// Collects batches into a shared vector (read it after the run through [`Collect::batches`]).
#[derive(Clone, Default)]
pub struct Collect {
    batches: Arc<Mutex<Vec<RecordBatch>>>,
}

impl Collect {
    /// An empty collector.
    pub fn new() -> Self {
        Self::default()
    }

    /// The batches collected so far, in order.
    pub fn batches(&self) -> Vec<RecordBatch> {
        self.batches.lock().map(|b| b.clone()).unwrap_or_default()
    }
}

impl Sink for Collect {
    fn name(&self) -> String {
        "collect".into()
    }

    fn check_schema(&mut self, _input: &SchemaRef) -> Result<()> {
        Ok(())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.batches
            .lock()
            .map_err(|_| Error::internal("collector poisoned"))?
            .push(batch.clone());
        Ok(())
    }

    fn finish(&mut self, summary: &RunSummary<'_>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "rows": summary.rows_out }))
    }
}
