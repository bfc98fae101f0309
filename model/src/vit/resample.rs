//! Position-embedding resampling to another token grid, as PyTorch's `F.interpolate(mode=
//! "bicubic", align_corners=False)` does it: with `antialias=True`, as timm's
//! `resample_abs_pos_embed` calls it (separable Keys-cubic weights with a = -0.5, PyTorch's
//! antialiased kernel being Pillow's, whose support widens with the downscale factor,
//! normalised per output position); without, as transformers' `interpolate_pos_encoding` calls
//! it (four taps of the cubic with a = -0.75 at any scale, indices clamped at the edges).
//! Written here because the image resizers work on pixels of at most four channels, and an
//! embedding has hundreds.

/// Which of PyTorch's bicubic interpolations resamples the grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resample {
    /// `antialias=True` (timm).
    #[default]
    Antialiased,
    /// `antialias=False` (transformers).
    Plain,
}

/// Keys' cubic convolution kernel with parameter `a`.
fn cubic(x: f64, a: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 {
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * a
    } else {
        0.0
    }
}

/// For each of `outputs` positions: the first input index and the weights of the inputs from
/// there on.
fn taps(inputs: usize, outputs: usize, kind: Resample) -> Vec<(usize, Vec<f64>)> {
    let scale = inputs as f64 / outputs as f64;
    match kind {
        Resample::Antialiased => {
            let stretch = scale.max(1.0);
            let support = 2.0 * stretch;
            (0..outputs)
                .map(|i| {
                    let centre = scale * (i as f64 + 0.5);
                    let lo = ((centre - support + 0.5).floor().max(0.0)) as usize;
                    let hi = ((centre + support + 0.5).floor() as usize).min(inputs);
                    let w: Vec<f64> = (lo..hi)
                        .map(|j| cubic((j as f64 - centre + 0.5) / stretch, -0.5))
                        .collect();
                    let total: f64 = w.iter().sum();
                    (lo, w.into_iter().map(|v| v / total).collect())
                })
                .collect()
        }
        Resample::Plain => (0..outputs)
            .map(|i| {
                // upsample_bicubic2d: the source coordinate is not clamped, the four indices
                // around it are.
                let source = scale * (i as f64 + 0.5) - 0.5;
                let base = source.floor();
                let t = source - base;
                let index = |k: i64| (base as i64 + k).clamp(0, inputs as i64 - 1) as usize;
                let (lo, hi) = (index(-1), index(2));
                let mut w = vec![0.0; hi - lo + 1];
                for (k, d) in [(-1i64, t + 1.0), (0, t), (1, 1.0 - t), (2, 2.0 - t)] {
                    w[index(k) - lo] += cubic(d, -0.75);
                }
                (lo, w)
            })
            .collect(),
    }
}

/// Resample a `[old, old, width]` grid of vectors (row-major) to `[new, new, width]`.
pub fn resample_grid(
    values: &[f32],
    old: usize,
    new: usize,
    width: usize,
    kind: Resample,
) -> Vec<f32> {
    assert_eq!(values.len(), old * old * width, "grid values");
    let t = taps(old, new, kind);
    // Along rows of the grid first (x), then columns (y), in f64.
    let mut across = vec![0f64; old * new * width];
    for y in 0..old {
        for (x, (lo, w)) in t.iter().enumerate() {
            let out = &mut across[(y * new + x) * width..][..width];
            for (k, wk) in w.iter().enumerate() {
                let src = &values[(y * old + lo + k) * width..][..width];
                for (o, s) in out.iter_mut().zip(src) {
                    *o += wk * *s as f64;
                }
            }
        }
    }
    let mut out = vec![0f32; new * new * width];
    for (y, (lo, w)) in t.iter().enumerate() {
        for x in 0..new {
            let dst = &mut out[(y * new + x) * width..][..width];
            for (c, d) in dst.iter_mut().enumerate() {
                let v: f64 = w
                    .iter()
                    .enumerate()
                    .map(|(k, wk)| wk * across[((lo + k) * new + x) * width + c])
                    .sum();
                *d = v as f32;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_is_the_identity() {
        let v: Vec<f32> = (0..3 * 3 * 2).map(|i| i as f32 * 0.5 - 3.0).collect();
        for kind in [Resample::Antialiased, Resample::Plain] {
            let out = resample_grid(&v, 3, 3, 2, kind);
            for (a, b) in v.iter().zip(&out) {
                assert!((a - b).abs() < 1e-6, "{a} {b}");
            }
        }
    }

    #[test]
    fn a_constant_grid_stays_constant() {
        let v = vec![1.25f32; 7 * 7 * 3];
        for new in [3, 5, 12] {
            for kind in [Resample::Antialiased, Resample::Plain] {
                let out = resample_grid(&v, 7, new, 3, kind);
                assert!(out.iter().all(|x| (x - 1.25).abs() < 1e-6), "{new}");
            }
        }
    }

    /// transformers' resampling against PyTorch's `upsample_bicubic2d` worked by hand for a
    /// 1-D ramp halved (4 -> 2): source coordinates 0.5 and 2.5, t = 0.5, weights
    /// (-0.09375, 0.59375, 0.59375, -0.09375) with the edge indices clamped.
    #[test]
    fn plain_bicubic_follows_pytorch() {
        let ramp = [0.0f64, 1.0, 2.0, 3.0];
        let w = [-0.09375, 0.59375, 0.59375, -0.09375];
        // Output 0: indices -1, 0, 1, 2 -> 0, 0, 1, 2. Output 1: 1, 2, 3, 4 -> 1, 2, 3, 3.
        let expect = [
            w[0] * ramp[0] + w[1] * ramp[0] + w[2] * ramp[1] + w[3] * ramp[2],
            w[0] * ramp[1] + w[1] * ramp[2] + w[2] * ramp[3] + w[3] * ramp[3],
        ];
        let t = taps(4, 2, Resample::Plain);
        for (i, (lo, weights)) in t.iter().enumerate() {
            let got: f64 = weights
                .iter()
                .enumerate()
                .map(|(k, wk)| wk * ramp[lo + k])
                .sum();
            assert!((got - expect[i]).abs() < 1e-12, "{i}: {got} {}", expect[i]);
        }
        // And it is another function than the antialiased one at this scale.
        let aa = taps(4, 2, Resample::Antialiased);
        let first: f64 = aa[0]
            .1
            .iter()
            .enumerate()
            .map(|(k, w)| w * ramp[aa[0].0 + k])
            .sum();
        assert!((first - expect[0]).abs() > 1e-3, "{first}");
    }
}
