//! The patch-wise PCA tokenizer.
//!
//! [`stats`] accumulates mergeable f64 statistics of patches, [`model`] turns them into the full
//! D x D basis (sorted by eigenvalue, largest first) and saves/loads it, [`fit`] is the sink that
//! fits a model from a stream, [`project`] and [`inverse`] are the operators between patches and
//! latents, [`show`] draws the components.

pub mod fit;
pub mod inverse;
pub mod model;
pub mod project;
pub mod show;
pub mod stats;

pub use fit::{PcaFit, PcaFitConfig};
pub use inverse::{PcaInverse, PcaInverseConfig};
pub use model::{LatentScale, PcaMeta, PcaModel, Projector};
pub use project::{PcaProject, PcaProjectConfig};
pub use stats::PcaStats;

/// Convert a candle error into the engine's error type.
pub fn candle_err(e: candle_core::Error) -> ldae_pipeline::Error {
    ldae_pipeline::Error::external("candle", e)
}
