//! The l-DAE denoiser: a DiT-style transformer without class conditioning, and the weighted
//! PCA-space loss it is trained with.
//!
//! [`config`] holds the sizes and presets, [`model`] the network (weights named after the module
//! tree: `patch_embed`, `t_embedder.mlp1`, `blocks.3.attn.qkv`, `final_layer.linear`, ...),
//! [`init`] the seeded initialisation (adaLN-Zero), [`loss`] the loss.

pub mod config;
pub mod fused;
pub mod init;
pub mod loss;
pub mod model;

pub use config::{Conditioning, DenoiserConfig, Precision, Preset};
pub use init::initialise;
pub use loss::PcaLoss;
pub use model::Denoiser;
