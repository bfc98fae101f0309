//! Rotary position embeddings (RoPE) as timm computes them at inference, as one table of `sin`
//! and `cos` per patch in timm's `rotate_half` layout, which the fused attention applies:
//!
//! - DINOv3's (`RotaryEmbeddingDinoV3`): each patch's row and column centres scaled to [-1, 1]
//!   by the grid's size (so it covers any grid without resampling), turned at periods
//!   `temperature^(2i / (hd / 2))`;
//! - timm's `RotaryEmbeddingCat` (Perception Encoder): patch indices plus an offset, rescaled
//!   to the reference grid, at inverse frequencies `temperature^(-i / (hd / 4))`. It rotates
//!   interleaved pairs `(x[2m], x[2m + 1])`; reordering each head's query and key rows so that
//!   pair `m` sits at `(m, m + hd / 2)` ([`half_layout_rows`]) turns that into the same
//!   rotation, and leaves every query-key product as it was.

use super::args::Rope;

/// The table `[grid * grid, 2 hd]` for a `grid` x `grid` patch grid (patches row by row): each
/// patch's `sin` then `cos`, each `hd` wide: its `hd / 2` angles repeated over the vector's two
/// halves.
pub fn table(rope: &Rope, grid: usize, head_dim: usize) -> Vec<f32> {
    let quarter = head_dim / 4;
    // Per axis: the coordinate of patch index i, and the factor of each of its `hd / 4` angles.
    let (coord, factors): (Box<dyn Fn(usize) -> f64>, Vec<f64>) = match *rope {
        Rope::Dinov3 { temperature } => (
            Box::new(move |i| 2.0 * ((i as f64 + 0.5) / grid as f64) - 1.0),
            (0..quarter)
                .map(|i| {
                    let period = temperature.powf(2.0 * i as f64 / (head_dim / 2) as f64);
                    2.0 * std::f64::consts::PI / period
                })
                .collect(),
        ),
        Rope::Cat {
            temperature,
            reference,
            offset,
            ..
        } => {
            let scale = reference.map_or(1.0, |r| r as f64 / grid as f64);
            (
                Box::new(move |i| (i as f64 + offset) * scale),
                (0..quarter)
                    .map(|i| 1.0 / temperature.powf(i as f64 / quarter as f64))
                    .collect(),
            )
        }
    };
    let column_first = matches!(rope, Rope::Cat { xy: true, .. });
    let mut table = Vec::with_capacity(grid * grid * 2 * head_dim);
    for row in 0..grid {
        for column in 0..grid {
            let axes = match column_first {
                true => [coord(column), coord(row)],
                false => [coord(row), coord(column)],
            };
            let angles: Vec<f64> = axes
                .iter()
                .flat_map(|&c| factors.iter().map(move |f| c * f))
                .collect();
            for f in [f64::sin, f64::cos] {
                for _half in 0..2 {
                    table.extend(angles.iter().map(|&a| f(a) as f32));
                }
            }
        }
    }
    table
}

/// Whether `rope` rotates interleaved pairs, so the query and key rows must be reordered by
/// [`half_layout_rows`].
pub fn interleaved(rope: &Rope) -> bool {
    matches!(rope, Rope::Cat { .. })
}

/// The rows of a `qkv` projection `[3W, ...]` in the order that turns interleaved rotation
/// pairs into `rotate_half` ones: within each query and key head, element `m` of the first half
/// comes from `2m` and element `m` of the second half from `2m + 1`; values stay in place.
pub fn half_layout_rows(width: usize, heads: usize) -> Vec<u32> {
    let hd = width / heads;
    let half = hd / 2;
    (0..3 * width)
        .map(|row| {
            let (part, within) = (row / width, row % width);
            let (head, j) = (within / hd, within % hd);
            let from = match (part, j < half) {
                (2, _) => j,
                (_, true) => 2 * j,
                (_, false) => 2 * (j - half) + 1,
            };
            (part * width + head * hd + from) as u32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// Worked by hand for a 2 x 2 grid, head width 8, temperature 100: periods 1 and 10,
    /// centres -1/2 and 1/2.
    #[test]
    fn dinov3_table_follows_its_coordinates() {
        let t = table(&Rope::Dinov3 { temperature: 100.0 }, 2, 8);
        assert_eq!(t.len(), 4 * 16);
        // Patch (row 0, column 1): angles [2pi(-1/2)/1, 2pi(-1/2)/10, 2pi(1/2)/1, 2pi(1/2)/10].
        check_patch(&t[16..32], &[-PI, -PI / 10.0, PI, PI / 10.0]);
    }

    /// Worked by hand for a 2 x 2 grid, head width 8, temperature 100, offset 1, reference 4
    /// (coordinates doubled), column first: frequencies 1 and 1/10.
    #[test]
    fn cat_table_follows_its_coordinates() {
        let rope = Rope::Cat {
            temperature: 100.0,
            reference: Some(4),
            offset: 1.0,
            xy: true,
        };
        let t = table(&rope, 2, 8);
        // Patch (row 0, column 1): column (1 + 1) * 2 = 4, row (0 + 1) * 2 = 2.
        check_patch(&t[16..32], &[4.0, 0.4, 2.0, 0.2]);
    }

    fn check_patch(patch: &[f32], angles: &[f64]) {
        for (j, a) in angles.iter().enumerate() {
            for half in 0..2 {
                assert!(
                    (patch[half * 4 + j] as f64 - a.sin()).abs() < 1e-6,
                    "sin {j}"
                );
                assert!(
                    (patch[8 + half * 4 + j] as f64 - a.cos()).abs() < 1e-6,
                    "cos {j}"
                );
            }
        }
    }

    #[test]
    fn half_layout_rows_pair_up_interleaved_elements() {
        // Width 8, 2 heads of 4: q head 0 [0, 2, 1, 3], q head 1 [4, 6, 5, 7], k the same + 8,
        // v unchanged.
        let rows = half_layout_rows(8, 2);
        assert_eq!(&rows[..8], &[0, 2, 1, 3, 4, 6, 5, 7]);
        assert_eq!(&rows[8..16], &[8, 10, 9, 11, 12, 14, 13, 15]);
        assert_eq!(&rows[16..], &(16..24).collect::<Vec<u32>>()[..]);
    }
}
