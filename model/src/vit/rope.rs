//! DINOv3's rotary position embedding, as timm's `RotaryEmbeddingDinoV3` computes it at
//! inference: each patch's row and column centres scaled to [-1, 1] by the grid's size (so the
//! embedding covers any grid without resampling), turned at periods
//! `temperature^(2i / (hd / 2))`, in timm's `rotate_half` layout.

/// The table `[grid * grid, 2 hd]` for a `grid` x `grid` patch grid (patches row by row): each
/// patch's `sin` then `cos`, each `hd` wide: the row's `hd / 4` angles, then the column's, the
/// `hd / 2` of them repeated over the vector's two halves.
pub fn dinov3_table(grid: usize, head_dim: usize, temperature: f64) -> Vec<f32> {
    let quarter = head_dim / 4;
    let periods: Vec<f64> = (0..quarter)
        .map(|i| temperature.powf(2.0 * i as f64 / (head_dim / 2) as f64))
        .collect();
    let centre = |i: usize| 2.0 * ((i as f64 + 0.5) / grid as f64) - 1.0;
    let mut table = Vec::with_capacity(grid * grid * 2 * head_dim);
    for row in 0..grid {
        for column in 0..grid {
            let angles: Vec<f64> = [centre(row), centre(column)]
                .iter()
                .flat_map(|&c| {
                    periods
                        .iter()
                        .map(move |p| 2.0 * std::f64::consts::PI * c / p)
                })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::f64::consts::PI;

    /// Worked by hand for a 2 x 2 grid, head width 8, temperature 100: periods 1 and 10,
    /// centres -1/2 and 1/2.
    #[test]
    fn table_follows_dinov3_coordinates() {
        let t = dinov3_table(2, 8, 100.0);
        assert_eq!(t.len(), 4 * 16);
        // Patch (row 0, column 1): angles [2pi(-1/2)/1, 2pi(-1/2)/10, 2pi(1/2)/1, 2pi(1/2)/10].
        let angles = [-PI, -PI / 10.0, PI, PI / 10.0];
        let patch = &t[16..32];
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
}
