//! The integration tests of ldae-operators, as one test binary.

mod noise;
mod pca;
