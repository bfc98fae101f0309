//! The l-DAE loss: the error of the predicted clean patches measured in the full PCA basis,
//! weight 1 on the first d coordinates and 0.1 on the rest, each row weighted by
//! `1 / (1 + sigma^2)`, averaged over rows and tokens (the l-DAE recipe).

use candle_core::{DType, Device, Tensor, D};

use ldae_operators::pca::PcaModel;

type Result<T> = candle_core::Result<T>;

/// Weight of the coordinates beyond the latent dimension.
pub const TAIL_WEIGHT: f64 = 0.1;

/// The weighted PCA-space loss.
pub struct PcaLoss {
    /// `V^T`, `[D, D]`: columns are the principal directions.
    basis_t: Tensor,
    /// Per-coordinate weights, `[D]`.
    weights: Tensor,
}

impl PcaLoss {
    /// The loss for latent dimension `dim` of `model`.
    pub fn new(model: &PcaModel, dim: usize, dtype: DType, device: &Device) -> Result<Self> {
        let d = model.dim();
        let basis = Tensor::from_vec(model.components.clone(), (d, d), device)?;
        Self::from_basis(&basis, dim, dtype)
    }

    /// The loss for an orthonormal basis (rows = directions, `[D, D]`) and latent dimension
    /// `dim`.
    pub fn from_basis(basis: &Tensor, dim: usize, dtype: DType) -> Result<Self> {
        let d = basis.dim(0)?;
        let weights: Vec<f64> = (0..d)
            .map(|i| if i < dim { 1.0 } else { TAIL_WEIGHT })
            .collect();
        Ok(PcaLoss {
            basis_t: basis.t()?.contiguous()?.to_dtype(dtype)?,
            weights: Tensor::from_vec(weights, d, basis.device())?.to_dtype(dtype)?,
        })
    }

    /// The scalar loss: `clean` and `predicted` `[B, N, D]`, `sigma` `[B]`.
    pub fn forward(&self, clean: &Tensor, predicted: &Tensor, sigma: &Tensor) -> Result<Tensor> {
        self.per_row(clean, predicted, sigma)?.mean_all()
    }

    /// Each row's loss (already weighted by `1 / (1 + sigma^2)`), `[B]`; their mean is
    /// [`PcaLoss::forward`].
    pub fn per_row(&self, clean: &Tensor, predicted: &Tensor, sigma: &Tensor) -> Result<Tensor> {
        // One 2-D product (a batched one would also compute a batch of gradients for the
        // constant basis).
        let (b, n, d) = clean.dims3()?;
        let r = (clean - predicted)?
            .reshape((b * n, d))?
            .matmul(&self.basis_t)?;
        let per_token = r
            .sqr()?
            .broadcast_mul(&self.weights)?
            .sum(D::Minus1)?
            .reshape((b, n))?;
        let lambda = (sigma.sqr()? + 1.0)?.recip()?; // [B]
        per_token.mean(1)?.mul(&lambda)
    }
}
