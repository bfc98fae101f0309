//! Offline evaluation of feature vectors: a linear softmax probe and a cosine kNN classifier.
//!
//! Both read a [`FeatureMatrix`] (rows of features with their class labels) held in memory:
//! `n × F × 4` bytes, e.g. 23 MB for 45k rows of 128 features. Features are standardised with
//! the training rows' statistics (BatchNorm without affine parameters) before either classifier
//! sees them.

pub mod data;
pub mod knn;
pub mod linear;
pub mod scores;

pub use data::{FeatureMatrix, Standardizer};
pub use knn::{knn_classify, KnnConfig};
pub use linear::{fit_linear, LinearConfig, LinearFit};
pub use scores::{Ranking, Scores};
