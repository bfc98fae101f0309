//! The linear probe: a softmax classifier on standardised features, trained with Adam on
//! mini-batches (L2 penalty, linear warmup then cosine decay), its learning rate and weight
//! decay chosen from a grid on a validation split carved from the training rows.
//!
//! Ill-conditioned features (learned features often have directions of 1e-5 relative variance)
//! make first-order training slow to converge, so after standardisation the probe also tries
//! the features decorrelated (ZCA, with eigenvalues floored at 1e-4 of the mean) when there are
//! at most [`MAX_DECORRELATED`] of them and at least ten rows per feature: the grid is trained in
//! both coordinates and the validation split chooses (decorrelation speeds up learned features
//! a lot, but on raw pixels it amplifies noise directions and costs accuracy). The map is folded
//! into the final weights, so the classifier is still linear in the standardised features.
//!
//! The whole grid trains at once: the `G` candidate classifiers are the column blocks of one
//! `[F, G·C]` weight matrix, so each step is one matrix product for all of them and the grid
//! costs little more than a single fit. Gradients are the closed form of softmax cross-entropy,
//! `Xᵀ(P − Y)/B + λW`, checked against finite differences in the tests.

use candle_core::{DType, Device, Tensor, D};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use ldae_pipeline::{Error, Result};

use super::data::{FeatureMatrix, Standardizer};
use super::scores::{rank, Ranking, Scores};
use ldae_operators::pca::candle_err;

/// Settings of the linear probe.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct LinearConfig {
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per step (at most; small training sets use `rows / 32` so that every epoch still
    /// takes 32 steps).
    pub batch_size: usize,
    /// Linear warmup, in epochs.
    pub warmup_epochs: f64,
    /// Learning rates tried.
    pub learning_rates: Vec<f64>,
    /// L2 penalties tried (on the mean loss).
    pub weight_decays: Vec<f64>,
    /// Share of the training rows held out to choose the grid point.
    pub validation_fraction: f64,
    /// Seed of the validation split and the batch order.
    pub seed: u64,
}

impl Default for LinearConfig {
    fn default() -> Self {
        LinearConfig {
            epochs: 30,
            batch_size: 1024,
            warmup_epochs: 2.0,
            learning_rates: vec![1e-3, 3e-3, 1e-2],
            weight_decays: vec![1e-5, 1e-4, 1e-3],
            validation_fraction: 0.1,
            seed: 0,
        }
    }
}

/// Feature widths up to which the probe decorrelates (the eigendecomposition is `O(F^3)`).
pub const MAX_DECORRELATED: usize = 4096;

/// The ZCA map `V diag(1 / sqrt(max(λ, floor))) Vᵀ` of the covariance of standardised rows `x`
/// (estimated on at most 20k rows: it only preconditions the training).
fn decorrelation(x: &Tensor) -> Result<Tensor> {
    let (n, f) = x.dims2().map_err(candle_err)?;
    let rows = n.min(20_000);
    let cov = x
        .narrow(0, 0, rows)
        .and_then(|s| s.t()?.matmul(&s))
        .and_then(|c| c.affine(1.0 / rows as f64, 0.0))
        .and_then(|c| c.flatten_all()?.to_vec1::<f32>())
        .map_err(candle_err)?;
    let m = nalgebra::DMatrix::from_iterator(f, f, cov.iter().map(|&v| v as f64));
    let eig = nalgebra::SymmetricEigen::new(m);
    let mean = eig.eigenvalues.iter().sum::<f64>() / f as f64;
    let floor = (1e-4 * mean).max(1e-12);
    let scale = eig.eigenvalues.map(|l| 1.0 / l.max(floor).sqrt());
    let v = &eig.eigenvectors;
    let w = v * nalgebra::DMatrix::from_diagonal(&scale) * v.transpose();
    // nalgebra is column-major; the map is symmetric, so the order does not matter.
    let values: Vec<f32> = w.iter().map(|&v| v as f32).collect();
    Tensor::from_vec(values, (f, f), x.device()).map_err(candle_err)
}

/// One grid point and its validation top-1.
#[derive(Debug, Clone, Serialize)]
pub struct GridPoint {
    /// Learning rate.
    pub lr: f64,
    /// Weight decay.
    pub weight_decay: f64,
    /// Trained on decorrelated features.
    pub decorrelated: bool,
    /// Top-1 on the validation rows.
    pub validation_top1: f64,
}

/// A fitted linear probe.
pub struct LinearFit {
    /// Every grid point with its validation score (empty with a single point).
    pub grid: Vec<GridPoint>,
    /// The chosen learning rate.
    pub lr: f64,
    /// The chosen weight decay.
    pub weight_decay: f64,
    /// Whether the chosen classifier was trained on decorrelated features.
    pub decorrelated: bool,
    /// Training statistics applied to every input.
    pub standardizer: Standardizer,
    weights: Tensor,
    bias: Tensor,
}

impl LinearFit {
    /// Class scores (logits) of `m`'s rows, `rows × classes` row-major.
    pub fn logits(&self, m: &FeatureMatrix) -> Result<Vec<f32>> {
        let x = self.standardizer.apply(m, self.weights.device())?;
        x.matmul(&self.weights)
            .and_then(|l| l.broadcast_add(&self.bias))
            .and_then(|l| l.flatten_all())
            .and_then(|l| l.to_vec1())
            .map_err(candle_err)
    }

    /// The 5 best classes of each row of `m`, best first.
    pub fn predict(&self, m: &FeatureMatrix) -> Result<Ranking> {
        let classes = self.bias.dim(1).map_err(candle_err)?;
        Ok(rank(&self.logits(m)?, classes, 5))
    }
}

/// Whether the probe also tries `rows` training rows of `dim` features decorrelated (a second
/// copy of them): only with many rows per feature, and at most [`MAX_DECORRELATED`] features.
pub fn decorrelates(rows: usize, dim: usize) -> bool {
    dim <= MAX_DECORRELATED && rows >= 10 * dim
}

/// Fit the probe on `train` with `classes` classes: choose (lr, weight decay) on a validation
/// split, then train the chosen point on all training rows. `train` is taken, not borrowed:
/// its rows are standardised in place, so the probe holds the training features once (twice
/// where it also tries them decorrelated), not once more beside the caller's copy.
pub fn fit_linear(
    train: FeatureMatrix,
    classes: usize,
    config: &LinearConfig,
    device: &Device,
) -> Result<LinearFit> {
    if classes < 2 {
        return Err(Error::data(format!(
            "probe: need at least 2 classes in the training rows, found {classes}"
        )));
    }
    let standardizer = Standardizer::fit(&train)?;
    let points: Vec<(f64, f64)> = config
        .learning_rates
        .iter()
        .flat_map(|&lr| config.weight_decays.iter().map(move |&wd| (lr, wd)))
        .collect();
    if points.is_empty() {
        return Err(Error::invalid(
            "probe: empty learning-rate or weight-decay grid",
        ));
    }
    let FeatureMatrix {
        dim,
        values,
        labels,
    } = train;
    let rows = labels.len();
    let x_std = standardizer.apply_owned(values, dim, device)?;
    // Only with many rows per feature: with few, the data are nearly separable and training in
    // decorrelated coordinates finds a solution that generalises worse (checked on 4k rows of
    // 1024-d PCA latents: 56% against 86% without).
    let map = if decorrelates(rows, dim) {
        Some(decorrelation(&x_std)?)
    } else {
        None
    };
    // The coordinates tried: standardised, then (when eligible) decorrelated.
    let mut spaces = vec![(false, x_std.clone())];
    if let Some(m) = &map {
        spaces.push((true, x_std.matmul(m).map_err(candle_err)?));
    }
    let mut grid = Vec::new();
    let (lr, weight_decay, decorrelated) = if points.len() * spaces.len() == 1 {
        (points[0].0, points[0].1, false)
    } else {
        let mut order: Vec<usize> = (0..rows).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(
            config.seed ^ 0x7661_6c69_6461_7465,
        ));
        let n_val = ((rows as f64 * config.validation_fraction).round() as usize)
            .clamp(1, rows.saturating_sub(1).max(1));
        let (val_rows, fit_rows) = order.split_at(n_val);
        let labels = |rows: &[usize]| -> Vec<u32> { rows.iter().map(|&r| labels[r]).collect() };
        let (val_labels, fit_labels) = (labels(val_rows), labels(fit_rows));
        for (decorrelated, x) in &spaces {
            let pick = |rows: &[usize]| -> Result<Tensor> {
                let idx: Vec<u32> = rows.iter().map(|&r| r as u32).collect();
                let idx = Tensor::from_vec(idx, rows.len(), device).map_err(candle_err)?;
                x.index_select(&idx, 0).map_err(candle_err)
            };
            // The fit rows are read out of `x` batch by batch, not copied out of it first.
            let fit: Vec<u32> = fit_rows.iter().map(|&r| r as u32).collect();
            let (w, b) = train_grid(x, Some(&fit), &fit_labels, classes, &points, config)?;
            let logits = pick(val_rows)?
                .matmul(&w)
                .and_then(|l| l.broadcast_add(&b))
                .and_then(|l| l.reshape((val_rows.len(), points.len(), classes)))
                .map_err(candle_err)?;
            for (g, &(lr, weight_decay)) in points.iter().enumerate() {
                let block: Vec<f32> = logits
                    .narrow(1, g, 1)
                    .and_then(|l| l.flatten_all())
                    .and_then(|l| l.to_vec1())
                    .map_err(candle_err)?;
                let top1 = Scores::new(&rank(&block, classes, 1), &val_labels, classes).top1;
                grid.push(GridPoint {
                    lr,
                    weight_decay,
                    decorrelated: *decorrelated,
                    validation_top1: top1,
                });
            }
        }
        // Best validation score; ties go to the earlier point (smaller, not decorrelated).
        let best = grid
            .iter()
            .enumerate()
            .max_by(|(i, a), (j, b)| {
                a.validation_top1
                    .total_cmp(&b.validation_top1)
                    .then(j.cmp(i))
            })
            .map(|(i, _)| &grid[i])
            .ok_or_else(|| Error::internal("probe: empty grid"))?;
        (best.lr, best.weight_decay, best.decorrelated)
    };
    let x_chosen = &spaces[usize::from(decorrelated)].1;
    let (weights, bias) = train_grid(
        x_chosen,
        None,
        &labels,
        classes,
        &[(lr, weight_decay)],
        config,
    )?;
    // Fold the decorrelation into the weights: logits = standardised x · (map · W) + b.
    let weights = match (&map, decorrelated) {
        (Some(m), true) => m.matmul(&weights).map_err(candle_err)?,
        _ => weights,
    };
    Ok(LinearFit {
        grid,
        lr,
        weight_decay,
        decorrelated,
        standardizer,
        weights,
        bias,
    })
}

/// Learning-rate factor at `step` of `total`: linear warmup over `warmup` steps, then a
/// half-cycle cosine to zero.
fn schedule(step: usize, warmup: usize, total: usize) -> f64 {
    if step < warmup {
        (step + 1) as f64 / warmup as f64
    } else {
        let progress = (step - warmup) as f64 / (total - warmup).max(1) as f64;
        0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
    }
}

/// The gradient of the mean softmax cross-entropy of the `G` classifiers in `w` `[F, G·C]`,
/// `b` `[1, G·C]` on rows `x` `[B, F]` with one-hot targets `y` `[B, C]`, without the penalty.
pub fn cross_entropy_gradient(
    x: &Tensor,
    y: &Tensor,
    w: &Tensor,
    b: &Tensor,
    groups: usize,
) -> candle_core::Result<(Tensor, Tensor)> {
    let (rows, classes) = y.dims2()?;
    let logits = x.matmul(w)?.broadcast_add(b)?;
    let p = candle_nn::ops::softmax_last_dim(&logits.reshape((rows, groups, classes))?)?;
    let residual = p
        .broadcast_sub(&y.unsqueeze(1)?)?
        .reshape((rows, groups * classes))?
        .affine(1.0 / rows as f64, 0.0)?;
    let grad_w = x.t()?.matmul(&residual)?;
    let grad_b = residual.sum_keepdim(0)?;
    Ok((grad_w, grad_b))
}

/// The mean softmax cross-entropy of one classifier (for tests and reports).
pub fn cross_entropy(x: &Tensor, y: &Tensor, w: &Tensor, b: &Tensor) -> candle_core::Result<f64> {
    let logits = x.matmul(w)?.broadcast_add(b)?;
    let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
    let rows = y.dim(0)?;
    (logp * y)?
        .sum_all()?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()
        .map(|s| -s / rows as f64)
}

/// Train the classifiers of `points` (lr, weight decay) together on rows `x` `[n, F]` with
/// `labels`; their weights are the column blocks of the returned `[F, G·C]` matrix and
/// `[1, G·C]` bias.
fn train_grid(
    x: &Tensor,
    rows: Option<&[u32]>,
    labels: &[u32],
    classes: usize,
    points: &[(f64, f64)],
    config: &LinearConfig,
) -> Result<(Tensor, Tensor)> {
    let (all, f) = x.dims2().map_err(candle_err)?;
    let n = rows.map_or(all, |r| r.len());
    let g = points.len();
    let device = x.device();
    let mut onehot = vec![0f32; n * classes];
    for (i, &l) in labels.iter().enumerate() {
        if (l as usize) < classes {
            onehot[i * classes + l as usize] = 1.0;
        }
    }
    let y = Tensor::from_vec(onehot, (n, classes), device).map_err(candle_err)?;
    // Per-column learning rate and penalty: column block k belongs to grid point k.
    let column = |v: &dyn Fn(&(f64, f64)) -> f64| {
        let values: Vec<f32> = points
            .iter()
            .flat_map(|p| std::iter::repeat_n(v(p) as f32, classes))
            .collect();
        Tensor::from_vec(values, (1, g * classes), device)
    };
    let run = || -> candle_core::Result<(Tensor, Tensor)> {
        let lrs = column(&|p| p.0)?;
        let wds = column(&|p| p.1)?;
        let mut w = Tensor::zeros((f, g * classes), DType::F32, device)?;
        let mut b = Tensor::zeros((1, g * classes), DType::F32, device)?;
        let (mut mw, mut vw) = (w.zeros_like()?, w.zeros_like()?);
        let (mut mb, mut vb) = (b.zeros_like()?, b.zeros_like()?);
        let batch = config.batch_size.min((n / 32).max(32)).clamp(1, n.max(1));
        let steps_per_epoch = n.div_ceil(batch);
        let epochs = config.epochs.max(1);
        let total = steps_per_epoch * epochs;
        let warmup = (config.warmup_epochs * steps_per_epoch as f64) as usize;
        let (beta1, beta2, eps) = (0.9f64, 0.999f64, 1e-8f64);
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let mut order: Vec<u32> = (0..n as u32).collect();
        let mut step = 0usize;
        for _ in 0..epochs {
            order.shuffle(&mut rng);
            for chunk in order.chunks(batch) {
                let idx = Tensor::from_slice(chunk, chunk.len(), device)?;
                // The batch's rows of `x`: the chosen rows at these positions, or these rows.
                let x_idx = match rows {
                    Some(rows) => {
                        let picked: Vec<u32> = chunk.iter().map(|&i| rows[i as usize]).collect();
                        Tensor::from_vec(picked, chunk.len(), device)?
                    }
                    None => idx.clone(),
                };
                let (xb, yb) = (x.index_select(&x_idx, 0)?, y.index_select(&idx, 0)?);
                let (gw, gb) = cross_entropy_gradient(&xb, &yb, &w, &b, g)?;
                let gw = (gw + w.broadcast_mul(&wds)?)?;
                step += 1;
                let scale = schedule(step - 1, warmup, total);
                let c1 = 1.0 - beta1.powi(step as i32);
                let c2 = 1.0 - beta2.powi(step as i32);
                let adam = |p: &Tensor, m: &mut Tensor, v: &mut Tensor, grad: &Tensor| {
                    *m = ((&*m * beta1)? + (grad * (1.0 - beta1))?)?;
                    *v = ((&*v * beta2)? + (grad.sqr()? * (1.0 - beta2))?)?;
                    let update = ((&*m / c1)? / ((&*v / c2)?.sqrt()? + eps)?)?;
                    p - update.broadcast_mul(&lrs)?.affine(scale, 0.0)?
                };
                w = adam(&w, &mut mw, &mut vw, &gw)?;
                b = adam(&b, &mut mb, &mut vb, &gb)?;
            }
        }
        Ok((w, b))
    };
    run().map_err(candle_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let dev = Device::Cpu;
        let (rows, f, c) = (6, 4, 3);
        let xs: Vec<f64> = (0..rows * f)
            .map(|i| ((i * 37 % 11) as f64 - 5.0) / 4.0)
            .collect();
        let x = Tensor::from_vec(xs, (rows, f), &dev).unwrap();
        let mut ys = vec![0f64; rows * c];
        for r in 0..rows {
            ys[r * c + r % c] = 1.0;
        }
        let y = Tensor::from_vec(ys, (rows, c), &dev).unwrap();
        let ws: Vec<f64> = (0..f * c)
            .map(|i| ((i * 7 % 5) as f64 - 2.0) / 3.0)
            .collect();
        let w = Tensor::from_vec(ws.clone(), (f, c), &dev).unwrap();
        let b = Tensor::from_vec(vec![0.1f64, -0.2, 0.3], (1, c), &dev).unwrap();
        let (gw, _) = cross_entropy_gradient(&x, &y, &w, &b, 1).unwrap();
        let gw = gw.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        let h = 1e-6;
        for k in 0..f * c {
            let mut plus = ws.clone();
            plus[k] += h;
            let mut minus = ws.clone();
            minus[k] -= h;
            let lp =
                cross_entropy(&x, &y, &Tensor::from_vec(plus, (f, c), &dev).unwrap(), &b).unwrap();
            let lm =
                cross_entropy(&x, &y, &Tensor::from_vec(minus, (f, c), &dev).unwrap(), &b).unwrap();
            let fd = (lp - lm) / (2.0 * h);
            assert!(
                (fd - gw[k]).abs() < 1e-7,
                "weight {k}: fd {fd} vs {}",
                gw[k]
            );
        }
    }

    #[test]
    fn schedule_warms_up_then_decays_to_zero() {
        assert!((schedule(0, 10, 100) - 0.1).abs() < 1e-12);
        assert!((schedule(10, 10, 100) - 1.0).abs() < 1e-12);
        assert!(schedule(99, 10, 100) < 1e-3);
    }
}
