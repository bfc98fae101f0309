//! The rotary position embedding (RoPE) on the queries and keys of a `qkv` projection
//! `[B, N, 3W]`, in place, row by row in parallel (see `positioned` for the attention it
//! serves).
//!
//! The layout is timm's `rotate_half`: a head's vector `x` of width `hd` becomes
//! `x * cos + [-x2, x1] * sin`, where `x1`, `x2` are its halves and the table row gives `sin`
//! and `cos` (each `hd` wide) of that token's position.

use super::attention::Dims;
use super::real::Real;
use crate::par::for_rows;

/// Rotate, in place, the queries and keys (the first two thirds of each `[3W]` row of `qkv`)
/// of every token after the first `prefix` of each image.
pub(super) fn rotate<T: Real>(qkv: &mut [T], table: &[T], d: Dims, prefix: usize) {
    let (hd, w) = (d.head_dim, d.heads * d.head_dim);
    let half = hd / 2;
    for_rows(qkv, 3 * w, |first, rows| {
        for (i, row) in rows.chunks_exact_mut(3 * w).enumerate() {
            let token = (first + i) % d.tokens;
            if token < prefix {
                continue;
            }
            let at = &table[(token - prefix) * 2 * hd..][..2 * hd];
            let (sin, cos) = at.split_at(hd);
            // Queries then keys, head by head.
            for x in row[..2 * w].chunks_exact_mut(hd) {
                let (x1, x2) = x.split_at_mut(half);
                for j in 0..half {
                    let (a, b) = (x1[j], x2[j]);
                    x1[j] = a * cos[j] - b * sin[j];
                    x2[j] = b * cos[half + j] + a * sin[half + j];
                }
            }
        }
    });
}
