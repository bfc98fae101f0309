//! Self-attention with a rotary position embedding (RoPE) on the queries and keys, as DINOv3's
//! ViTs run it: for inference (no backward pass). The `qkv` projection `[B, N, 3W]` is computed
//! into its own buffer, its queries and keys are turned there, row by row in parallel, and the
//! fused attention kernel runs on it, so the rotated queries and keys are never copied or
//! permuted into separate tensors.
//!
//! The layout is timm's `rotate_half`: a head's vector `x` of width `hd` becomes
//! `x * cos + [-x2, x1] * sin`, where `x1`, `x2` are its halves and the table row gives `sin`
//! and `cos` (each `hd` wide) of that token's position.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::attention::{self, Dims};
use super::linear;
use super::real::Real;
use super::storage::{cpu_fwd_by_type, input, Stored};
use crate::par::for_rows;

/// Attention over `heads` heads of `x` `[B, N, W]` with the `qkv` projection `w` `[3W, W]`,
/// `b` (the operation's inputs), the queries and keys of every token after the first `prefix`
/// rotated by `table` (`[N - prefix, 2 hd]`, `sin | cos`, flattened, in `x`'s type).
pub struct RotaryAttention {
    /// Attention heads.
    pub heads: usize,
    /// Tokens before the rotated ones (class and register tokens keep their vectors).
    pub prefix: usize,
    /// The rotation table, flattened.
    pub table: Tensor,
}

impl RotaryAttention {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let x = input::<T>(s[0].0, s[0].1, name)?;
        let w = input::<T>(s[1].0, s[1].1, name)?;
        let b = input::<T>(s[2].0, s[2].1, name)?;
        let (batch, tokens, width) = match s[0].1.shape().dims() {
            [b, n, w] if w % self.heads == 0 => (*b, *n, *w),
            dims => candle_core::bail!(
                "{name}: expected [B, N, W] with W divisible by {} heads, got {dims:?}",
                self.heads
            ),
        };
        if b.len() != 3 * width || w.len() != 3 * width * width {
            candle_core::bail!("{name}: qkv weights do not match width {width}");
        }
        let d = Dims {
            batch,
            tokens,
            heads: self.heads,
            head_dim: width / self.heads,
        };
        let table = self.table.to_vec1::<T>()?;
        if tokens < self.prefix || table.len() != (tokens - self.prefix) * 2 * d.head_dim {
            candle_core::bail!(
                "{name}: a table of {} values does not cover {} rotated tokens of head width {}",
                table.len(),
                tokens.saturating_sub(self.prefix),
                d.head_dim
            );
        }
        let mut qkv = linear::forward(x, w, b, width, true);
        rotate(&mut qkv, &table, d, self.prefix);
        let (out, _) = attention::forward(&qkv, d, false);
        Ok((T::storage(out), s[0].1.shape().clone()))
    }
}

impl CustomOp3 for RotaryAttention {
    fn name(&self) -> &'static str {
        "fused-rotary-attention"
    }
    cpu_fwd_by_type!(3);
}

/// Rotate, in place, the queries and keys (the first two thirds of each `[3W]` row of `qkv`)
/// of every token after the first `prefix` of each image.
fn rotate<T: Real>(qkv: &mut [T], table: &[T], d: Dims, prefix: usize) {
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
