//! The integration tests of ldae-model, as one test binary.

mod denoiser;
mod optimizer;
mod probe;
