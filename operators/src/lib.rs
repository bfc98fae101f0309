//! ldae operators: one operator (or sink) per module.
//!
//! Image preparation ([`decode`], [`augment`], [`normalize`], [`patchify`]), the patch-wise PCA
//! tokenizer ([`pca`]: fit as a sink, project and inverse as operators, a picture of the
//! components) and table output ([`parquet_sink`], [`errors_table`]).

pub mod atomic;
pub mod augment;
pub mod decode;
pub mod denoiser;
pub mod device;
pub mod errors_table;
pub mod features;
pub mod noise;
pub mod normalize;
pub mod parquet_sink;
pub mod patchify;
pub mod pca;
pub mod plot;
pub mod probe;
pub mod rowseed;
pub mod train;
