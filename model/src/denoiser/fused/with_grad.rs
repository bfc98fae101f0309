//! candle-nn's fused softmax and layer norm (one kernel each on a GPU) in training.
//!
//! Why: candle gives those kernels no backward pass, so training on other devices spelled both
//! out of elementwise operations: about ten passes over the tensor forward and twice that
//! backward, and attention's softmax runs over the largest tensor of a step (heads x tokens x
//! tokens per image). Here the forward pass runs the fused kernel on a detached input, and
//! [`WithGrad`] joins its result to the graph with the operation's analytic backward pass
//! (a few passes of candle's tensor operations, on any device).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor, D};

/// Which operation's backward pass a [`WithGrad`] node applies.
#[derive(Clone, Copy)]
enum Grad {
    /// `y = softmax(x)` over the last dimension: `dx = y (g - sum(g y))`.
    Softmax,
    /// `y = (x - mean) / sqrt(var + eps)` over the last dimension:
    /// `dx = (g - mean(g) - y mean(g y)) / sqrt(var + eps)`.
    LayerNorm { eps: f64 },
}

/// A node with two inputs, `x` and `y = f(x)` computed without the graph, whose output is a
/// copy of `y` and whose backward pass gives `x` the gradient of `f`.
struct WithGrad(Grad);

/// The output: `y`'s storage, copied (it must be contiguous and start at its buffer's start,
/// as a fresh kernel output does).
fn copy_of<S: BackendStorage>(y: &S, layout: &Layout) -> Result<(S, Shape)> {
    if !layout.is_contiguous() || layout.start_offset() != 0 {
        candle_core::bail!("with-grad: the fused kernel's output is not a whole contiguous buffer");
    }
    Ok((y.try_clone(layout)?, layout.shape().clone()))
}

impl CustomOp2 for WithGrad {
    fn name(&self) -> &'static str {
        "with-grad"
    }

    fn cpu_fwd(
        &self,
        _x: &CpuStorage,
        _: &Layout,
        y: &CpuStorage,
        layout: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        copy_of(y, layout)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _x: &candle_core::CudaStorage,
        _: &Layout,
        y: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        copy_of(y, layout)
    }

    fn bwd(
        &self,
        x: &Tensor,
        y: &Tensor,
        _res: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (x, y, g) = (x.detach(), y.detach(), g.detach());
        let gy = (&g * &y)?;
        let dx = match self.0 {
            Grad::Softmax => (&gy - y.broadcast_mul(&gy.sum_keepdim(D::Minus1)?)?)?,
            Grad::LayerNorm { eps } => {
                let centred = x.broadcast_sub(&x.mean_keepdim(D::Minus1)?)?;
                let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
                let inv_std = (var + eps)?.sqrt()?.recip()?;
                g.broadcast_sub(&g.mean_keepdim(D::Minus1)?)?
                    .sub(&y.broadcast_mul(&gy.mean_keepdim(D::Minus1)?)?)?
                    .broadcast_mul(&inv_std)?
            }
        };
        Ok((Some(dx), None))
    }
}

/// `y` joined to the graph as `f(x)` with the backward pass of `grad`.
fn joined(x: &Tensor, y: Tensor, grad: Grad) -> Result<Tensor> {
    if !x.track_op() {
        return Ok(y);
    }
    x.apply_op2(&y, WithGrad(grad))
}

/// Softmax over the last dimension: candle-nn's fused kernel, with a backward pass.
pub fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    let y = candle_nn::ops::softmax_last_dim(&x.detach().contiguous()?)?;
    joined(x, y, Grad::Softmax)
}

/// Layer norm without affine parameters over the last dimension: candle-nn's fused kernel,
/// with a backward pass.
pub fn layer_norm(x: &Tensor, eps: f64) -> Result<Tensor> {
    let w = x.dim(D::Minus1)?;
    let ones = Tensor::ones(w, x.dtype(), x.device())?;
    let zeros = Tensor::zeros(w, x.dtype(), x.device())?;
    let y = candle_nn::ops::layer_norm(&x.detach().contiguous()?, &ones, &zeros, eps as f32)?;
    joined(x, y, Grad::LayerNorm { eps })
}
