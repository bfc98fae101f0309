//! The open registry of pipeline components: every operator and sink kind a spec can name.
//!
//! A component is a serde config struct (its doc comments are the user documentation, exported
//! as a JSON schema) plus a `build` into the running object, registered by name with
//! [`register_operator!`](crate::register_operator) or [`register_sink!`](crate::register_sink)
//! in the file that defines it. Adding a kind touches no central list and no engine code: the
//! registrations are collected at link time (`inventory`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::component::{AnyOperatorConfig, AnySinkConfig};
use crate::metrics::RunReport;
use crate::traits::{Operator, Sink};
use crate::{Error, Result};

#[doc(hidden)]
pub use inventory;

/// Rows per batch of a source whose spec leaves the batch size unset and whose stages give no
/// [`OperatorConfig::batch_rows_hint`].
pub const DEFAULT_BATCH_ROWS: usize = 256;

/// What a component's build gets besides its own config.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// Folder that relative paths in the spec are relative to.
    pub base: PathBuf,
    /// The pass over the data this pipeline is built for (the epoch of a training run; 0 for
    /// single-pass jobs). Operators whose randomness changes per epoch (augmentation, noise) use it.
    pub epoch: u64,
    /// The source's input (path or `synthetic:N`), for outputs that record what they were made of.
    pub input: String,
    /// The shard of a larger job the source reads, if any.
    pub shard: Option<crate::Shard>,
    /// The dataset kind the spec names (`folder`, `parquet`, ...), when it names one.
    pub format: Option<String>,
    /// The most rows the source reads, when the spec limits them.
    pub limit: Option<usize>,
    /// The job being run (the spec as JSON), for manifests.
    pub job: serde_json::Value,
}

impl BuildContext {
    /// `path` resolved against [`BuildContext::base`].
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() || self.base.as_os_str().is_empty() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }
}

/// What every component config is: a serde struct with a JSON schema (its doc comments are
/// the reference), comparable and shareable between threads.
pub trait ComponentConfig:
    Serialize
    + DeserializeOwned
    + schemars::JsonSchema
    + Clone
    + PartialEq
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<T> ComponentConfig for T where
    T: Serialize
        + DeserializeOwned
        + schemars::JsonSchema
        + Clone
        + PartialEq
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// The config of an operator kind: deserialised from its `[[operator]]` table.
pub trait OperatorConfig: ComponentConfig {
    /// The kind's name in specs (`kind = "..."`).
    const KIND: &'static str;
    /// Build the running operator.
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>>;
    /// Rows per batch this stage would have the source read when the spec leaves the batch
    /// size unset (a decoder: as many images as fit a few MB). The first stage with a hint
    /// decides.
    fn batch_rows_hint(&self) -> Option<usize> {
        None
    }
    /// A number the batch size is best a multiple of (a network that runs fixed-size chunks
    /// of rows and pads the last one); applied to a batch size the spec leaves unset.
    fn batch_multiple(&self) -> Option<usize> {
        None
    }
}

/// The config of a sink kind: deserialised from the spec's `[sink]` table.
pub trait SinkConfig: ComponentConfig {
    /// The kind's name in specs (`kind = "..."`).
    const KIND: &'static str;
    /// Build the sink's side of the job.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn SinkJob>>;
}

/// One pass over the source: what the runner changes in the source for it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// The pass number (epoch); operators are rebuilt with it in [`BuildContext::epoch`].
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
/// Most sinks want one pass ([`SinkJob::once`]); a trainer wants one per epoch and resumes
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

/// A registered operator kind.
pub struct OperatorKind {
    /// Name in specs.
    pub kind: &'static str,
    /// JSON schema of the config (keys, types, defaults, doc comments).
    pub schema: fn() -> serde_json::Value,
    /// Parse a config (its keys, without `kind`).
    pub parse: fn(serde_json::Value) -> Result<Box<dyn AnyOperatorConfig>>,
}

/// A registered sink kind.
pub struct SinkKind {
    /// Name in specs.
    pub kind: &'static str,
    /// JSON schema of the config.
    pub schema: fn() -> serde_json::Value,
    /// Parse a config (its keys, without `kind`).
    pub parse: fn(serde_json::Value) -> Result<Box<dyn AnySinkConfig>>,
}

inventory::collect!(OperatorKind);
inventory::collect!(SinkKind);

/// Parse `value` as the config of `kind`; the error names the kind.
pub fn parse_config<T: DeserializeOwned>(kind: &str, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Spec {
        component: kind.to_string(),
        source: Box::new(e),
    })
}

/// The JSON schema of config type `T`.
pub fn schema_of<T: schemars::JsonSchema>() -> serde_json::Value {
    schemars::schema_for!(T).to_value()
}

/// Every registered operator kind, sorted by name.
pub fn operator_kinds() -> Vec<&'static OperatorKind> {
    let mut kinds: Vec<_> = inventory::iter::<OperatorKind>.into_iter().collect();
    kinds.sort_by_key(|k| k.kind);
    kinds
}

/// Every registered sink kind, sorted by name.
pub fn sink_kinds() -> Vec<&'static SinkKind> {
    let mut kinds: Vec<_> = inventory::iter::<SinkKind>.into_iter().collect();
    kinds.sort_by_key(|k| k.kind);
    kinds
}

/// Register operator config type `$config` (an [`OperatorConfig`]) under its `KIND`.
#[macro_export]
macro_rules! register_operator {
    ($config:ty) => {
        $crate::registry::inventory::submit! {
            $crate::registry::OperatorKind {
                kind: <$config as $crate::registry::OperatorConfig>::KIND,
                schema: $crate::registry::schema_of::<$config>,
                parse: |value| {
                    let config: $config = $crate::registry::parse_config(
                        <$config as $crate::registry::OperatorConfig>::KIND,
                        value,
                    )?;
                    Ok(Box::new(config))
                },
            }
        }
    };
}

/// Register sink config type `$config` (a [`SinkConfig`]) under its `KIND`.
#[macro_export]
macro_rules! register_sink {
    ($config:ty) => {
        $crate::registry::inventory::submit! {
            $crate::registry::SinkKind {
                kind: <$config as $crate::registry::SinkConfig>::KIND,
                schema: $crate::registry::schema_of::<$config>,
                parse: |value| {
                    let config: $config = $crate::registry::parse_config(
                        <$config as $crate::registry::SinkConfig>::KIND,
                        value,
                    )?;
                    Ok(Box::new(config))
                },
            }
        }
    };
}
