//! Position-embedding resampling to another token grid, as timm's `resample_abs_pos_embed` does
//! it (`F.interpolate(mode="bicubic", antialias=True, align_corners=False)`): separable
//! Keys-cubic weights with a = -0.5 (PyTorch's antialiased kernel is Pillow's), whose support
//! widens with the downscale factor, normalised per output position. Written here because the
//! image resizers work on pixels of at most four channels, and an embedding has hundreds.

/// Keys' cubic convolution kernel with a = -0.5 (Catmull-Rom).
fn cubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// For each of `outputs` positions: the first input index and the normalised weights.
fn taps(inputs: usize, outputs: usize) -> Vec<(usize, Vec<f64>)> {
    let scale = inputs as f64 / outputs as f64;
    let stretch = scale.max(1.0);
    let support = 2.0 * stretch;
    (0..outputs)
        .map(|i| {
            let centre = scale * (i as f64 + 0.5);
            let lo = ((centre - support + 0.5).floor().max(0.0)) as usize;
            let hi = ((centre + support + 0.5).floor() as usize).min(inputs);
            let w: Vec<f64> = (lo..hi)
                .map(|j| cubic((j as f64 - centre + 0.5) / stretch))
                .collect();
            let total: f64 = w.iter().sum();
            (lo, w.into_iter().map(|v| v / total).collect())
        })
        .collect()
}

/// Resample a `[old, old, width]` grid of vectors (row-major) to `[new, new, width]`.
pub fn resample_grid(values: &[f32], old: usize, new: usize, width: usize) -> Vec<f32> {
    assert_eq!(values.len(), old * old * width, "grid values");
    let t = taps(old, new);
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
        let out = resample_grid(&v, 3, 3, 2);
        for (a, b) in v.iter().zip(&out) {
            assert!((a - b).abs() < 1e-6, "{a} {b}");
        }
    }

    #[test]
    fn a_constant_grid_stays_constant() {
        let v = vec![1.25f32; 7 * 7 * 3];
        for new in [3, 5, 12] {
            let out = resample_grid(&v, 7, new, 3);
            assert!(out.iter().all(|x| (x - 1.25).abs() < 1e-6), "{new}");
        }
    }
}
