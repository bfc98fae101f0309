//! ldae operators: one operator (or sink) per module.
//!
//! Image preparation ([`decode`], [`augment`], [`normalize`], [`patchify`]), the patch-wise PCA
//! tokenizer ([`pca`]: fit as a sink, project and inverse as operators, a picture of the
//! components) latent noise ([`noise`]), [`unpatchify`], and table output ([`parquet_sink`]).
//!
//! Each operator and sink has a serde config registered by name (see
//! `ldae_pipeline::registry`), so pipeline specs can name it.

pub mod augment;
pub mod cpu;
pub mod decode;
pub mod device;
pub mod jpeg;
pub mod noise;
pub mod normalize;
pub mod parquet_sink;
pub mod patchify;
pub mod pca;
pub mod plot;
pub mod resize;
pub mod rowseed;
pub mod unpatchify;
