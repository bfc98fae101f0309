//! The ldae streaming engine.
//!
//! A pipeline is one [`Source`], a chain of [`Operator`]s and one [`Sink`], joined by bounded
//! crossbeam channels and run on threads by [`Pipeline::run`]. Rows travel as Arrow
//! [`RecordBatch`](arrow::record_batch::RecordBatch)es whose column names and tensor conventions
//! are fixed in [`columns`]. Nothing here knows about images or models: those live in the
//! `ldae-datasets` and `ldae-operators` crates.

pub mod atomic_file;
mod channels;
pub mod collect;
pub mod columns;
pub mod component;
pub mod config;
pub mod error;
pub mod executor;
pub mod fault;
pub mod folders;
pub mod interrupt;
pub mod memory;
pub mod metrics;
pub mod names;
pub mod progress;
pub mod registry;
pub mod shard;
pub mod sink_job;
pub mod table;
pub mod tensor_bytes;
pub mod traits;

pub use collect::Collect;
pub use component::{OperatorSpec, SinkSpec};
pub use error::{Error, Result};
pub use executor::{OnError, Pipeline, RunOptions};
pub use metrics::{RunReport, StageMetrics};
pub use progress::{ProgressMode, Status};
pub use registry::{BuildContext, OperatorConfig, Pass, PlanInfo, SinkConfig, SinkJob};
pub use shard::Shard;

/// The cores this process may use (its CPU affinity and cgroup quota; at least 1), read once:
/// the standard library reads the cgroup files on every call.
pub fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
pub use traits::{
    BoundOperator, Operator, ProcessWithSchema, Processed, RejectedRow, Rejection, RunSummary,
    Sink, Source, WithSchema,
};
