//! Behaviour of the threaded executor on toy stages: ordering, rejections, cancellation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use ldae_pipeline::{
    BoundOperator, Error, OnError, Operator, Pipeline, ProcessWithSchema, Processed, ProgressMode,
    Rejection, Result, RunOptions, RunSummary, Sink, Source, WithSchema,
};

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("x", DataType::Int64, false),
    ]))
}

/// Yields rows 0..n in batches of `batch`.
struct Counter {
    n: i64,
    batch: i64,
    next: i64,
}

impl Source for Counter {
    fn name(&self) -> String {
        "source:counter".into()
    }
    fn schema(&self) -> SchemaRef {
        schema()
    }
    fn total_rows(&self) -> Option<u64> {
        Some(self.n as u64)
    }
    fn next_batch(&mut self) -> Option<Result<Processed>> {
        if self.next >= self.n {
            return None;
        }
        let end = (self.next + self.batch).min(self.n);
        let xs: Vec<i64> = (self.next..end).collect();
        self.next = end;
        let ids: Vec<String> = xs.iter().map(|x| format!("row{x}")).collect();
        let batch = RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(Int64Array::from(xs)),
            ],
        )
        .map_err(Error::from);
        Some(batch.map(Processed::ok))
    }
}

/// Squares x after a row-dependent sleep (so workers finish out of order); rejects multiples
/// of `reject_every`; fails the run on `fail_at`.
#[derive(Clone)]
struct Square {
    reject_every: i64,
    fail_at: Option<i64>,
}

impl Square {
    /// The output schema for batches of `input`, with every plan-time check.
    fn plan_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        input
            .field_with_name("x")
            .map_err(|_| Error::plan("square", "needs x"))?;
        Ok(input.clone())
    }
}

impl Operator for Square {
    fn name(&self) -> String {
        "square".into()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        Ok(Arc::new(WithSchema {
            schema: self.plan_schema(input)?,
            op: self.clone(),
        }))
    }
}

impl ProcessWithSchema for Square {
    fn process_with(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<Processed> {
        let ids = batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let xs = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        std::thread::sleep(Duration::from_micros((xs.value(0) as u64 * 7919) % 3000));
        let (mut keep_ids, mut keep_xs, mut rejected) = (vec![], vec![], vec![]);
        for i in 0..batch.num_rows() {
            let x = xs.value(i);
            if Some(x) == self.fail_at {
                return Err(Error::msg(format!("cannot square {x}")));
            }
            if self.reject_every > 0 && x % self.reject_every == 0 {
                rejected.push(Rejection {
                    id: ids.value(i).to_string(),
                    message: "multiple".into(),
                });
            } else {
                keep_ids.push(ids.value(i).to_string());
                keep_xs.push(x * x);
            }
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(keep_ids)),
                Arc::new(Int64Array::from(keep_xs)),
            ],
        )?;
        Ok(Processed { batch, rejected })
    }
}

#[derive(Clone, Default)]
struct Collected {
    xs: Arc<Mutex<Vec<i64>>>,
    finished: Arc<Mutex<bool>>,
    aborted: Arc<Mutex<bool>>,
}

struct Collect(Collected);

impl Sink for Collect {
    fn name(&self) -> String {
        "collect".into()
    }
    fn check_schema(&mut self, _input: &SchemaRef) -> Result<()> {
        Ok(())
    }
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let xs = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        self.0.xs.lock().unwrap().extend(xs.values().iter());
        Ok(())
    }
    fn finish(&mut self, summary: &RunSummary<'_>) -> Result<serde_json::Value> {
        *self.0.finished.lock().unwrap() = true;
        Ok(serde_json::json!({ "rows": summary.rows_out }))
    }
    fn abort(&mut self) {
        *self.0.aborted.lock().unwrap() = true;
    }
}

fn options(threads: usize, on_error: OnError) -> RunOptions {
    RunOptions {
        threads,
        on_error,
        progress: ProgressMode::Off,
        ..Default::default()
    }
}

fn pipeline(n: i64, batch: i64, op: Square, out: &Collected) -> Pipeline {
    Pipeline::new(
        Box::new(Counter { n, batch, next: 0 }),
        Box::new(Collect(out.clone())),
    )
    .then(Arc::new(op))
    .then(Arc::new(Square {
        reject_every: 0,
        fail_at: None,
    }))
}

#[test]
fn output_order_does_not_depend_on_threads() {
    let mut results = vec![];
    for threads in [1, 4] {
        let out = Collected::default();
        let op = Square {
            reject_every: 5,
            fail_at: None,
        };
        let report = pipeline(997, 13, op, &out)
            .run(&options(threads, OnError::Skip))
            .unwrap();
        assert_eq!(report.rows_in, 997);
        assert_eq!(report.rows_out + report.rejected.len() as u64, 997);
        assert_eq!(report.rejected.len(), 200);
        assert_eq!(report.rejected[1].id, "row5");
        assert_eq!(report.rejected[1].stage, "square");
        assert_eq!(report.stages.len(), 4);
        assert_eq!(report.stages[1].workers, threads);
        assert!(*out.finished.lock().unwrap());
        results.push(out.xs.lock().unwrap().clone());
    }
    let expected: Vec<i64> = (0..997i64)
        .filter(|x| x % 5 != 0)
        .map(|x| x.pow(4))
        .collect();
    assert_eq!(results[0], expected);
    assert_eq!(results[1], expected);
}

#[test]
fn fail_mode_stops_at_first_rejected_row() {
    let out = Collected::default();
    let op = Square {
        reject_every: 50,
        fail_at: None,
    };
    let err = pipeline(500, 7, op, &out)
        .run(&options(3, OnError::Fail))
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("square") && text.contains("row0"), "{text}");
    assert!(*out.aborted.lock().unwrap());
    assert!(!*out.finished.lock().unwrap());
}

#[test]
fn stage_error_cancels_run_and_names_stage() {
    for threads in [1, 4] {
        let out = Collected::default();
        let op = Square {
            reject_every: 0,
            fail_at: Some(333),
        };
        let err = pipeline(100_000, 10, op, &out)
            .run(&options(threads, OnError::Skip))
            .unwrap_err();
        assert_eq!(err.chain(), "stage 'square': cannot square 333");
        assert!(*out.aborted.lock().unwrap());
        assert!(!*out.finished.lock().unwrap());
        // Cancellation stops the source long before the end of the stream.
        assert!(out.xs.lock().unwrap().len() < 100_000);
    }
}

struct Panics;
impl Panics {
    /// The output schema for batches of `input`, with every plan-time check.
    fn plan_schema(&self, input: &SchemaRef) -> Result<SchemaRef> {
        Ok(input.clone())
    }
}

impl Operator for Panics {
    fn name(&self) -> String {
        "panics".into()
    }

    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        Ok(Arc::new(WithSchema {
            schema: self.plan_schema(input)?,
            op: Panics,
        }))
    }
}

impl ProcessWithSchema for Panics {
    fn process_with(&self, batch: RecordBatch, _schema: &SchemaRef) -> Result<Processed> {
        let xs = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        if xs.value(0) >= 40 {
            panic!("deliberate test panic");
        }
        Ok(Processed::ok(batch))
    }
}

#[test]
fn panic_in_a_worker_is_an_error_not_a_short_output() {
    let out = Collected::default();
    let err = Pipeline::new(
        Box::new(Counter {
            n: 100,
            batch: 10,
            next: 0,
        }),
        Box::new(Collect(out.clone())),
    )
    .then(Arc::new(Panics))
    .run(&options(2, OnError::Skip))
    .unwrap_err();
    assert!(err.to_string().contains("panics"), "{err}");
    assert!(!*out.finished.lock().unwrap());
}

#[test]
fn plan_rejects_missing_column_before_running() {
    struct NoX;
    impl Source for NoX {
        fn name(&self) -> String {
            "nox".into()
        }
        fn schema(&self) -> SchemaRef {
            Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, false)]))
        }
        fn total_rows(&self) -> Option<u64> {
            None
        }
        fn next_batch(&mut self) -> Option<Result<Processed>> {
            panic!("must not run");
        }
    }
    let out = Collected::default();
    let err = Pipeline::new(Box::new(NoX), Box::new(Collect(out)))
        .then(Arc::new(Square {
            reject_every: 0,
            fail_at: None,
        }))
        .run(&options(1, OnError::Skip))
        .unwrap_err();
    assert_eq!(err.chain(), "plan: stage 'square': needs x");
}

/// A [`Counter`] that counts the batches it has read.
struct Counted {
    inner: Counter,
    read: Arc<std::sync::atomic::AtomicUsize>,
}

impl Source for Counted {
    fn name(&self) -> String {
        self.inner.name()
    }
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
    fn total_rows(&self) -> Option<u64> {
        self.inner.total_rows()
    }
    fn next_batch(&mut self) -> Option<Result<Processed>> {
        let next = self.inner.next_batch();
        if next.is_some() {
            self.read.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        next
    }
}

/// A slow sink that records the most batches the source had read beyond those it consumed.
struct SlowSink {
    read: Arc<std::sync::atomic::AtomicUsize>,
    written: usize,
    most_ahead: Arc<Mutex<usize>>,
    xs: Collected,
}

impl Sink for SlowSink {
    fn name(&self) -> String {
        "slow".into()
    }
    fn check_schema(&mut self, _input: &SchemaRef) -> Result<()> {
        Ok(())
    }
    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        std::thread::sleep(Duration::from_millis(3));
        let ahead = self.read.load(std::sync::atomic::Ordering::SeqCst) - self.written;
        let mut most = self.most_ahead.lock().unwrap();
        *most = (*most).max(ahead);
        self.written += 1;
        Collect(self.xs.clone()).write(batch)
    }
    fn finish(&mut self, _summary: &RunSummary<'_>) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
}

#[test]
fn batches_in_flight_stay_within_the_window_whatever_the_workers() {
    for (window, threads) in [(Some(3), 8), (Some(1), 4), (None, 4)] {
        let read = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most_ahead = Arc::new(Mutex::new(0));
        let out = Collected::default();
        let source = Counted {
            inner: Counter {
                n: 400,
                batch: 5,
                next: 0,
            },
            read: read.clone(),
        };
        let sink = SlowSink {
            read,
            written: 0,
            most_ahead: most_ahead.clone(),
            xs: out.clone(),
        };
        let square = || Square {
            reject_every: 0,
            fail_at: None,
        };
        let report = Pipeline::new(Box::new(source), Box::new(sink))
            .then(Arc::new(square()))
            .then(Arc::new(square()))
            .run(&RunOptions {
                batches_in_flight: window,
                ..options(threads, OnError::Skip)
            })
            .unwrap();
        assert_eq!(report.rows_out, 400);
        let expected: Vec<i64> = (0..400i64).map(|x| x.pow(4)).collect();
        assert_eq!(*out.xs.lock().unwrap(), expected, "order kept");
        // The default: twice the widest stage's workers plus one per stage (4 stages).
        let bound = window.unwrap_or(2 * threads + 4);
        let most = *most_ahead.lock().unwrap();
        assert!(
            most <= bound,
            "{most} batches in flight, window {bound} ({threads} workers)"
        );
    }
}

#[test]
fn the_stage_table_ends_with_the_peak_memory_of_the_process() {
    // 96 MiB held and touched: the peak can only be above it.
    let held = vec![1u8; 96 << 20];
    let peak = ldae_pipeline::metrics::peak_memory_bytes().expect("Linux reports it");
    assert!(peak >= held.len() as u64, "peak {peak} bytes");
    let out = Collected::default();
    let square = Square {
        reject_every: 0,
        fail_at: None,
    };
    let report = pipeline(50, 7, square, &out)
        .run(&options(2, OnError::Skip))
        .unwrap();
    let last = report.table().lines().last().unwrap().to_string();
    let (_, memory) = last.split_once("; peak memory ").expect(&last);
    let (number, unit) = memory.split_once(' ').expect(&last);
    let mib = number.parse::<f64>().unwrap() * if unit == "GiB" { 1024.0 } else { 1.0 };
    assert!(matches!(unit, "MiB" | "GiB") && mib >= 96.0, "{last}");
    drop(held);
}
