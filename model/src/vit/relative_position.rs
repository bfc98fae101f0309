//! BEiT's relative position bias: which entry of a block's `[entries, heads]` table each
//! (query, key) pair of a class token plus a `grid` x `grid` patch grid reads (timm's
//! `gen_relative_position_index`), and the table resized to another grid, as timm resizes it
//! when a model is made at another image size (linear interpolation over geometrically spaced
//! source offsets, BEiT's own recipe) or as transformers does under `interpolate_pos_encoding`
//! (PyTorch's bilinear interpolation). The last three entries (class to patch, patch to class,
//! class to class) are kept as they are.

use std::collections::BTreeMap;

use super::args::{RelPos, TableResize, VitArgs};

/// Entries of the table of a `grid` x `grid` patch grid: every offset, plus three for the
/// class token.
pub fn entries(grid: usize) -> usize {
    (2 * grid - 1) * (2 * grid - 1) + 3
}

/// The grid side a table of `entries` rows was made for (`None` if no square grid fits).
pub fn grid_of(entries: usize) -> Option<usize> {
    let side = ((entries.checked_sub(3)? as f64).sqrt().round()) as usize;
    let grid = side.div_ceil(2);
    (grid > 0 && self::entries(grid) == entries).then_some(grid)
}

/// `[N, N]` (N = 1 + grid²; the class token first, patches row-major): the table row each
/// query (row) and key (column) reads.
pub fn index(grid: usize) -> Vec<u32> {
    let n = grid * grid + 1;
    let last = entries(grid) as u32;
    let span = 2 * grid - 1;
    let mut out = vec![0u32; n * n];
    for q in 0..n {
        for k in 0..n {
            out[q * n + k] = match (q, k) {
                (0, 0) => last - 1,
                (0, _) => last - 3,
                (_, 0) => last - 2,
                _ => {
                    let (qy, qx) = ((q - 1) / grid, (q - 1) % grid);
                    let (ky, kx) = ((k - 1) / grid, (k - 1) % grid);
                    let dy = qy + grid - 1 - ky;
                    let dx = qx + grid - 1 - kx;
                    (dy * span + dx) as u32
                }
            };
        }
    }
    out
}

/// The table `[entries(old), heads]` (row-major) for a `new` grid: `[entries(new), heads]`.
pub fn resize(table: &[f32], old: usize, new: usize, heads: usize, how: TableResize) -> Vec<f32> {
    assert_eq!(table.len(), entries(old) * heads, "relative position table");
    if old == new {
        return table.to_vec();
    }
    let (src, dst) = (2 * old - 1, 2 * new - 1);
    let taps = match how {
        TableResize::Geometric => geometric_taps(src, dst),
        TableResize::Bilinear => bilinear_taps(src, dst),
    };
    let mut out = Vec::with_capacity(entries(new) * heads);
    // Separable: rows by `taps` then columns by `taps` (the grid is square).
    for y in 0..dst {
        for x in 0..dst {
            let (y0, y1, wy) = taps[y];
            let (x0, x1, wx) = taps[x];
            for h in 0..heads {
                let at = |r: usize, c: usize| f64::from(table[(r * src + c) * heads + h]);
                let top = at(y0, x0) * (1.0 - wx) + at(y0, x1) * wx;
                let bottom = at(y1, x0) * (1.0 - wx) + at(y1, x1) * wx;
                out.push((top * (1.0 - wy) + bottom * wy) as f32);
            }
        }
    }
    out.extend_from_slice(&table[src * src * heads..]);
    out
}

/// PyTorch's linear interpolation with `align_corners=False`: for each of `dst` outputs, the
/// two inputs and the second's weight.
fn bilinear_taps(src: usize, dst: usize) -> Vec<(usize, usize, f64)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|i| {
            let at = (scale * (i as f64 + 0.5) - 0.5).max(0.0);
            let lo = (at.floor() as usize).min(src - 1);
            let hi = (lo + 1).min(src - 1);
            (lo, hi, at - lo as f64)
        })
        .collect()
}

/// timm's (BEiT's) resize: the `src` source offsets placed at `0, ±1, ±(1 + q), ±(1 + q + q²),
/// ...` with `q` found by bisection so that they reach about `dst / 2`; the `dst` target
/// offsets `-dst/2..=dst/2` interpolated linearly between their neighbours (the end values
/// beyond the last).
fn geometric_taps(src: usize, dst: usize) -> Vec<(usize, usize, f64)> {
    let half = src / 2;
    let reach = (dst / 2) as f64;
    let progression = |q: f64| (1.0 - q.powi(half as i32)) / (1.0 - q);
    let (mut left, mut right, mut q) = (1.01f64, 1.5f64, 1.01f64);
    while right - left > 1e-6 {
        q = (left + right) / 2.0;
        if progression(q) > reach {
            right = q;
        } else {
            left = q;
        }
    }
    let mut offsets = Vec::with_capacity(half);
    let mut cur = 1.0;
    for i in 0..half {
        offsets.push(cur);
        cur += q.powi(i as i32 + 1);
    }
    // timm builds the points as float32 tensors.
    let points: Vec<f64> = offsets
        .iter()
        .rev()
        .map(|d| -d)
        .chain(std::iter::once(0.0))
        .chain(offsets.iter().copied())
        .map(|p| f64::from(p as f32))
        .collect();
    (0..dst)
        .map(|i| {
            let x = i as f64 - reach;
            // The first point not below x (torch.bucketize), kept inside the grid.
            let right = points.partition_point(|&p| p < x).min(src - 1);
            let left = right.saturating_sub(1);
            let (to_left, to_right) = ((x - points[left]).max(0.0), (points[right] - x).max(0.0));
            match to_left + to_right {
                0.0 => (left, right, 0.5),
                total => (left, right, to_left / total),
            }
        })
        .collect()
}

/// The names of the relative position tables of a model of `depth` blocks (timm's names).
pub(super) fn tables(depth: usize, rel: RelPos) -> Vec<String> {
    let mut names = Vec::new();
    if rel.shared {
        names.push("rel_pos_bias.relative_position_bias_table".to_string());
    }
    if rel.per_block {
        names.extend((0..depth).map(|i| format!("blocks.{i}.attn.relative_position_bias_table")));
    }
    names
}

/// The grid side the relative position table `name` (`[entries, heads]`) was made for.
pub(super) fn trained_grid(
    args: &VitArgs,
    shapes: &BTreeMap<String, Vec<usize>>,
    name: &str,
) -> std::result::Result<usize, String> {
    if !args.class_token || args.reg_tokens > 0 {
        return Err("a relative position bias needs a class token and no registers".into());
    }
    let shape = shapes
        .get(name)
        .ok_or_else(|| format!("tensor '{name}' is missing"))?;
    match shape.as_slice() {
        [entries, heads] if *heads == args.heads => grid_of(*entries).ok_or_else(|| {
            format!("tensor '{name}' has {entries} rows, not (2 g - 1)^2 + 3 for a square grid g")
        }),
        other => Err(format!(
            "tensor '{name}' has shape {other:?}, expected [entries, {}]",
            args.heads
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_reads_offsets_and_the_class_entries() {
        // timm's gen_relative_position_index((2, 2)), printed by PyTorch.
        let expected: [u32; 25] = [
            11, 9, 9, 9, 9, //
            10, 4, 3, 1, 0, //
            10, 5, 4, 2, 1, //
            10, 7, 6, 4, 3, //
            10, 8, 7, 5, 4,
        ];
        assert_eq!(index(2), expected);
        assert_eq!(grid_of(entries(14)), Some(14));
        // BEiT-B/16 at 224 px: 27 x 27 offsets and the three class entries.
        assert_eq!(grid_of(732), Some(14));
        assert_eq!(grid_of(733), None);
    }

    #[test]
    fn resizing_keeps_a_plane_and_the_class_entries() {
        // A bias linear in the offsets stays linear under both resizes inside the old range.
        let heads = 2;
        let old = 3;
        let src = 2 * old - 1;
        let mut table = Vec::new();
        for y in 0..src {
            for x in 0..src {
                for h in 0..heads {
                    table.push((y as f32 - 2.0) * 0.5 + (x as f32 - 2.0) * 0.25 + h as f32);
                }
            }
        }
        table.extend([7.0, 8.0, 9.0, 10.0, 11.0, 12.0]);
        for how in [TableResize::Bilinear, TableResize::Geometric] {
            let same = resize(&table, old, old, heads, how);
            assert_eq!(same, table);
            let bigger = resize(&table, old, 5, heads, how);
            assert_eq!(bigger.len(), entries(5) * heads);
            assert_eq!(
                &bigger[bigger.len() - 6..],
                &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]
            );
            // The centre offset (0, 0) keeps its value.
            let dst = 9;
            let centre = (dst / 2 * dst + dst / 2) * heads;
            assert!(
                (bigger[centre] - table[(2 * src + 2) * heads]).abs() < 1e-6,
                "{how:?}"
            );
        }
    }
}
