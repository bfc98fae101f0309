//! Self-attention with position information inside it, for inference (no backward pass): a
//! rotary embedding on the queries and keys (DINOv3, EVA02, Perception Encoder), an additive
//! bias on the scores (BEiT's relative position bias), or both. The `qkv` projection
//! `[B, N, 3W]` is computed into its own buffer, its queries and keys are turned there, and
//! the fused attention kernel runs on it, adding the bias to each head's scores before the
//! softmax: the rotated queries and keys and the `[H, N, N]` bias are never materialised.

use candle_core::{CpuStorage, CustomOp3, Layout, Result, Shape, Tensor};

use super::attention::{self, Dims, ScoreBias};
use super::linear;
use super::rotary;
use super::storage::{cpu_fwd_by_type, input, Stored};

/// A rotary position embedding on the queries and keys of every token after the first
/// `prefix`: `table` `[N - prefix, 2 hd]` holds each position's `sin` then `cos` in timm's
/// `rotate_half` layout.
#[derive(Clone, Debug)]
pub struct Rotary {
    /// The rotation table.
    pub table: Tensor,
    /// Tokens before the rotated ones (class and register tokens keep their vectors).
    pub prefix: usize,
}

/// An additive bias on every head's attention scores, looked up per (query, key) pair:
/// head `h`'s score of query `i` and key `j` gains `table[h, index[i, j]]`.
#[derive(Clone, Debug)]
pub struct RelativeBias {
    /// `[H, entries]`, in the model's type.
    pub table: Tensor,
    /// `[N, N]`, u32: the entry each (query, key) pair reads.
    pub index: Tensor,
}

/// Where the positions enter the attention (either may be absent).
#[derive(Clone, Debug, Default)]
pub struct Positions {
    /// A rotary embedding on the queries and keys.
    pub rotary: Option<Rotary>,
    /// A bias on the scores.
    pub bias: Option<RelativeBias>,
}

/// Attention over `heads` heads of `x` `[B, N, W]` with the `qkv` projection `w` `[3W, W]`,
/// `b` (the operation's inputs), with `positions`.
pub struct PositionedAttention<'a> {
    /// Attention heads.
    pub heads: usize,
    /// The rotary embedding and the score bias.
    pub positions: &'a Positions,
}

impl PositionedAttention<'_> {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let (mut qkv, d) = project_qkv::<T>(name, s, self.heads)?;
        let tokens = d.tokens;
        if let Some(r) = &self.positions.rotary {
            let table = r.table.to_dtype(T::DTYPE)?.flatten_all()?.to_vec1::<T>()?;
            if tokens < r.prefix || table.len() != (tokens - r.prefix) * 2 * d.head_dim {
                candle_core::bail!(
                    "{name}: a table of {} values does not cover {} rotated tokens of head \
                     width {}",
                    table.len(),
                    tokens.saturating_sub(r.prefix),
                    d.head_dim
                );
            }
            rotary::rotate(&mut qkv, &table, d, r.prefix);
        }
        let bias = match &self.positions.bias {
            Some(bias) => {
                let table = bias
                    .table
                    .to_dtype(T::DTYPE)?
                    .flatten_all()?
                    .to_vec1::<T>()?;
                let index = bias
                    .index
                    .to_dtype(candle_core::DType::U32)?
                    .flatten_all()?
                    .to_vec1::<u32>()?;
                let entries = table.len() / d.heads;
                if table.len() != entries * d.heads
                    || index.len() != tokens * tokens
                    || index.iter().any(|&i| i as usize >= entries)
                {
                    candle_core::bail!(
                        "{name}: a bias table of {} values and an index of {} do not fit {} \
                         heads and {tokens} tokens",
                        table.len(),
                        index.len(),
                        d.heads
                    );
                }
                Some((table, index))
            }
            None => None,
        };
        let bias = bias
            .as_ref()
            .map(|(table, index)| ScoreBias { table, index });
        let (out, _) = attention::forward(&qkv, d, false, bias);
        Ok((T::storage(out), s[0].1.shape().clone()))
    }
}

/// The `qkv` projection `[B, N, 3W]` of an attention operation's inputs `x` `[B, N, W]`, `w`
/// `[3W, W]` and `b` `[3W]`, and the call's shapes, checked (the plain attention's and the
/// positioned one's).
pub(super) fn project_qkv<T: Stored>(
    name: &str,
    s: [(&CpuStorage, &Layout); 3],
    heads: usize,
) -> Result<(Vec<T>, Dims)> {
    let x = input::<T>(s[0].0, s[0].1, name)?;
    let w = input::<T>(s[1].0, s[1].1, name)?;
    let b = input::<T>(s[2].0, s[2].1, name)?;
    let (batch, tokens, width) = match s[0].1.shape().dims() {
        [b, n, w] if heads > 0 && w % heads == 0 => (*b, *n, *w),
        dims => candle_core::bail!(
            "{name}: expected [B, N, W] with W divisible by {heads} heads, got {dims:?}"
        ),
    };
    if b.len() != 3 * width || w.len() != 3 * width * width {
        candle_core::bail!("{name}: qkv weights do not match width {width}");
    }
    let d = Dims {
        batch,
        tokens,
        heads,
        head_dim: width / heads,
    };
    Ok((linear::forward(x, w, b, width, true), d))
}

impl CustomOp3 for PositionedAttention<'_> {
    fn name(&self) -> &'static str {
        "fused-positioned-attention"
    }
    cpu_fwd_by_type!(3);
}
