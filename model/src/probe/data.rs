//! Feature rows in memory and their standardisation.

use candle_core::{Device, Tensor};
use ldae_pipeline::{Error, Result};

use ldae_operators::pca::candle_err;

/// Rows of `dim` features (row-major) with a class label per row.
#[derive(Debug, Clone, Default)]
pub struct FeatureMatrix {
    /// Features per row.
    pub dim: usize,
    /// `rows × dim` values, row-major.
    pub values: Vec<f32>,
    /// Class index per row.
    pub labels: Vec<u32>,
}

impl FeatureMatrix {
    /// An empty matrix of `dim` features per row.
    pub fn new(dim: usize) -> Self {
        FeatureMatrix {
            dim,
            ..Default::default()
        }
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    /// Append one row.
    pub fn push(&mut self, features: &[f32], label: u32) {
        debug_assert_eq!(features.len(), self.dim);
        self.values.extend_from_slice(features);
        self.labels.push(label);
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> FeatureMatrix {
        let mut out = FeatureMatrix::new(self.dim);
        for &i in indices {
            out.push(
                &self.values[i * self.dim..(i + 1) * self.dim],
                self.labels[i],
            );
        }
        out
    }

    /// One more than the largest label (0 for no rows).
    pub fn classes(&self) -> usize {
        self.labels.iter().max().map_or(0, |m| *m as usize + 1)
    }
}

/// Per-feature mean and standard deviation of the training rows; `apply` maps features to
/// `(x - mean) / sqrt(var + eps)` like BatchNorm without affine parameters (biased variance).
#[derive(Debug, Clone)]
pub struct Standardizer {
    /// Mean per feature.
    pub mean: Vec<f32>,
    /// `1 / sqrt(var + eps)` per feature.
    pub inv_std: Vec<f32>,
}

impl Standardizer {
    /// BatchNorm's epsilon.
    pub const EPS: f64 = 1e-5;

    /// Statistics of `train` (accumulated in f64, so the row count does not cost precision).
    pub fn fit(train: &FeatureMatrix) -> Result<Self> {
        let (n, d) = (train.rows(), train.dim);
        if n == 0 {
            return Err(Error::data("probe: no training rows"));
        }
        let mut sum = vec![0f64; d];
        let mut sq = vec![0f64; d];
        for row in train.values.chunks_exact(d) {
            for ((s, q), &v) in sum.iter_mut().zip(sq.iter_mut()).zip(row) {
                let v = v as f64;
                *s += v;
                *q += v * v;
            }
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let inv_std = sq
            .iter()
            .zip(&mean)
            .map(|(q, m)| (1.0 / ((q / n as f64 - m * m).max(0.0) + Self::EPS).sqrt()) as f32)
            .collect();
        Ok(Standardizer {
            mean: mean.into_iter().map(|m| m as f32).collect(),
            inv_std,
        })
    }

    /// The standardised rows of `m` as a `[rows, dim]` tensor on `device`.
    pub fn apply(&self, m: &FeatureMatrix, device: &Device) -> Result<Tensor> {
        self.apply_owned(m.values.clone(), m.dim, device)
    }

    /// [`Standardizer::apply`] to rows of `dim` features that the caller gives up: they are
    /// standardised in place and become the tensor (on the CPU without a copy), so that a
    /// probe of a large training table holds it once.
    pub fn apply_owned(&self, mut values: Vec<f32>, dim: usize, device: &Device) -> Result<Tensor> {
        self.standardize(&mut values, dim);
        let rows = values.len() / dim.max(1);
        Tensor::from_vec(values, (rows, dim), device).map_err(candle_err)
    }

    /// Standardise rows of `dim` features in place.
    pub fn standardize(&self, values: &mut [f32], dim: usize) {
        for row in values.chunks_exact_mut(dim) {
            for ((v, mean), s) in row.iter_mut().zip(&self.mean).zip(&self.inv_std) {
                *v = (*v - mean) * s;
            }
        }
    }
}
