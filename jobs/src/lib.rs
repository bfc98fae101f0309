//! ldae typed jobs: what every command runs, as data.
//!
//! A [`spec::Spec`] is a source, registered operators in order and a registered sink, read from
//! (and printed as) TOML; [`spec::run`] builds and runs it. The jobs ([`pca_fit::PcaFitJob`],
//! [`encode::EncodeJob`], [`features::FeaturesJob`]) are serde structs whose `spec()` is exactly
//! the pipeline the command runs, so `ldae <command> --print-spec` followed by `ldae run` gives
//! the same outputs. The command line only maps flags onto these structs and prints.

pub mod encode;
pub mod features;
pub mod pca_fit;
pub mod reference;
pub mod source;
pub mod spec;
pub mod train;

// The crates whose components register themselves; naming them here keeps their registrations
// linked into every program that runs specs.
pub use ldae_model as model;
pub use ldae_operators as operators;

/// Errors of building or running a job.
pub type Error = ldae_pipeline::Error;
/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
