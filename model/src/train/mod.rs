//! Training building blocks: an AdamW whose state can be checkpointed, and the learning-rate
//! schedule. (The `ldae train` job itself is not written yet.)

pub mod metrics;
pub mod optimizer;
pub mod run;
pub mod schedule;
pub mod trainer;

pub use optimizer::{AdamW, AdamWConfig};
pub use schedule::learning_rate;
