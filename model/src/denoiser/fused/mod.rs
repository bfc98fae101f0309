//! The denoiser's building blocks as fused CPU kernels with backward passes, each falling back
//! to candle's composite operations on other devices (and for bf16 products).
//!
//! Why: candle's autograd runs every elementwise step as its own pass over a fresh tensor, its
//! backward pass adds each gradient onto a zero tensor, reductions over the token axis (the
//! gradients of broadcast modulation) take a slow strided path, and candle-nn's linear layer
//! multiplies a 3-D input by a weight broadcast over the batch. A training step spent four
//! times as long outside matrix products as in them. Here each block is a handful of nodes:
//! linear (bias folded into the product), modulated layer norm, attention, GELU, gated
//! residual; each computes its rows in one pass, in parallel on candle's worker pool.
//!
//! Every kernel runs in f32 and f64; the tests compare the f64 gradients with finite
//! differences and the f32 outputs with the composite forms.

mod attention;
#[cfg(feature = "cuda")]
mod cuda_kernels;
mod gate;
mod linear;
mod ops;
mod positioned;
mod quick_gelu;
mod real;
mod rotary;
mod rows;
mod storage;
mod with_grad;

use candle_core::{DType, Result, Tensor, D};

pub use positioned::{Positions, RelativeBias, Rotary};

/// Whether the fused kernels serve `x` (CPU, f32 or f64).
fn fused(x: &Tensor) -> bool {
    x.device().is_cpu() && matches!(x.dtype(), DType::F32 | DType::F64)
}

/// `a @ b` in `compute`, the result back in `a`'s type.
fn product(a: &Tensor, b: &Tensor, compute: DType) -> Result<Tensor> {
    if a.dtype() == compute {
        return a.matmul(b);
    }
    a.to_dtype(compute)?
        .matmul(&b.to_dtype(compute)?)?
        .to_dtype(a.dtype())
}

/// `x W^T + b` over the last dimension of `x`, the product in `compute`.
pub fn linear(x: &Tensor, w: &Tensor, b: &Tensor, compute: DType) -> Result<Tensor> {
    if fused(x) && compute == x.dtype() {
        // One node, whatever the rank of `x`: no reshape nodes, whose gradients candle would
        // add onto zero tensors of the activations' size.
        return x.contiguous()?.apply_op3(w, b, ops::Linear::default());
    }
    // Leading dimensions flattened: one 2-D product (candle-nn broadcasts the weight over the
    // batch instead, which makes the weight gradient a batch of small products).
    let dims = x.dims().to_vec();
    let inputs = dims[dims.len() - 1];
    let x2 = x.reshape((x.elem_count() / inputs.max(1), inputs))?;
    let y = product(&x2, &w.t()?, compute)?.broadcast_add(b)?;
    let mut out = dims;
    let last = out.len() - 1;
    out[last] = w.dim(0)?;
    y.reshape(out)
}

/// `gelu(x W^T + b)`, as [`linear`] then [`gelu`] but one node on the CPU.
pub fn linear_gelu(x: &Tensor, w: &Tensor, b: &Tensor, compute: DType) -> Result<Tensor> {
    if fused(x) && compute == x.dtype() {
        let keep = x.track_op() || w.track_op() || b.track_op();
        return x
            .contiguous()?
            .apply_op3(w, b, ops::Linear::with_gelu(keep));
    }
    gelu(&linear(x, w, b, compute)?)
}

/// Layer norm over the last dimension (no affine parameters), then `* (1 + scale) + shift`
/// with `[B, W]` shift and scale broadcast over the tokens of `x` `[B, N, W]`.
pub fn modulated_norm(x: &Tensor, shift: &Tensor, scale: &Tensor, eps: f64) -> Result<Tensor> {
    if fused(x) {
        let op = ops::ModulatedNorm { eps, centred: true };
        return x
            .contiguous()?
            .apply_op3(&shift.contiguous()?, &scale.contiguous()?, op);
    }
    modulated_norm_elsewhere(x, shift, scale, eps)
}

/// [`modulated_norm`] with an RMS norm (`x / sqrt(mean(x^2) + eps)`, not centred; AIMv2's),
/// inference only. On the CPU the same row kernel, on ldae's thread pool; elsewhere
/// candle-nn's kernel, then the modulation.
pub fn modulated_rms_norm(x: &Tensor, shift: &Tensor, scale: &Tensor, eps: f64) -> Result<Tensor> {
    if fused(x) {
        let op = ops::ModulatedNorm {
            eps,
            centred: false,
        };
        return x
            .contiguous()?
            .apply_op3(&shift.contiguous()?, &scale.contiguous()?, op);
    }
    modulated_rms_norm_elsewhere(x, shift, scale, eps)
}

/// [`modulated_rms_norm`] on other devices: candle-nn's RMS norm kernel, then the modulation.
fn modulated_rms_norm_elsewhere(
    x: &Tensor,
    shift: &Tensor,
    scale: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    let ones = Tensor::ones(x.dim(D::Minus1)?, x.dtype(), x.device())?;
    candle_nn::ops::rms_norm(&x.contiguous()?, &ones, eps as f32)?
        .broadcast_mul(&(scale.unsqueeze(1)? + 1.0)?)?
        .broadcast_add(&shift.unsqueeze(1)?)
}

/// [`modulated_norm`] on other devices: candle-nn's layer norm kernel, then the modulation.
fn modulated_norm_elsewhere(
    x: &Tensor,
    shift: &Tensor,
    scale: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    with_grad::layer_norm(x, eps)?
        .broadcast_mul(&(scale.unsqueeze(1)? + 1.0)?)?
        .broadcast_add(&shift.unsqueeze(1)?)
}

/// `x + h * gate`, `x` and `h` `[B, N, W]`, `gate` `[B, W]` broadcast over tokens.
pub fn gated_residual(x: &Tensor, h: &Tensor, gate: &Tensor) -> Result<Tensor> {
    if fused(x) {
        return x.contiguous()?.apply_op3(
            &h.contiguous()?,
            &gate.contiguous()?,
            ops::GatedResidual,
        );
    }
    x + h.broadcast_mul(&gate.unsqueeze(1)?)?
}

/// `x` `[B, N, W]` plus a constant position table `[1, N, W]`, broadcast over the batch.
pub fn add_position(x: &Tensor, position: &Tensor) -> Result<Tensor> {
    if fused(x) && !position.track_op() && position.dtype() == x.dtype() {
        return x
            .contiguous()?
            .apply_op2(&position.contiguous()?, ops::AddPosition);
    }
    x.broadcast_add(position)
}

/// The mean over the tokens of `x` `[B, N, W]`, `[B, W]`.
pub fn mean_tokens(x: &Tensor) -> Result<Tensor> {
    if fused(x) {
        return x.contiguous()?.apply_op1(ops::MeanTokens);
    }
    x.mean(1)
}

/// Exact (erf) GELU, as PyTorch's `nn.GELU()`.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    if fused(x) {
        return x.contiguous()?.apply_op1(ops::Gelu);
    }
    with_grad::gelu(x)
}

/// QuickGELU, `x * sigmoid(1.702 x)` (OpenAI CLIP's). For inference: no gradient flows
/// through it on the CPU.
pub fn quick_gelu(x: &Tensor) -> Result<Tensor> {
    if fused(x) {
        return x.contiguous()?.apply_op1_no_bwd(&quick_gelu::QuickGelu);
    }
    x * candle_nn::ops::sigmoid(&(x * 1.702)?)?
}

/// SwiGLU's gate: `silu(gate) * value` of `y` `[.., 2H]` (gate first), `[.., H]`. For
/// inference: no gradient flows through it on the CPU.
pub fn silu_gate(y: &Tensor) -> Result<Tensor> {
    if fused(y) {
        return y.contiguous()?.apply_op1_no_bwd(&gate::SiluGate);
    }
    let hidden = y.dim(candle_core::D::Minus1)? / 2;
    let gate = y.narrow(candle_core::D::Minus1, 0, hidden)?;
    gate.silu()? * y.narrow(candle_core::D::Minus1, hidden, hidden)?
}

/// Multi-head self-attention of `x` `[B, N, W]` with the `qkv` projection `w` `[3W, W]`, `b`
/// (q | k | v, each split into `heads`), to `[B, N, W]` (before the output projection); the
/// products in `compute`, the softmax in `x`'s type.
pub fn attention(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    heads: usize,
    compute: DType,
) -> Result<Tensor> {
    if fused(x) && compute == x.dtype() {
        let keep = x.track_op() || w.track_op() || b.track_op();
        return x
            .contiguous()?
            .apply_op3(w, b, ops::Attention::new(heads, keep));
    }
    attention_elsewhere(x, w, b, heads, compute)
}

/// [`attention`] with position information inside it (a rotary embedding on the queries and
/// keys, a bias on the scores; see [`Positions`]). For inference: no gradient flows through it
/// on the CPU.
pub fn positioned_attention(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    heads: usize,
    positions: &Positions,
    compute: DType,
) -> Result<Tensor> {
    if fused(x) && compute == x.dtype() {
        let op = positioned::PositionedAttention { heads, positions };
        return x.contiguous()?.apply_op3_no_bwd(w, b, &op);
    }
    positioned_attention_elsewhere(&linear(x, w, b, compute)?, heads, positions, compute)
}

/// [`positioned_attention`] on other devices (and with bf16 products), from the `qkv`
/// projection.
fn positioned_attention_elsewhere(
    qkv: &Tensor,
    heads: usize,
    positions: &Positions,
    compute: DType,
) -> Result<Tensor> {
    let (q, k, v) = split_heads(qkv, heads)?;
    let (q, k) = match &positions.rotary {
        Some(r) => (rotate(&q, r)?, rotate(&k, r)?.contiguous()?),
        None => (q, k),
    };
    let bias = match &positions.bias {
        // [H, entries] -> [1, H, N, N]
        Some(b) => {
            let n = q.dim(2)?;
            let index = b.index.flatten_all()?.to_dtype(DType::U32)?;
            let table = b.table.to_dtype(q.dtype())?;
            Some(table.index_select(&index, 1)?.reshape((1, heads, n, n))?)
        }
        None => None,
    };
    attend(&q, &k, &v, bias.as_ref(), compute)
}

/// The queries or keys `x` `[B, H, N, hd]` turned by the rotary embedding `r` (tokens after
/// its prefix).
fn rotate(x: &Tensor, r: &Rotary) -> Result<Tensor> {
    let table = r.table.to_dtype(x.dtype())?;
    let (hd, n, prefix) = (x.dim(3)?, x.dim(2)?, r.prefix);
    let (sin, cos) = (table.narrow(1, 0, hd)?, table.narrow(1, hd, hd)?);
    let body = x.narrow(2, prefix, n - prefix)?;
    let half = hd / 2;
    let turned = Tensor::cat(
        &[
            &body.narrow(3, half, half)?.neg()?,
            &body.narrow(3, 0, half)?,
        ],
        3,
    )?;
    let body = (body.broadcast_mul(&cos)? + turned.broadcast_mul(&sin)?)?;
    Tensor::cat(&[&x.narrow(2, 0, prefix)?, &body], 2)
}

/// [`attention`] on other devices (and with bf16 products): candle's products and candle-nn's
/// softmax kernel.
fn attention_elsewhere(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    heads: usize,
    compute: DType,
) -> Result<Tensor> {
    let (q, k, v) = split_heads(&linear(x, w, b, compute)?, heads)?;
    attend(&q, &k, &v, None, compute)
}

/// Queries, keys and values `[B, H, N, hd]` of a `qkv` projection `[B, N, 3W]`.
fn split_heads(qkv: &Tensor, heads: usize) -> Result<(Tensor, Tensor, Tensor)> {
    let (b, n, w3) = qkv.dims3()?;
    // [3, B, H, N, hd]
    let qkv = qkv
        .reshape((b, n, 3, heads, w3 / 3 / heads))?
        .permute((2, 0, 3, 1, 4))?;
    Ok((
        qkv.get(0)?,
        qkv.get(1)?.contiguous()?,
        qkv.get(2)?.contiguous()?,
    ))
}

/// Softmax attention of `q`, `k`, `v` `[B, H, N, hd]` (the scores shifted by `bias`
/// `[1, H, N, N]`, if any), the heads joined again: `[B, N, W]`.
fn attend(
    q: &Tensor,
    k: &Tensor,
    v: &Tensor,
    bias: Option<&Tensor>,
    compute: DType,
) -> Result<Tensor> {
    let (b, heads, n, hd) = q.dims4()?;
    // The scale on q (tokens x head width) rather than on the scores (tokens x tokens).
    let q = (q * (1.0 / (hd as f64).sqrt()))?;
    let scores = product(&q, &k.t()?, compute)?;
    let scores = match bias {
        Some(bias) => scores.broadcast_add(bias)?,
        None => scores,
    };
    let attn = with_grad::softmax_last_dim(&scores)?;
    product(&attn, v, compute)?
        .transpose(1, 2)?
        .reshape((b, n, heads * hd))
}

#[cfg(test)]
mod tests;
