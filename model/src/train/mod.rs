//! Training: an AdamW whose state can be checkpointed, the learning-rate schedule, the step
//! metrics, the trainer (the training loop as a sink) and the `train` sink kind of specs.

mod adamw_cpu;
pub mod budget;
pub mod metrics;
pub mod optimizer;
pub mod schedule;
pub mod sink;
pub mod trainer;

pub use optimizer::{AdamW, AdamWConfig};
pub use schedule::learning_rate;
