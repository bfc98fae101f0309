//! The kernels as candle custom operations, so they join the autograd graph: each forward is
//! one node whose backward pass calls the matching gradient kernels (or, for the linear
//! layer's input and weight, candle's matrix products).

use std::sync::OnceLock;

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};

use super::attention::{self, Dims};
use super::positioned::project_qkv;
use super::storage::{cpu_fwd_by_type, input, Stored};
use super::{linear, rows};

/// The last dimension and the number of rows before it.
fn rows_of(layout: &Layout) -> (usize, usize) {
    let dims = layout.shape().dims();
    let w = dims.last().copied().unwrap_or(1).max(1);
    (layout.shape().elem_count() / w, w)
}

/// Whether gradients should flow into `t`.
fn wants_grad(t: &Tensor) -> bool {
    t.track_op()
}

/// `x W^T + b` over the last dimension of `x`, optionally followed by GELU: then, when a
/// backward pass will follow, the pre-activation is kept for it (one node instead of two, so
/// candle does not accumulate a gradient of the largest activation onto a zero tensor).
#[derive(Default)]
pub struct Linear {
    gelu: bool,
    keep: bool,
    pre_activation: OnceLock<Tensor>,
}

impl Linear {
    /// The linear layer followed by GELU; `keep` the pre-activation for a backward pass.
    pub fn with_gelu(keep: bool) -> Self {
        Linear {
            gelu: true,
            keep,
            pre_activation: OnceLock::new(),
        }
    }

    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
        let x = input::<T>(s[0].0, s[0].1, self.name())?;
        let w = input::<T>(s[1].0, s[1].1, self.name())?;
        let b = input::<T>(s[2].0, s[2].1, self.name())?;
        let (_, inputs) = rows_of(s[0].1);
        if w.len() != b.len() * inputs {
            candle_core::bail!("{}: weight and input sizes disagree", self.name());
        }
        let mut dims = s[0].1.shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = b.len();
        }
        if !self.gelu {
            let u = linear::forward(x, w, b, inputs, true);
            return Ok((T::storage(u), Shape::from(dims)));
        }
        // The bias is added in the GELU pass, which reads every pre-activation anyway.
        let mut u = linear::forward(x, w, b, inputs, false);
        if !self.keep {
            // Inference: GELU over the product's own buffer (a second one of this size was
            // fresh pages to fault in and clear on every call).
            rows::bias_gelu_in_place(&mut u, b);
            return Ok((T::storage(u), Shape::from(dims)));
        }
        let y = rows::bias_gelu(&mut u, b);
        let pre = Tensor::from_vec(u, dims.clone(), &candle_core::Device::Cpu)?;
        let _ = self.pre_activation.set(pre);
        Ok((T::storage(y), Shape::from(dims)))
    }
}

impl CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "fused-linear"
    }
    cpu_fwd_by_type!(3);
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?.detach();
        let g = match (self.gelu, self.pre_activation.get()) {
            (false, _) => g,
            (true, Some(u)) => u.apply_op2_no_bwd(&g, &GeluGrad)?,
            (true, None) => candle_core::bail!(
                "fused-linear: backward pass of a GELU layer computed without gradients"
            ),
        };
        linear_grads(x, w, b, &g)
    }
}

/// The gradients of `x W^T + b` with respect to `x`, `w` and `b` (each only when it is
/// tracked) given the output gradient `g`, computed detached (they must not record a graph).
fn linear_grads(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    g: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
    let (outputs, inputs) = w.dims2()?;
    let g = g.contiguous()?.detach();
    let g = g.reshape((g.elem_count() / outputs, outputs))?;
    let dx = if wants_grad(x) {
        Some(
            g.apply_op2_no_bwd(&w.detach(), &InputGrad)?
                .reshape(x.shape())?,
        )
    } else {
        None
    };
    let dw = if wants_grad(w) {
        let x2 = x.detach().reshape((x.elem_count() / inputs, inputs))?;
        Some(g.apply_op2_no_bwd(&x2.contiguous()?, &WeightGrad)?)
    } else {
        None
    };
    let db = if wants_grad(b) {
        Some(g.apply_op1_no_bwd(&ColumnSums)?)
    } else {
        None
    };
    Ok((dx, dw, db))
}

/// `g W` for 2-D `g` `[rows, outputs]` and `w` `[outputs, inputs]`.
struct InputGrad;

impl InputGrad {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 2]) -> Result<(CpuStorage, Shape)> {
        let g = input::<T>(s[0].0, s[0].1, self.name())?;
        let w = input::<T>(s[1].0, s[1].1, self.name())?;
        let (outputs, inputs) = s[1].1.shape().dims2()?;
        let rows = g.len() / outputs.max(1);
        Ok((
            T::storage(linear::input_grad(g, w, outputs, inputs)),
            Shape::from((rows, inputs)),
        ))
    }
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "fused-input-grad"
    }
    cpu_fwd_by_type!(2);
}

/// `g^T x` for 2-D `g` `[rows, outputs]` and `x` `[rows, inputs]`.
struct WeightGrad;

impl WeightGrad {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 2]) -> Result<(CpuStorage, Shape)> {
        let g = input::<T>(s[0].0, s[0].1, self.name())?;
        let x = input::<T>(s[1].0, s[1].1, self.name())?;
        let ((_, outputs), (_, inputs)) = (rows_of(s[0].1), rows_of(s[1].1));
        Ok((
            T::storage(linear::weight_grad(g, x, outputs, inputs)),
            Shape::from((outputs, inputs)),
        ))
    }
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "fused-weight-grad"
    }
    cpu_fwd_by_type!(2);
}

/// Column sums of a 2-D tensor.
struct ColumnSums;

impl ColumnSums {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 1]) -> Result<(CpuStorage, Shape)> {
        let (_, w) = rows_of(s[0].1);
        let g = input::<T>(s[0].0, s[0].1, self.name())?;
        Ok((T::storage(rows::column_sums(g, w)), Shape::from(w)))
    }
}

impl CustomOp1 for ColumnSums {
    fn name(&self) -> &'static str {
        "fused-column-sums"
    }
    cpu_fwd_by_type!(1);
}

/// `norm(x) * (1 + scale) + shift`: `x` `[B, N, W]`, shift and scale `[B, W]`.
pub struct ModulatedNorm {
    /// Added to the variance.
    pub eps: f64,
    /// A layer norm (centred); else an RMS norm, inference only (no gradient).
    pub centred: bool,
}

/// `[B, N, W]` as (tokens per image, width).
fn token_dims(layout: &Layout) -> Result<(usize, usize)> {
    match layout.shape().dims() {
        [_, n, w] => Ok((*n, *w)),
        dims => candle_core::bail!("expected [B, N, W], got {dims:?}"),
    }
}

impl ModulatedNorm {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let x = input::<T>(s[0].0, s[0].1, name)?;
        let shift = input::<T>(s[1].0, s[1].1, name)?;
        let scale = input::<T>(s[2].0, s[2].1, name)?;
        let dims = token_dims(s[0].1)?;
        let out = rows::modulated_norm(x, shift, scale, dims, self.eps, self.centred);
        Ok((T::storage(out), s[0].1.shape().clone()))
    }
}

impl CustomOp3 for ModulatedNorm {
    fn name(&self) -> &'static str {
        "fused-modulated-norm"
    }
    cpu_fwd_by_type!(3);
    fn bwd(
        &self,
        x: &Tensor,
        shift: &Tensor,
        scale: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        if !self.centred {
            candle_core::bail!("the fused RMS norm has no gradient (it serves imported models)");
        }
        let g = g.contiguous()?;
        let dx = if wants_grad(x) {
            Some(x.apply_op3_no_bwd(scale, &g, &ModulatedNormDx { eps: self.eps })?)
        } else {
            None
        };
        if !wants_grad(shift) && !wants_grad(scale) {
            return Ok((dx, None, None));
        }
        let params = x.apply_op2_no_bwd(&g, &ModulatedNormDparams { eps: self.eps })?;
        Ok((
            dx,
            Some(params.get_on_dim(1, 0)?),
            Some(params.get_on_dim(1, 1)?),
        ))
    }
}

struct ModulatedNormDx {
    eps: f64,
}

impl ModulatedNormDx {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let x = input::<T>(s[0].0, s[0].1, name)?;
        let scale = input::<T>(s[1].0, s[1].1, name)?;
        let g = input::<T>(s[2].0, s[2].1, name)?;
        let out = rows::modulated_norm_dx(x, scale, g, token_dims(s[0].1)?, self.eps);
        Ok((T::storage(out), s[0].1.shape().clone()))
    }
}

impl CustomOp3 for ModulatedNormDx {
    fn name(&self) -> &'static str {
        "fused-modulated-norm-dx"
    }
    cpu_fwd_by_type!(3);
}

struct ModulatedNormDparams {
    eps: f64,
}

impl ModulatedNormDparams {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 2]) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let x = input::<T>(s[0].0, s[0].1, name)?;
        let g = input::<T>(s[1].0, s[1].1, name)?;
        let (tokens, w) = token_dims(s[0].1)?;
        let out = rows::modulated_norm_dparams(x, g, (tokens, w), self.eps);
        let images = x.len() / (tokens * w);
        Ok((T::storage(out), Shape::from((images, 2, w))))
    }
}

impl CustomOp2 for ModulatedNormDparams {
    fn name(&self) -> &'static str {
        "fused-modulated-norm-dparams"
    }
    cpu_fwd_by_type!(2);
}

/// `x + h * gate`: `x`, `h` `[B, N, W]`, gate `[B, W]`.
pub struct GatedResidual;

impl GatedResidual {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let x = input::<T>(s[0].0, s[0].1, name)?;
        let h = input::<T>(s[1].0, s[1].1, name)?;
        let gate = input::<T>(s[2].0, s[2].1, name)?;
        let out = rows::gated_residual(x, h, gate, token_dims(s[0].1)?);
        Ok((T::storage(out), s[0].1.shape().clone()))
    }
}

impl CustomOp3 for GatedResidual {
    fn name(&self) -> &'static str {
        "fused-gated-residual"
    }
    cpu_fwd_by_type!(3);
    fn bwd(
        &self,
        x: &Tensor,
        h: &Tensor,
        gate: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = g.contiguous()?;
        let dx = wants_grad(x).then(|| g.clone());
        let dh = if wants_grad(h) {
            Some(g.apply_op2_no_bwd(gate, &GateProduct::Rows)?)
        } else {
            None
        };
        let dgate = if wants_grad(gate) {
            Some(g.apply_op2_no_bwd(&h.contiguous()?, &GateProduct::Sums)?)
        } else {
            None
        };
        Ok((dx, dh, dgate))
    }
}

/// The two gradient kernels of [`GatedResidual`].
enum GateProduct {
    /// `g * gate` per token.
    Rows,
    /// Per image, the sum over tokens of `g * h`.
    Sums,
}

impl GateProduct {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 2]) -> Result<(CpuStorage, Shape)> {
        let name = self.name();
        let g = input::<T>(s[0].0, s[0].1, name)?;
        let other = input::<T>(s[1].0, s[1].1, name)?;
        let (tokens, w) = token_dims(s[0].1)?;
        Ok(match self {
            GateProduct::Rows => (
                T::storage(rows::gated_residual_dh(g, other, (tokens, w))),
                s[0].1.shape().clone(),
            ),
            GateProduct::Sums => (
                T::storage(rows::gated_residual_dgate(g, other, (tokens, w))),
                Shape::from((g.len() / (tokens * w), w)),
            ),
        })
    }
}

impl CustomOp2 for GateProduct {
    fn name(&self) -> &'static str {
        "fused-gate-product"
    }
    cpu_fwd_by_type!(2);
}

/// `x + position`: `x` `[B, N, W]`, a constant `position` `[1, N, W]` or `[N, W]`.
pub struct AddPosition;

impl AddPosition {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 2]) -> Result<(CpuStorage, Shape)> {
        let x = input::<T>(s[0].0, s[0].1, self.name())?;
        let position = input::<T>(s[1].0, s[1].1, self.name())?;
        let (tokens, w) = token_dims(s[0].1)?;
        if position.len() != tokens * w {
            candle_core::bail!("{}: position table does not match the tokens", self.name());
        }
        Ok((
            T::storage(rows::add_position(x, position, w)),
            s[0].1.shape().clone(),
        ))
    }
}

impl CustomOp2 for AddPosition {
    fn name(&self) -> &'static str {
        "fused-add-position"
    }
    cpu_fwd_by_type!(2);
    fn bwd(
        &self,
        _x: &Tensor,
        _position: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        // The position table is a constant: only `x` receives a gradient.
        Ok((Some(g.clone()), None))
    }
}

/// The mean over tokens: `[B, N, W]` to `[B, W]`.
pub struct MeanTokens;

impl MeanTokens {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 1]) -> Result<(CpuStorage, Shape)> {
        let x = input::<T>(s[0].0, s[0].1, self.name())?;
        let (tokens, w) = token_dims(s[0].1)?;
        let out = rows::mean_tokens(x, (tokens, w));
        let images = out.len() / w.max(1);
        Ok((T::storage(out), Shape::from((images, w))))
    }
}

impl CustomOp1 for MeanTokens {
    fn name(&self) -> &'static str {
        "fused-mean-tokens"
    }
    cpu_fwd_by_type!(1);
    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        let tokens = x.dim(1)? as f64;
        Ok(Some(
            (g.detach().unsqueeze(1)? / tokens)?
                .broadcast_as(x.shape())?
                .contiguous()?,
        ))
    }
}

/// Exact (erf) GELU.
pub struct Gelu;

impl Gelu {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 1]) -> Result<(CpuStorage, Shape)> {
        let x = input::<T>(s[0].0, s[0].1, self.name())?;
        Ok((T::storage(rows::gelu(x)), s[0].1.shape().clone()))
    }
}

impl CustomOp1 for Gelu {
    fn name(&self) -> &'static str {
        "fused-gelu"
    }
    cpu_fwd_by_type!(1);
    fn bwd(&self, x: &Tensor, _res: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(x.apply_op2_no_bwd(&g.contiguous()?, &GeluGrad)?))
    }
}

/// `dx = g * gelu'(x)`: the CPU kernel, and on a GPU ldae's CUDA kernel (f32).
pub struct GeluGrad;

impl GeluGrad {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 2]) -> Result<(CpuStorage, Shape)> {
        let x = input::<T>(s[0].0, s[0].1, self.name())?;
        let g = input::<T>(s[1].0, s[1].1, self.name())?;
        Ok((T::storage(rows::gelu_dx(x, g)), s[0].1.shape().clone()))
    }
}

impl CustomOp2 for GeluGrad {
    fn name(&self) -> &'static str {
        "fused-gelu-grad"
    }
    cpu_fwd_by_type!(2);
    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        xl: &Layout,
        g: &candle_core::CudaStorage,
        gl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        super::cuda_kernels::gelu_grad(x, xl, g, gl)
    }
}

/// Multi-head self-attention with its `qkv` projection: `x` `[B, N, W]`, `w` `[3W, W]`, `b`
/// `[3W]`, to `[B, N, W]` (before the output projection). One node: when a backward pass will
/// follow, the projection `[B, N, 3W]` and the attention weights `[B, H, N, N]` are kept for it.
pub struct Attention {
    heads: usize,
    keep: bool,
    kept: OnceLock<(Tensor, Tensor)>,
}

impl Attention {
    /// Attention over `heads` heads; `keep` what the backward pass needs.
    pub fn new(heads: usize, keep: bool) -> Self {
        Attention {
            heads,
            keep,
            kept: OnceLock::new(),
        }
    }

    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
        let (qkv, d) = project_qkv::<T>(self.name(), s, self.heads)?;
        let (batch, tokens, width) = (d.batch, d.tokens, d.heads * d.head_dim);
        let (out, weights) = attention::forward(&qkv, d, self.keep, None);
        if let Some(p) = weights {
            let cpu = &candle_core::Device::Cpu;
            let qkv = Tensor::from_vec(qkv, (batch, tokens, 3 * width), cpu)?;
            let p = Tensor::from_vec(p, (batch, self.heads, tokens, tokens), cpu)?;
            let _ = self.kept.set((qkv, p));
        }
        Ok((T::storage(out), s[0].1.shape().clone()))
    }
}

fn attention_dims(heads: usize, layout: &Layout) -> Result<Dims> {
    match layout.shape().dims() {
        [b, n, w3] if w3 % (3 * heads) == 0 => Ok(Dims {
            batch: *b,
            tokens: *n,
            heads,
            head_dim: w3 / (3 * heads),
        }),
        dims => candle_core::bail!(
            "fused-attention: expected [B, N, 3W] with W divisible by {heads} heads, got {dims:?}"
        ),
    }
}

impl CustomOp3 for Attention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }
    cpu_fwd_by_type!(3);
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let Some((qkv, p)) = self.kept.get() else {
            candle_core::bail!(
                "fused-attention: backward pass of an attention computed without gradients"
            );
        };
        let grad = AttentionGrad { heads: self.heads };
        let dqkv = qkv.apply_op3_no_bwd(&g.contiguous()?, p, &grad)?;
        linear_grads(x, w, b, &dqkv)
    }
}

/// The gradient of [`Attention`]: inputs `qkv`, the output gradient, and the kept weights.
struct AttentionGrad {
    heads: usize,
}

impl AttentionGrad {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 3]) -> Result<(CpuStorage, Shape)> {
        let d = attention_dims(self.heads, s[0].1)?;
        let qkv = input::<T>(s[0].0, s[0].1, self.name())?;
        let g = input::<T>(s[1].0, s[1].1, self.name())?;
        let kept = input::<T>(s[2].0, s[2].1, self.name())?;
        Ok((
            T::storage(attention::backward(qkv, g, kept, d)),
            s[0].1.shape().clone(),
        ))
    }
}

impl CustomOp3 for AttentionGrad {
    fn name(&self) -> &'static str {
        "fused-attention-grad"
    }
    cpu_fwd_by_type!(3);
}
