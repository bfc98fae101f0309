//! A source and its operators run by the engine in background threads, their output batches
//! handed to Python one at a time: the loader under `ldae.torch.LatentDataset`.
//!
//! The pipeline runs exactly as a job does (parallel stages, rejected rows skipped and
//! counted) into a sink that sends each batch through a bounded channel; Python's `__next__`
//! waits on it with the GIL released. When Python stops reading, the channel closes, the
//! sink's next send fails and the pipeline stops.

use std::path::PathBuf;
use std::sync::Mutex;
use std::thread::JoinHandle;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::ToPyArrow;
use crossbeam_channel::{bounded, Receiver, Sender};
use ldae_jobs::source::SourceSpec;
use ldae_pipeline::OperatorSpec;
use ldae_pipeline::{
    Error, Pipeline, ProgressMode, Result, RunOptions, RunReport, RunSummary, Sink,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::py_error;

/// Sends every batch to the reader.
struct ChannelSink {
    tx: Sender<RecordBatch>,
}

impl Sink for ChannelSink {
    fn name(&self) -> String {
        "stream".into()
    }

    fn check_schema(&mut self, _input: &SchemaRef) -> Result<()> {
        Ok(())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        self.tx
            .send(batch.clone())
            .map_err(|_| Error::msg("the reader stopped reading"))
    }

    fn finish(&mut self, summary: &RunSummary<'_>) -> Result<serde_json::Value> {
        Ok(serde_json::json!({ "rows": summary.rows_out }))
    }
}

/// A running pipeline whose batches Python iterates (`pyarrow.RecordBatch` each).
#[pyclass(module = "ldae._native")]
pub struct NativeStream {
    rx: Receiver<RecordBatch>,
    /// Rows the source will yield (after limit and sharding), when it knows.
    #[pyo3(get)]
    rows: Option<u64>,
    /// The built pipeline, until the first `next` starts it (so `rows` costs no decoding).
    pending: Mutex<Option<Pipeline>>,
    options: RunOptions,
    worker: Mutex<Option<JoinHandle<Result<RunReport>>>>,
}

#[pymethods]
impl NativeStream {
    /// `spec`: `{"source": {...}, "operator": [...]}` as JSON (a spec without its sink);
    /// `epoch`: the pass the operators draw their randomness for; `base`: the folder relative
    /// paths are resolved against; `threads`: workers per parallel stage; `prefetch`: batches
    /// made ahead of the reader.
    #[new]
    #[pyo3(signature = (spec, epoch=0, base=String::new(), threads=2, prefetch=4))]
    fn new(
        spec: &str,
        epoch: u64,
        base: String,
        threads: usize,
        prefetch: usize,
    ) -> PyResult<Self> {
        // A spec without its sink: {"source": {...}, "operator": [...]}.
        let bad = |e: serde_json::Error| PyValueError::new_err(format!("spec: {e}"));
        let mut spec: serde_json::Value = serde_json::from_str(spec).map_err(bad)?;
        let source: SourceSpec = serde_json::from_value(spec["source"].take()).map_err(bad)?;
        let components: Vec<OperatorSpec> = match spec["operator"].take() {
            serde_json::Value::Null => Vec::new(),
            ops => serde_json::from_value(ops).map_err(bad)?,
        };
        let base = PathBuf::from(base);
        let ctx = source.build_context(&base, epoch, serde_json::Value::Null);
        let source = source.open(&base).map_err(|e| py_error(&e))?;
        let operators = ldae_jobs::spec::build_operators(&components, &ctx)
            .map_err(|e| PyValueError::new_err(e.chain()))?;
        // Plan now, so a wrong setting is an error here and not in the first `next`.
        ldae_pipeline::executor::plan_schema(source.schema(), &operators)
            .map_err(|e| py_error(&e))?;
        let rows = source.total_rows();
        let (tx, rx) = bounded(prefetch.max(1));
        let options = RunOptions {
            threads: threads.max(1),
            progress: ProgressMode::Off,
            label: "stream".into(),
            ..RunOptions::default()
        };
        let mut pipeline = Pipeline::new(source, Box::new(ChannelSink { tx }));
        for op in operators {
            pipeline = pipeline.then(op);
        }
        Ok(NativeStream {
            rx,
            rows,
            pending: Mutex::new(Some(pipeline)),
            options,
            worker: Mutex::new(None),
        })
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// The next batch; at the end, the run's error if it failed, else StopIteration.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        if let Some(pipeline) = self.pending.lock().ok().and_then(|mut p| p.take()) {
            let options = self.options.clone();
            let worker = std::thread::Builder::new()
                .name("ldae-stream".into())
                .spawn(move || pipeline.run(&options))
                .map_err(|e| PyValueError::new_err(format!("cannot start the stream: {e}")))?;
            if let Ok(mut w) = self.worker.lock() {
                *w = Some(worker);
            }
        }
        if let Ok(batch) = py.detach(|| self.rx.recv()) {
            return Ok(Some(batch.to_pyarrow(py)?.unbind()));
        }
        let worker = self.worker.lock().ok().and_then(|mut w| w.take());
        if let Some(worker) = worker {
            let outcome = py.detach(|| worker.join());
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(py_error(&e)),
                Err(_) => return Err(py_error(&Error::msg("the stream's pipeline panicked"))),
            }
        }
        Ok(None)
    }
}
