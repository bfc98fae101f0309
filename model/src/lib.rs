//! ldae model and evaluation: the l-DAE network and everything that runs it.
//!
//! [`denoiser`] is the ViT denoiser (candle) with its fused CPU kernels, [`train`] the
//! optimizer, schedule, metrics and the training loop (a sink, and the `train` sink kind of
//! specs), [`encoder`] the feature operator (`encoder`), [`denoise_operator`] the network's prediction as
//! an operator (`denoise`), [`probe`] the linear and kNN probes. It depends on the table
//! operators (PCA, noise), never the other way round.

pub mod chunks;
pub mod denoise_operator;
pub mod denoiser;
pub mod encoder;
mod par;
pub mod pooling;
pub mod probe;
pub mod run_folder;
pub mod train;
pub mod vit;
