//! Learning-rate schedule: linear warmup, then a half-cycle cosine to zero (the recipe's and
//! MAE's schedule).

/// The learning rate at optimisation step `step` (0-based) of `total` steps, `warmup` of them
/// warming up linearly to `base`.
///
/// ```
/// use ldae_model::train::learning_rate;
/// assert_eq!(learning_rate(0, 100, 10, 1.0), 0.1);
/// assert_eq!(learning_rate(9, 100, 10, 1.0), 1.0);
/// assert!((learning_rate(55, 100, 10, 1.0) - 0.5).abs() < 0.02);
/// assert!(learning_rate(99, 100, 10, 1.0) < 0.001);
/// ```
pub fn learning_rate(step: u64, total: u64, warmup: u64, base: f64) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup).max(1) as f64;
    let progress = ((step - warmup) as f64 / span).min(1.0);
    base * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}
