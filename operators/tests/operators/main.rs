//! The integration tests of ldae-operators, as one test binary.

mod augment;
mod decode;
mod jpeg;
mod noise;
mod noise_draws;
mod normalize;
mod patchify;
mod pca;
mod pca_stats;
mod plot;
mod unpatchify;
