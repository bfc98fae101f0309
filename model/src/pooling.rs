//! How a network's tokens become a feature ([`Pooling`]), and spatial grid pooling: the token
//! grid (side `s`, row-major, as patchify lays it out) is cut into `k x k` cells and each
//! cell's tokens are averaged, giving `k * k` vectors per image (cells row-major). Cells follow
//! adaptive average pooling: cell `i` covers rows `floor(i s / k) .. ceil((i + 1) s / k)`, so
//! any `s >= k` works (at 224 px / patch 16, `s = 14` and `k = 4` give cells of 4 or 3 tokens a
//! side, overlapping by one where uneven).

/// How a network feature is reduced over the image's tokens.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Pooling {
    /// Average over tokens: `[width]` per image.
    #[default]
    Mean,
    /// Average over each cell of a 2 x 2 grid of the token grid: `[4 width]` per image.
    Grid2,
    /// Average over each cell of a 4 x 4 grid of the token grid: `[16 width]` per image.
    Grid4,
    /// Keep every token: `[N, width]` per image (a timm model's class and register tokens
    /// first).
    None,
    /// The class token, `[width]` (timm models with one; their `global_pool = "token"`).
    Token,
    /// The class token and the mean of the patch tokens side by side, `[2 width]`: DINOv2's
    /// linear-probe feature (what Dinov2ForImageClassification's classifier reads).
    #[serde(rename = "token_mean")]
    TokenMean,
    /// The model's attention pooling over the last block's tokens, `[width]` (timm models with
    /// `global_pool = "map"`: SigLIP).
    Map,
    /// A timm model's output, `model(x)`: its own pooling, then its head, `[num_classes]` (a
    /// CLIP tower's image embedding in the space it shares with text, a classifier's logits).
    Head,
}

impl Pooling {
    /// Cells a side of the spatial grid (`None` for mean and none).
    pub fn grid(self) -> Option<usize> {
        match self {
            Pooling::Grid2 => Some(2),
            Pooling::Grid4 => Some(4),
            Pooling::Mean
            | Pooling::None
            | Pooling::Token
            | Pooling::TokenMean
            | Pooling::Map
            | Pooling::Head => None,
        }
    }

    /// What this pooling needs that only a timm model has (`None` when an l-DAE network can
    /// pool this way too).
    pub fn needs_timm_model(self) -> Option<&'static str> {
        match self {
            Pooling::Token | Pooling::TokenMean => Some("a class token"),
            Pooling::Map => Some("attention pooling (a timm model's global_pool map)"),
            Pooling::Head => Some("a classifier head (a timm model's num_classes)"),
            Pooling::Mean | Pooling::Grid2 | Pooling::Grid4 | Pooling::None => None,
        }
    }

    /// The feature shape per image for `tokens` tokens of `width`.
    pub fn feature_shape(self, tokens: usize, width: usize) -> Vec<usize> {
        match (self, self.grid()) {
            (_, Some(k)) => vec![k * k * width],
            (Pooling::None, None) => vec![tokens, width],
            (Pooling::TokenMean, None) => vec![2 * width],
            _ => vec![width],
        }
    }
}

/// The token rows `[start, end)` of cell `i` of `k` over a side of `s` tokens.
fn cell_span(i: usize, k: usize, s: usize) -> (usize, usize) {
    (i * s / k, ((i + 1) * s).div_ceil(k))
}

/// The side of a square token grid of `tokens` tokens, or `None` when it is not square.
pub fn grid_side(tokens: usize) -> Option<usize> {
    let s = (tokens as f64).sqrt().round() as usize;
    (s * s == tokens).then_some(s)
}

/// Averages `x` (`images x tokens x width`, row-major; `tokens` a square grid of side at least
/// `k`) over the cells of a `k x k` grid: `images x (k * k * width)`, each cell's average in
/// turn. Sums run in a fixed order, so the result does not depend on batching or threads.
pub fn grid_mean(x: &[f32], tokens: usize, width: usize, k: usize) -> Vec<f32> {
    let s = grid_side(tokens).expect("a square token grid");
    assert!(k >= 1 && k <= s, "grid of {k} cells a side over {s} tokens");
    let images = x.len() / (tokens * width).max(1);
    let mut out = vec![0.0f32; images * k * k * width];
    for (image, y) in x
        .chunks_exact(tokens * width)
        .zip(out.chunks_exact_mut(k * k * width))
    {
        for (cell, o) in y.chunks_exact_mut(width).enumerate() {
            let (r0, r1) = cell_span(cell / k, k, s);
            let (c0, c1) = cell_span(cell % k, k, s);
            for r in r0..r1 {
                for c in c0..c1 {
                    let t = r * s + c;
                    for (a, &v) in o.iter_mut().zip(&image[t * width..(t + 1) * width]) {
                        *a += v;
                    }
                }
            }
            let inv = 1.0 / ((r1 - r0) * (c1 - c0)) as f32;
            o.iter_mut().for_each(|a| *a *= inv);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cover_the_grid_evenly_and_unevenly() {
        assert_eq!(cell_span(0, 2, 8), (0, 4));
        assert_eq!(cell_span(1, 2, 8), (4, 8));
        // 14 tokens in 4 cells: 0..4, 3..7, 7..11, 10..14 (as adaptive average pooling).
        let spans: Vec<_> = (0..4).map(|i| cell_span(i, 4, 14)).collect();
        assert_eq!(spans, vec![(0, 4), (3, 7), (7, 11), (10, 14)]);
    }

    #[test]
    fn grid_mean_averages_each_quadrant() {
        // One image, 4x4 tokens, width 2: token t holds (t, -t).
        let x: Vec<f32> = (0..16).flat_map(|t| [t as f32, -(t as f32)]).collect();
        let y = grid_mean(&x, 16, 2, 2);
        // Quadrant tokens: {0,1,4,5}, {2,3,6,7}, {8,9,12,13}, {10,11,14,15}.
        assert_eq!(y, vec![2.5, -2.5, 4.5, -4.5, 10.5, -10.5, 12.5, -12.5]);
        // k = 1 is the plain mean; k = side keeps every token.
        assert_eq!(grid_mean(&x, 16, 2, 1), vec![7.5, -7.5]);
        assert_eq!(grid_mean(&x, 16, 2, 4), x);
    }

    #[test]
    fn images_are_pooled_independently() {
        let a: Vec<f32> = (0..16).map(|t| t as f32).collect();
        let b: Vec<f32> = (0..16).map(|t| 100.0 - t as f32).collect();
        let both = grid_mean(&[a.clone(), b.clone()].concat(), 16, 1, 2);
        assert_eq!(both[..4], grid_mean(&a, 16, 1, 2)[..]);
        assert_eq!(both[4..], grid_mean(&b, 16, 1, 2)[..]);
    }

    #[test]
    fn side_of_square_grids_only() {
        assert_eq!(grid_side(64), Some(8));
        assert_eq!(grid_side(196), Some(14));
        assert_eq!(grid_side(50), None);
    }
}
