//! ldae typed jobs: what every command runs, as data.
//!
//! A [`spec::Spec`] is a source, registered operators in order and a registered sink, read from
//! (and printed as) TOML; [`spec::run`] builds and runs it, one pass per epoch for a `train`
//! sink. The pipeline jobs ([`pca_fit::PcaFitJob`], [`encode::EncodeJob`],
//! [`features::FeaturesJob`], [`train::TrainJob`]) are serde structs whose `spec()` is exactly
//! the pipeline the command runs, so `ldae <command> --print-spec` followed by `ldae run` gives
//! the same outputs. The other jobs ([`probe::ProbeJob`], [`demo::DemoJob`], [`ablate`],
//! [`denoise_grid::DenoiseGridJob`]) run from their structs here too. The command line only
//! maps flags onto these structs and prints.

pub mod ablate;
pub mod demo;
pub mod denoise_grid;
pub mod encode;
pub mod experiment;
pub mod feature_table;
pub mod features;
pub mod pca_fit;
pub mod probe;
pub mod reference;
pub mod source;
pub mod spec;
pub mod tables;
pub mod train;

// The crates whose components register themselves; naming them here keeps their registrations
// linked into every program that runs specs.
pub use ldae_model as model;
pub use ldae_operators as operators;

/// `return Err(...)` with a formatted message about the data a job reads ([`Error::Data`]).
macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::Error::data(format!($($t)*)))
    };
}
pub(crate) use bail;

/// What was being done when a library call failed: the library's error becomes the source.
pub(crate) trait Context<T> {
    /// Wrap the error with `context`.
    fn context(self, context: &str) -> Result<T>;
    /// Wrap the error with the context `f` makes.
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T>;
}

impl<T, E: std::error::Error + Send + Sync + 'static> Context<T> for std::result::Result<T, E> {
    fn context(self, context: &str) -> Result<T> {
        self.map_err(|e| Error::external(context, e))
    }
    fn with_context<F: FnOnce() -> String>(self, f: F) -> Result<T> {
        self.map_err(|e| Error::external(f(), e))
    }
}

/// Errors of building or running a job.
pub type Error = ldae_pipeline::Error;
/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
