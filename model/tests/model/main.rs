//! The integration tests of ldae-model, as one test binary.

mod backprop;
mod denoiser;
mod optimizer;
mod probe;
mod timm_names;
