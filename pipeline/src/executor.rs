//! The threaded executor.
//!
//! One thread per stage, a pool of `threads` workers for each parallel operator, stages joined by
//! bounded crossbeam channels: a full channel blocks its producer, so memory stays bounded
//! whatever the dataset size. The source also waits while [`RunOptions::batches_in_flight`]
//! batches are between it and the sink, so the bound does not grow with the worker count
//! (channels alone would let each of a wide stage's workers hold its own queue). Batches carry
//! sequence numbers assigned by the source; batch `k` of a stage with `w` workers is always
//! handled by worker `k % w`, and every consumer reads the sequence numbers in order, so the
//! output order (and every byte written) does not depend on the thread count. The first error,
//! or panic, cancels every stage and is reported with the stage's name; the sink is then told
//! to abort so it never leaves output that looks complete.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arrow::datatypes::SchemaRef;

use crate::channels::{link, Envelope, Inbox, Outbox, Window};
use crate::metrics::{RunReport, StageMetrics};
use crate::progress::{Progress, ProgressMode, Status};
use crate::traits::{BoundOperator, Operator, Processed, RejectedRow, RunSummary, Sink, Source};
use crate::{Error, Result};

/// What to do with a row that a stage rejects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Record the row in the errors table and go on (the default).
    #[default]
    Skip,
    /// Stop the run at the first rejected row, naming it.
    Fail,
}

/// How to run a pipeline.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Worker threads for each parallel operator.
    pub threads: usize,
    /// Batches buffered between two stages (per channel).
    pub channel_capacity: usize,
    /// At most this many batches between the source and the sink (read, not yet consumed);
    /// `None`: twice the workers of a parallel stage, plus one per stage. The memory a run
    /// holds is about this many batches at their largest.
    pub batches_in_flight: Option<usize>,
    /// What to do with rejected rows.
    pub on_error: OnError,
    /// How to show progress.
    pub progress: ProgressMode,
    /// Label of the progress bar / log lines.
    pub label: String,
    /// Extra text for the progress display (e.g. the current loss).
    pub status: Option<Status>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            threads: crate::cores(),
            channel_capacity: 2,
            batches_in_flight: None,
            on_error: OnError::Skip,
            progress: ProgressMode::Auto,
            label: "ldae".to_string(),
            status: None,
        }
    }
}

/// Bind each of `operators` in turn, starting from `input`; the first mismatch is a plan error
/// naming the operator.
pub fn bind_all(
    input: SchemaRef,
    operators: &[Arc<dyn Operator>],
) -> Result<Vec<Arc<dyn BoundOperator>>> {
    let mut schema = input;
    let mut bound = Vec::with_capacity(operators.len());
    for op in operators {
        let name = op.name();
        let b = op.bind(&schema).map_err(|e| e.at_plan(&name))?;
        schema = b.schema();
        bound.push(b);
    }
    Ok(bound)
}

/// The schema a sink receives from `operators` fed with `input`.
pub fn plan_schema(input: SchemaRef, operators: &[Arc<dyn Operator>]) -> Result<SchemaRef> {
    Ok(bind_all(input.clone(), operators)?
        .last()
        .map(|b| b.schema())
        .unwrap_or(input))
}

/// A source, a chain of operators and a sink, ready to plan and run.
pub struct Pipeline {
    source: Box<dyn Source>,
    operators: Vec<Arc<dyn Operator>>,
    sink: Box<dyn Sink>,
}

impl Pipeline {
    /// A pipeline from `source` straight to `sink`; add operators with [`Pipeline::then`].
    pub fn new(source: Box<dyn Source>, sink: Box<dyn Sink>) -> Self {
        Pipeline {
            source,
            operators: Vec::new(),
            sink,
        }
    }

    /// Append an operator to the chain.
    pub fn then(mut self, operator: Arc<dyn Operator>) -> Self {
        self.operators.push(operator);
        self
    }

    /// Validate the whole chain's schemas without running anything. Returns the schema after
    /// each operator (the last one is what the sink receives).
    pub fn plan(&mut self) -> Result<Vec<SchemaRef>> {
        Ok(self.bind()?.iter().map(|b| b.schema()).collect())
    }

    /// Bind every operator and check the sink: the plan the run executes.
    fn bind(&mut self) -> Result<Vec<Arc<dyn BoundOperator>>> {
        let bound = bind_all(self.source.schema(), &self.operators)?;
        let schema = bound
            .last()
            .map(|b| b.schema())
            .unwrap_or_else(|| self.source.schema());
        self.sink
            .check_schema(&schema)
            .map_err(|e| e.at_plan(self.sink.name()))?;
        Ok(bound)
    }

    /// Plan, then run the pipeline to the end (or the first error).
    pub fn run(mut self, options: &RunOptions) -> Result<RunReport> {
        let bound = self.bind()?;
        let start = Instant::now();
        let shared = Shared {
            cancel: AtomicBool::new(false),
            error: Mutex::new(None),
            on_error: options.on_error,
            source_rows: AtomicU64::new(0),
            finished_rows: Arc::new(AtomicU64::new(0)),
        };
        let progress = Progress::start(
            options.progress,
            options.label.clone(),
            self.source.total_rows(),
            shared.finished_rows.clone(),
            options.status.clone(),
        );
        let threads = options.threads.max(1);
        let widths: Vec<usize> = self
            .operators
            .iter()
            .map(|op| if op.parallel() { threads } else { 1 })
            .collect();

        // links[s] joins stage s (0 = source) to stage s+1.
        let mut stage_widths = vec![1];
        stage_widths.extend(&widths);
        stage_widths.push(1);
        // Enough batches for every worker of the widest stage to have one in hand and one
        // waiting, and for one to be in each other stage.
        let in_flight = options
            .batches_in_flight
            .unwrap_or(2 * stage_widths.iter().max().copied().unwrap_or(1) + stage_widths.len())
            .max(1);
        let window = Window::new(in_flight);
        let mut outboxes: Vec<Vec<Outbox>> = Vec::new();
        let mut inboxes: Vec<Vec<Inbox>> = Vec::new();
        for pair in stage_widths.windows(2) {
            let (outs, ins) = link(pair[0], pair[1], options.channel_capacity);
            outboxes.push(outs);
            inboxes.push(ins);
        }

        let source = &mut self.source;
        let sink = &mut self.sink;
        let operators = &self.operators;
        let bound = &bound;
        let shared_ref = &shared;
        let window = &window;
        let result = std::thread::scope(|scope| {
            let mut handles = Vec::new();
            let mut outbox_iter = outboxes.into_iter();
            let mut inbox_iter = inboxes.into_iter();

            let source_out = outbox_iter.next().unwrap_or_default();
            handles.push((
                0,
                scope.spawn(move || run_source(source.as_mut(), source_out, window, shared_ref)),
            ));

            for (idx, op) in operators.iter().enumerate() {
                let ins = inbox_iter.next().unwrap_or_default();
                let outs = outbox_iter.next().unwrap_or_default();
                let name = op.name();
                for (inbox, outbox) in ins.into_iter().zip(outs) {
                    let b = bound[idx].clone();
                    let name = name.clone();
                    handles.push((
                        idx + 1,
                        scope.spawn(move || {
                            run_operator(&name, b.as_ref(), inbox, outbox, shared_ref)
                        }),
                    ));
                }
            }

            let sink_in = inbox_iter
                .next()
                .and_then(|v| v.into_iter().next())
                .expect("the sink always has one inbox");
            let sink_handle =
                scope.spawn(move || run_sink(sink.as_mut(), sink_in, window, shared_ref));

            let mut metrics: Vec<(usize, StageMetrics)> = handles
                .into_iter()
                .map(|(stage, h)| (stage, h.join().unwrap_or_default()))
                .collect();
            let (sink_metrics, output, rejected) = sink_handle.join().unwrap_or_default();
            metrics.push((operators.len() + 1, sink_metrics));
            (metrics, output, rejected)
        });
        progress.stop();

        if let Some(err) = shared.error.lock().ok().and_then(|mut e| e.take()) {
            return Err(err);
        }
        let (worker_metrics, output, rejected) = result;
        let stages = merge_workers(worker_metrics);
        let rows_in = shared.source_rows.load(Ordering::SeqCst);
        let rows_out = stages.last().map(|s| s.rows_in).unwrap_or(0);
        Ok(RunReport {
            stages,
            rows_in,
            rows_out,
            rejected,
            wall: start.elapsed(),
            output: output.unwrap_or(serde_json::Value::Null),
        })
    }
}

/// State shared by every stage of one run.
struct Shared {
    cancel: AtomicBool,
    error: Mutex<Option<Error>>,
    on_error: OnError,
    source_rows: AtomicU64,
    finished_rows: Arc<AtomicU64>,
}

impl Shared {
    /// Record the first error and cancel every stage.
    fn fail(&self, error: Error) {
        if let Ok(mut slot) = self.error.lock() {
            if slot.is_none() {
                *slot = Some(error);
            }
        }
        self.cancel.store(true, Ordering::SeqCst);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }

    /// Attach the stage name to rejections; in `fail` mode the first one fails the run.
    fn rejections(
        &self,
        stage: &str,
        processed: &mut Processed,
        into: &mut Vec<RejectedRow>,
    ) -> bool {
        for r in processed.rejected.drain(..) {
            if self.on_error == OnError::Fail {
                self.fail(Error::Row {
                    stage: stage.to_string(),
                    row: r.id,
                    message: r.message,
                });
                return false;
            }
            into.push(RejectedRow {
                id: r.id,
                stage: stage.to_string(),
                message: r.message,
            });
        }
        true
    }
}

/// Cancels the run if its thread unwinds from a panic. Declared after a stage's channels so it
/// drops first: downstream stages see the cancellation before they see the channel close, and
/// never mistake a crash for the end of the stream.
struct PanicGuard<'a> {
    shared: &'a Shared,
    stage: String,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.shared.fail(Error::Stage {
                stage: self.stage.clone(),
                message: "panicked (a bug in ldae: please report it)".to_string(),
            });
        }
    }
}

fn run_source(
    source: &mut dyn Source,
    outbox: Vec<Outbox>,
    window: &Window,
    shared: &Shared,
) -> StageMetrics {
    let name = source.name();
    let outbox = outbox.into_iter().next().unwrap_or_default();
    let _guard = PanicGuard {
        shared,
        stage: name.clone(),
    };
    let mut m = StageMetrics {
        name: name.clone(),
        workers: 1,
        ..Default::default()
    };
    let mut seq = 0u64;
    while !shared.cancelled() {
        if crate::interrupt::requested() {
            shared.fail(Error::Interrupted);
            break;
        }
        if !window.take(&shared.cancel, &mut m.wait_output) {
            break;
        }
        let start = Instant::now();
        let next = catch_unwind(AssertUnwindSafe(|| source.next_batch()));
        m.busy += start.elapsed();
        let mut processed = match next {
            Ok(None) => break,
            Ok(Some(Ok(p))) => p,
            Ok(Some(Err(e))) => {
                shared.fail(e.in_stage(&name));
                break;
            }
            Err(_) => {
                shared.fail(Error::Stage {
                    stage: name.clone(),
                    message: "panicked (a bug in ldae: please report it)".to_string(),
                });
                break;
            }
        };
        let rows = processed.batch.num_rows() as u64;
        let rejected_now = processed.rejected.len() as u64;
        m.rows_in += rows + rejected_now;
        m.rejected += rejected_now;
        shared
            .source_rows
            .fetch_add(rows + rejected_now, Ordering::SeqCst);
        let mut rejected = Vec::new();
        if !shared.rejections(&name, &mut processed, &mut rejected) {
            break;
        }
        m.rows_out += rows;
        m.batches += 1;
        let env = Envelope {
            seq,
            batch: processed.batch,
            rejected,
        };
        seq += 1;
        if !outbox.send(env, &shared.cancel, &mut m.wait_output) {
            break;
        }
    }
    m
}

fn run_operator(
    name: &str,
    op: &dyn BoundOperator,
    mut inbox: Inbox,
    outbox: Outbox,
    shared: &Shared,
) -> StageMetrics {
    let name = name.to_string();
    let planned = op.schema();
    let _guard = PanicGuard {
        shared,
        stage: name.clone(),
    };
    let mut m = StageMetrics {
        name: name.clone(),
        workers: 1,
        ..Default::default()
    };
    while let Some(env) = inbox.recv(&shared.cancel, &mut m.wait_input) {
        m.rows_in += env.batch.num_rows() as u64;
        let start = Instant::now();
        let result = op.process(env.batch);
        m.busy += start.elapsed();
        let mut processed = match result {
            Ok(p) => p,
            Err(e) => {
                shared.fail(e.in_stage(&name));
                break;
            }
        };
        if processed.batch.schema().fields() != planned.fields() {
            shared.fail(Error::Stage {
                stage: name.clone(),
                message: format!(
                    "produced a batch whose schema differs from its plan (a bug in ldae): {:?}",
                    processed.batch.schema()
                ),
            });
            break;
        }
        m.rejected += processed.rejected.len() as u64;
        let mut rejected = env.rejected;
        if !shared.rejections(&name, &mut processed, &mut rejected) {
            break;
        }
        m.rows_out += processed.batch.num_rows() as u64;
        m.batches += 1;
        let out = Envelope {
            seq: env.seq,
            batch: processed.batch,
            rejected,
        };
        if !outbox.send(out, &shared.cancel, &mut m.wait_output) {
            break;
        }
    }
    m
}

type SinkResult = (StageMetrics, Option<serde_json::Value>, Vec<RejectedRow>);

fn run_sink(sink: &mut dyn Sink, mut inbox: Inbox, window: &Window, shared: &Shared) -> SinkResult {
    let name = sink.name();
    let _guard = PanicGuard {
        shared,
        stage: name.clone(),
    };
    let mut m = StageMetrics {
        name: name.clone(),
        workers: 1,
        ..Default::default()
    };
    let mut rejected: Vec<RejectedRow> = Vec::new();
    while let Some(env) = inbox.recv(&shared.cancel, &mut m.wait_input) {
        let rows = env.batch.num_rows() as u64;
        let start = Instant::now();
        let mut result = if rows > 0 {
            sink.write(&env.batch)
        } else {
            Ok(())
        };
        if result.is_ok() {
            result = sink.consumed(rows + env.rejected.len() as u64, &env.rejected);
        }
        m.busy += start.elapsed();
        window.give_back();
        rejected.extend(env.rejected);
        if let Err(e) = result {
            shared.fail(e.in_stage(&name));
            break;
        }
        m.rows_in += rows;
        m.batches += 1;
        shared
            .finished_rows
            .store(m.rows_in + rejected.len() as u64, Ordering::Relaxed);
    }
    if shared.cancelled() {
        sink.abort();
        return (m, None, rejected);
    }
    let rows_in = shared.source_rows.load(Ordering::SeqCst);
    if rows_in != m.rows_in + rejected.len() as u64 {
        shared.fail(Error::Stage {
            stage: name,
            message: format!(
                "row accounting failed: {rows_in} rows in, {} out, {} rejected (a bug in ldae)",
                m.rows_in,
                rejected.len()
            ),
        });
        sink.abort();
        return (m, None, rejected);
    }
    let summary = RunSummary {
        rows_in,
        rows_out: m.rows_in,
        rejected: &rejected,
    };
    let start = Instant::now();
    let output = match sink.finish(&summary) {
        Ok(v) => Some(v),
        Err(e) => {
            shared.fail(e.in_stage(&name));
            sink.abort();
            None
        }
    };
    m.busy += start.elapsed();
    m.rows_out = m.rows_in;
    (m, output, rejected)
}

/// Sum the per-worker metrics of each stage (workers are tagged with their stage's index).
fn merge_workers(workers: Vec<(usize, StageMetrics)>) -> Vec<StageMetrics> {
    let mut stages: Vec<(usize, StageMetrics)> = Vec::new();
    for (stage, w) in workers {
        match stages.last_mut() {
            Some((last, merged)) if *last == stage => {
                merged.merge(&w);
                merged.workers += 1;
            }
            _ => stages.push((stage, w)),
        }
    }
    stages.into_iter().map(|(_, m)| m).collect()
}
