//! The sink's side of a job: how many passes over the data it wants, and the sink of each.

use arrow::datatypes::SchemaRef;

use crate::metrics::RunReport;
use crate::traits::Sink;
use crate::{Error, Result};

/// One pass over the source: what the runner changes in the source for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// The pass number (epoch); operators are rebuilt with it in
    /// [`BuildContext::epoch`](crate::config::BuildContext::epoch).
    pub epoch: u64,
    /// Shuffle the rows with this seed (None: the source's own setting).
    pub shuffle_seed: Option<u64>,
    /// Rows to skip at the start (resuming inside a pass).
    pub skip_rows: usize,
    /// Read at most this many rows (after skipping them, counted from the start).
    pub limit_rows: Option<usize>,
    /// Rows per batch (a trainer: one batch per step); None: the source's own setting.
    pub batch_size: Option<usize>,
    /// Label for progress lines.
    pub label: String,
}

/// What the pipeline looks like to a sink before any pass runs.
#[derive(Debug, Clone)]
pub struct PlanInfo {
    /// The schema the sink receives.
    pub schema: SchemaRef,
    /// Rows the source yields in one pass, when known.
    pub rows: Option<u64>,
}

/// The sink's side of a job: how many passes over the data it wants, and the sink of each.
///
/// Most sinks want one pass (`<dyn SinkJob>::once`); a trainer wants one per epoch and resumes
/// inside one.
pub trait SinkJob: Send {
    /// Called once, before the first pass, with the planned schema and row count.
    fn bind(&mut self, _plan: &PlanInfo) -> Result<()> {
        Ok(())
    }
    /// The next pass to run, `None` when the job is complete.
    fn next_pass(&mut self) -> Result<Option<Pass>>;
    /// The sink of `pass`.
    fn sink(&mut self, pass: &Pass) -> Result<Box<dyn Sink>>;
    /// A pass ended without error.
    fn end_pass(&mut self, _pass: &Pass, _report: &RunReport) -> Result<()> {
        Ok(())
    }
    /// Extra text for the progress display of the current pass (e.g. the loss).
    fn status(&self) -> Option<crate::progress::Status> {
        None
    }
    /// Lines for the person running the job (what was resumed, each epoch's loss), drained by
    /// the runner after binding and after each pass; the library prints nothing itself.
    fn messages(&mut self) -> Vec<String> {
        Vec::new()
    }
    /// A pass failed with `error` (its sink has been aborted): record what a rerun or
    /// `ldae status` should know. The runner returns the error afterwards.
    fn fail(&mut self, _error: &Error) {}
    /// The job is complete: what it wrote, for the report.
    fn finish(&mut self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
}

impl dyn SinkJob {
    /// A job of one pass into `sink`.
    pub fn once(sink: Box<dyn Sink>) -> Box<dyn SinkJob> {
        Box::new(Once {
            sink: Some(sink),
            ran: false,
            output: serde_json::Value::Null,
        })
    }
}

struct Once {
    sink: Option<Box<dyn Sink>>,
    ran: bool,
    /// What the sink said it wrote.
    output: serde_json::Value,
}

impl SinkJob for Once {
    fn next_pass(&mut self) -> Result<Option<Pass>> {
        Ok((!self.ran).then(Pass::default))
    }

    fn sink(&mut self, _pass: &Pass) -> Result<Box<dyn Sink>> {
        self.ran = true;
        self.sink
            .take()
            .ok_or_else(|| Error::internal("a single-pass sink was asked for a second pass"))
    }

    fn end_pass(&mut self, _pass: &Pass, report: &RunReport) -> Result<()> {
        self.output = report.output.clone();
        Ok(())
    }

    fn finish(&mut self) -> Result<serde_json::Value> {
        Ok(std::mem::take(&mut self.output))
    }
}
