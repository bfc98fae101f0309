//! `ldae._native`: the Rust side of the Python package.
//!
//! Three things cross into Python: pipelines of registered operators applied to Arrow batches
//! (through the Arrow C data interface, no copies), the CLI's commands (parsed from the same
//! flags by the same `clap` definitions, so defaults, checks and messages are the CLI's), and
//! models (a PCA as numpy arrays, an encoder as a pipeline). The Python modules in `ldae/`
//! wrap these with docstrings and Python conventions.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow_pyarrow::{FromPyArrow, IntoPyArrow, Table, ToPyArrow};
use clap::Parser;
use ldae_pipeline::OperatorSpec;
use ldae_pipeline::{columns, BoundOperator, BuildContext, Error, Operator, RejectedRow};
use numpy::{PyArray1, PyArrayMethods};
use pyo3::exceptions::{PyKeyboardInterrupt, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

mod rejected;
mod stream;

pyo3::create_exception!(
    _native,
    LdaeError,
    pyo3::exceptions::PyRuntimeError,
    "A job or pipeline failed while running (a file that cannot be read or written, a row \
     rejected under errors='raise', ...). Wrong settings raise ValueError instead."
);

/// The Python exception of an engine error: ValueError for what is wrong in the settings
/// (plan and spec errors), LdaeError for what failed while running.
fn py_error(e: &Error) -> PyErr {
    let text = e.chain();
    match e {
        Error::Interrupted => PyKeyboardInterrupt::new_err(text),
        e if e.is_about_settings() => PyValueError::new_err(text),
        _ => LdaeError::new_err(text),
    }
}

/// What a pipeline does with rejected rows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnRejected {
    /// Return them after the good rows, with `error_stage` and `error` set.
    Column,
    /// Raise at the first one, naming the row and stage (the CLI's `--on-error fail`).
    Raise,
}

/// Operators bound to one input schema.
type BoundOps = (SchemaRef, Vec<Arc<dyn BoundOperator>>);

/// Registered operators applied in order to Arrow batches.
#[pyclass(module = "ldae._native")]
struct NativePipeline {
    operators: Vec<Arc<dyn Operator>>,
    on_rejected: OnRejected,
    /// Bindings per input schema seen (engines may hand batches of a few schemas).
    bound: Mutex<Vec<BoundOps>>,
}

impl NativePipeline {
    fn bind(&self, schema: &SchemaRef) -> ldae_pipeline::Result<Vec<Arc<dyn BoundOperator>>> {
        let mut cache = self.bound.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, ops)) = cache.iter().find(|(s, _)| s == schema) {
            return Ok(ops.clone());
        }
        let ops = ldae_pipeline::executor::bind_all(schema.clone(), &self.operators)?;
        cache.push((schema.clone(), ops.clone()));
        Ok(ops)
    }

    /// Adapt `input` to what sources yield, run every operator, and put the rejected rows back.
    fn process(&self, input: RecordBatch) -> ldae_pipeline::Result<RecordBatch> {
        let source = format!("source:{}", ldae_datasets::arrow_rows::KIND);
        // Rows an earlier pipeline rejected, and null tensors, go round the operators.
        let mut aside = rejected::SetAside::default();
        let input = rejected::earlier_rejections(input, &mut aside)?;
        let mut rejections: Vec<RejectedRow> = Vec::new();
        let mut batch = if input.column_by_name(columns::IMAGE).is_some() {
            let p = ldae_datasets::arrow_rows::source_rows(&input)?;
            rejections.extend(p.rejected.into_iter().map(|r| RejectedRow {
                id: r.id,
                stage: source.clone(),
                message: r.message,
            }));
            p.batch
        } else if input.column_by_name(columns::ID).is_none() {
            rejected::null_tensors(with_row_ids(&input)?, &source, &mut aside)?
        } else {
            rejected::null_tensors(input, &source, &mut aside)?
        };
        rejections.splice(0..0, aside.rows);
        // Rejected rows get their labels from the rows as they entered the operators.
        let entered = batch.clone();
        let bound = self.bind(&batch.schema())?;
        for (op, b) in self.operators.iter().zip(&bound) {
            let p = b.process(batch).map_err(|e| e.in_stage(&op.name()))?;
            rejections.extend(p.rejected.into_iter().map(|r| RejectedRow {
                id: r.id,
                stage: op.name(),
                message: r.message,
            }));
            batch = p.batch;
        }
        if self.on_rejected == OnRejected::Raise {
            if let Some(r) = rejections.first().cloned() {
                return Err(Error::Row {
                    stage: r.stage,
                    row: r.id,
                    message: r.message,
                });
            }
        }
        let mut labels = if rejections.is_empty() {
            rejected::Labels::new()
        } else {
            rejected::labels_by_id(&entered)
        };
        labels.extend(aside.labels);
        rejected::with_rejected_rows(&batch, &rejections, &labels)
    }
}

/// `batch` with an `id` column in front: each row's position in the batch.
fn with_row_ids(batch: &RecordBatch) -> ldae_pipeline::Result<RecordBatch> {
    let ids: StringArray = (0..batch.num_rows()).map(|i| Some(i.to_string())).collect();
    let schema = batch.schema();
    let mut fields = vec![Arc::new(Field::new(columns::ID, DataType::Utf8, false))];
    fields.extend(schema.fields().iter().cloned());
    let mut cols: Vec<ArrayRef> = vec![Arc::new(ids)];
    cols.extend(batch.columns().iter().cloned());
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    Ok(RecordBatch::try_new(Arc::new(schema), cols)?)
}

#[pymethods]
impl NativePipeline {
    /// `operators`: the `[[operator]]` tables as a JSON list; `base`: the folder relative paths
    /// in them are resolved against; `errors`: "column" or "raise".
    #[new]
    fn new(operators: &str, base: &str, errors: &str) -> PyResult<Self> {
        let on_rejected = match errors {
            "column" => OnRejected::Column,
            "raise" => OnRejected::Raise,
            other => {
                return Err(PyValueError::new_err(format!(
                    "errors must be 'column' or 'raise', not '{other}'"
                )))
            }
        };
        let components: Vec<OperatorSpec> = serde_json::from_str(operators)
            .map_err(|e| PyValueError::new_err(format!("operators: {e}")))?;
        let ctx = BuildContext {
            base: base.into(),
            ..BuildContext::default()
        };
        // Building reads only the settings and the files they name: any failure is a wrong setting.
        let operators = ldae_jobs::spec::build_operators(&components, &ctx)
            .map_err(|e| PyValueError::new_err(e.chain()))?;
        Ok(NativePipeline {
            operators,
            on_rejected,
            bound: Mutex::new(Vec::new()),
        })
    }

    /// Run on a `pyarrow.RecordBatch` (anything with `__arrow_c_array__`) or a `pyarrow.Table`
    /// (anything with `__arrow_c_stream__`); returns the same kind.
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if data.hasattr("__arrow_c_array__")? {
            let batch = RecordBatch::from_pyarrow_bound(data)?;
            let out = py
                .detach(|| self.process(batch))
                .map_err(|e| py_error(&e))?;
            return out.to_pyarrow(py);
        }
        if data.hasattr("__arrow_c_stream__")? {
            let (batches, schema) = Table::from_pyarrow_bound(data)?.into_inner();
            let outs = py
                .detach(|| -> ldae_pipeline::Result<Vec<RecordBatch>> {
                    if batches.is_empty() {
                        // The output schema of an empty table still comes from the plan.
                        return Ok(vec![self.process(RecordBatch::new_empty(schema))?]);
                    }
                    batches.into_iter().map(|b| self.process(b)).collect()
                })
                .map_err(|e| py_error(&e))?;
            let schema = outs[0].schema();
            let table =
                Table::try_new(outs, schema).map_err(|e| LdaeError::new_err(e.to_string()))?;
            return table.into_pyarrow(py);
        }
        Err(PyTypeError::new_err(format!(
            "expected a pyarrow RecordBatch or Table (or an object with __arrow_c_array__ / \
             __arrow_c_stream__), got {}",
            data.get_type().name()?
        )))
    }

    /// The operators' names, in order.
    fn names(&self) -> Vec<String> {
        self.operators.iter().map(|o| o.name()).collect()
    }
}

/// Run one `ldae` command from its command-line arguments (without the program name), as the
/// CLI would (same printing); returns the command's report as JSON text. Ctrl-C stops the job at
/// its next batch (nothing unfinished is committed) and raises KeyboardInterrupt.
#[pyfunction]
fn run_command(py: Python<'_>, argv: Vec<String>) -> PyResult<String> {
    let cli = ldae::cli::Cli::try_parse_from(std::iter::once("ldae".to_string()).chain(argv))
        .map_err(|e| PyValueError::new_err(e.render().to_string().trim_end().to_string()))?;
    ldae_pipeline::interrupt::clear();
    let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(1);
    let worker = std::thread::spawn(move || {
        let result = ldae::commands::run(cli);
        let _ = done_tx.send(());
        result
    });
    loop {
        let finished = py.detach(|| {
            !matches!(
                done_rx.recv_timeout(Duration::from_millis(100)),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            )
        });
        if finished {
            break;
        }
        if let Err(signal) = py.check_signals() {
            ldae_pipeline::interrupt::request();
            let _ = py.detach(|| worker.join());
            ldae_pipeline::interrupt::clear();
            return Err(signal);
        }
    }
    let result = worker.join().map_err(|_| {
        PyRuntimeError::new_err("the job panicked (a bug in ldae: please report it)")
    })?;
    match result {
        Ok(report) => Ok(report.to_string()),
        Err(e) => {
            if let Some(engine) = e.downcast_ref::<Error>() {
                return Err(py_error(engine));
            }
            Err(LdaeError::new_err(ldae_pipeline::error::describe(
                e.as_ref(),
            )))
        }
    }
}

/// One flag of a CLI command: `(keyword, flag, help, default, required)`.
type FlagDoc = (String, String, String, Option<String>, bool);

/// The flags of the CLI command at `path` (e.g. `["pca", "fit"]`), as the Python job functions
/// document them: `(keyword, flag, help, default, required)` for each, from the CLI's own
/// definitions (so a docstring cannot promise a default the CLI does not have).
#[pyfunction]
fn command_flags(path: Vec<String>) -> PyResult<Vec<FlagDoc>> {
    use clap::CommandFactory;
    let mut command = ldae::cli::Cli::command();
    for name in &path {
        command = command
            .find_subcommand(name)
            .cloned()
            .ok_or_else(|| PyValueError::new_err(format!("no command '{}'", path.join(" "))))?;
    }
    Ok(command
        .get_arguments()
        .filter(|a| !a.is_positional() && a.get_id() != "help")
        .filter_map(|a| {
            let flag = a.get_long()?;
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            let defaults: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let takes_value = a.get_action().takes_values();
            let default = (takes_value && !defaults.is_empty()).then(|| defaults.join(","));
            Some((
                flag.replace('-', "_"),
                format!("--{flag}"),
                help,
                default,
                a.is_required_set(),
            ))
        })
        .collect())
}

/// The spec (JSON) `ldae train` would run with these flags (`argv` without the program name,
/// starting with "train"): what `spec.json` of a run folder records, so that a run written
/// from PyTorch resumes in ldae.
#[pyfunction]
fn train_spec(argv: Vec<String>) -> PyResult<String> {
    let cli = ldae::cli::Cli::try_parse_from(std::iter::once("ldae".to_string()).chain(argv))
        .map_err(|e| PyValueError::new_err(e.render().to_string().trim_end().to_string()))?;
    let ldae::cli::Command::Train(args) = cli.command else {
        return Err(PyValueError::new_err("expected the flags of `ldae train`"));
    };
    let spec = ldae::commands::train_spec(&args).map_err(|e| match e.downcast_ref::<Error>() {
        Some(engine) => py_error(engine),
        None => PyValueError::new_err(ldae_pipeline::error::describe(e.as_ref())),
    })?;
    serde_json::to_string(&spec).map_err(|e| LdaeError::new_err(e.to_string()))
}

/// The JPEG decoder this process uses: the system's libjpeg-turbo (loaded at run time) or
/// zune-jpeg (pure Rust), with the reason; `ldae --version` prints the same.
#[pyfunction]
fn jpeg_decoder() -> String {
    ldae_operators::jpeg::decoder().to_string()
}

/// The registered operator kinds with their config's JSON schema (keys, defaults, docs).
#[pyfunction]
fn operator_kinds() -> Vec<(String, String)> {
    ldae_pipeline::registry::operator_kinds()
        .into_iter()
        .map(|k| (k.kind.to_string(), (k.schema)().to_string()))
        .collect()
}

/// A PCA model file's arrays and settings: `mean` (D), `components` (D x D, one direction per
/// row, largest eigenvalue first), `eigenvalues` (D), `explained_variance_ratio` (D) and `meta`.
#[pyfunction]
fn load_pca<'py>(py: Python<'py>, path: std::path::PathBuf) -> PyResult<Bound<'py, PyDict>> {
    let model = ldae_operators::pca::PcaModel::load(&path).map_err(|e| py_error(&e))?;
    let d = model.eigenvalues.len();
    let out = PyDict::new(py);
    out.set_item("mean", PyArray1::from_slice(py, &model.mean))?;
    out.set_item(
        "components",
        PyArray1::from_slice(py, &model.components).reshape([d, model.mean.len()])?,
    )?;
    out.set_item("eigenvalues", PyArray1::from_slice(py, &model.eigenvalues))?;
    out.set_item(
        "explained_variance_ratio",
        PyArray1::from_vec(py, model.explained_variance_ratio()),
    )?;
    let meta = serde_json::to_string(&model.meta).map_err(|e| LdaeError::new_err(e.to_string()))?;
    out.set_item("meta", meta)?;
    Ok(out)
}

/// The `[[operator]]` list (JSON) that reads features of a training run's encoder, as
/// `ldae features --checkpoint RUN` builds it: the PCA front, then the encoder. Settings left
/// None come from the run's config.
#[pyfunction]
#[pyo3(signature = (checkpoint, blocks, t=None, pooling=None, ema=None, device="cpu".to_string()))]
fn encoder_operators(
    checkpoint: std::path::PathBuf,
    blocks: Vec<usize>,
    t: Option<f32>,
    pooling: Option<String>,
    ema: Option<bool>,
    device: String,
) -> PyResult<String> {
    let device = device
        .parse::<ldae_operators::device::DeviceName>()
        .map_err(|e| PyValueError::new_err(e.chain()))?;
    let pooling = pooling
        .map(|p| {
            // The CLI's parser: its message lists the valid names.
            ldae_pipeline::names::parse_name::<ldae_model::encoder::Pooling>(&p)
                .map_err(|e| PyValueError::new_err(format!("pooling '{p}': {e}")))
        })
        .transpose()?;
    let job = ldae_jobs::features::FeaturesJob {
        input: String::new(),
        source: Default::default(),
        out: Default::default(),
        write: Default::default(),
        model: ldae_model::encoder::EncoderModel::Ldae,
        checkpoint: Some(checkpoint),
        blocks,
        t,
        pooling,
        ema,
        pca: None,
        dim: None,
        seed: 0,
        device,
        precision: None,
        preprocess: Default::default(),
    };
    let spec = job.spec().map_err(|e| py_error(&e))?;
    serde_json::to_string(&spec.operators).map_err(|e| LdaeError::new_err(e.to_string()))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Warnings from the library go to stderr as in the CLI (LDAE_LOG sets the level).
    let filter = tracing_subscriber::EnvFilter::try_from_env("LDAE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
    m.add("LdaeError", m.py().get_type::<LdaeError>())?;
    m.add_class::<NativePipeline>()?;
    m.add_class::<stream::NativeStream>()?;
    m.add_function(wrap_pyfunction!(run_command, m)?)?;
    m.add_function(wrap_pyfunction!(command_flags, m)?)?;
    m.add_function(wrap_pyfunction!(operator_kinds, m)?)?;
    m.add_function(wrap_pyfunction!(jpeg_decoder, m)?)?;
    m.add_function(wrap_pyfunction!(train_spec, m)?)?;
    m.add_function(wrap_pyfunction!(load_pca, m)?)?;
    m.add_function(wrap_pyfunction!(encoder_operators, m)?)?;
    Ok(())
}
