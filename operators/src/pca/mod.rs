//! The patch-wise PCA tokenizer.
//!
//! [`file`](mod@file) owns the safetensors layout and metadata of PCA files, [`stats`] accumulates mergeable f64 statistics of patches, [`model`] turns them into the full
//! D x D basis (sorted by eigenvalue, largest first) and saves/loads it, [`fit`] is the sink that
//! fits a model from a stream, [`project`] and [`inverse`] are the operators between patches and
//! latents, [`show`] draws the components.

pub mod file;
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

/// The model file of a spec's PCA stage (resolved against the spec's folder), the latent scale
/// to use (the config's, else the model's) and the compute device.
pub fn load_for_spec(
    pca: &std::path::Path,
    latent_scale: Option<LatentScale>,
    device: crate::device::DeviceName,
    ctx: &ldae_pipeline::BuildContext,
) -> ldae_pipeline::Result<(PcaModel, LatentScale, candle_core::Device)> {
    let model = PcaModel::load(&ctx.resolve(pca))?;
    let scale = latent_scale.unwrap_or(model.meta.latent_scale);
    Ok((model, scale, device.open()?))
}

/// Convert a candle error into the engine's error type.
pub fn candle_err(e: candle_core::Error) -> ldae_pipeline::Error {
    ldae_pipeline::Error::external("candle", e)
}
