//! candle's fused softmax, layer norm and GELU (one kernel each on a GPU) in training.
//!
//! Why: candle gives the first two no backward pass, and GELU's is a dozen elementwise
//! kernels, so training on other devices spelled them out of elementwise operations: about ten
//! passes over the tensor forward and twice that backward, over the largest tensors of a step
//! (attention's heads x tokens x tokens, the MLP's 4 x width per token). Here the forward pass
//! runs the fused kernel on a detached input, and [`WithGrad`] joins its result to the graph
//! with the operation's analytic backward pass (a few passes of candle's tensor operations; for
//! GELU one kernel of ldae's, on the CPU and on a GPU).

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp2, DType, Device, Layout, Result, Shape, Tensor, D};

/// Which operation's backward pass a [`WithGrad`] node applies.
#[derive(Clone, Copy)]
enum Grad {
    /// `y = softmax(x)` over the last dimension: `dx = y (g - sum(g y))`.
    Softmax,
    /// `y = (x - mean) / sqrt(var + eps)` over the last dimension:
    /// `dx = (g - mean(g) - y mean(g y)) / sqrt(var + eps)`.
    LayerNorm { eps: f64 },
    /// `y = x Phi(x)` (exact GELU): `dx = g (Phi(x) + x phi(x))`.
    Gelu,
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
        let dx = match self.0 {
            Grad::Softmax => {
                let gy = (&g * &y)?;
                (&gy - y.broadcast_mul(&gy.sum_keepdim(D::Minus1)?)?)?
            }
            Grad::Gelu => gelu_grad(&x, &g)?,
            Grad::LayerNorm { eps } => {
                let gy = (&g * &y)?;
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

/// `g * gelu'(x)` in one kernel where one serves (the CPU's in f32 and f64, ldae's CUDA kernel
/// in f32 once it passed its self-test), else [`gelu_grad_composite`].
fn gelu_grad(x: &Tensor, g: &Tensor) -> Result<Tensor> {
    let kernel = match x.device() {
        Device::Cpu => matches!(x.dtype(), DType::F32 | DType::F64),
        #[cfg(feature = "cuda")]
        device @ Device::Cuda(_) => x.dtype() == DType::F32 && gpu_kernel_serves(device),
        _ => false,
    };
    if kernel {
        return x
            .contiguous()?
            .apply_op2_no_bwd(&g.contiguous()?, &super::ops::GeluGrad);
    }
    gelu_grad_composite(x, g)
}

/// Whether ldae's CUDA GELU-gradient kernel serves (decided once per process): the first use
/// runs it on a probe tensor against [`gelu_grad_composite`]; a kernel that fails to load,
/// launch or agree is not used, with a warning, and training goes on with the composite form.
/// `LDAE_CUDA_KERNELS=off` turns it off (to compare the two on a card).
#[cfg(feature = "cuda")]
fn gpu_kernel_serves(device: &Device) -> bool {
    static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *READY.get_or_init(|| {
        if std::env::var("LDAE_CUDA_KERNELS").is_ok_and(|v| v == "off") {
            return false;
        }
        let probe = || -> Result<f32> {
            let x = (Tensor::arange(0u32, 4099, device)?.to_dtype(DType::F32)? * 0.003)?
                .affine(1.0, -6.0)?;
            let g = (x.cos()? + 1.5)?;
            let kernel = x.apply_op2_no_bwd(&g, &super::ops::GeluGrad)?;
            let composite = gelu_grad_composite(&x, &g)?;
            let diff = (kernel - &composite)?.abs()?.max_all()?.to_scalar::<f32>()?;
            let scale = composite.abs()?.max_all()?.to_scalar::<f32>()?;
            Ok(diff / scale.max(1e-30))
        };
        match probe() {
            Ok(diff) if diff <= 1e-5 => {
                tracing::info!(
                    "ldae's CUDA GELU-gradient kernel passed its self-test (relative difference {diff:.1e})"
                );
                true
            }
            Ok(diff) => {
                tracing::warn!("ldae's CUDA GELU-gradient kernel differs from candle's by {diff}; not used");
                false
            }
            Err(e) => {
                tracing::warn!("ldae's CUDA GELU-gradient kernel failed its self-test ({e}); not used");
                false
            }
        }
    })
}

/// `g * gelu'(x)` in candle's elementwise operations: `g (Phi(x) + x phi(x))`.
pub(super) fn gelu_grad_composite(x: &Tensor, g: &Tensor) -> Result<Tensor> {
    let cdf = ((x * std::f64::consts::FRAC_1_SQRT_2)?.erf()? + 1.0)? * 0.5;
    let pdf = ((x.sqr()? * -0.5)?.exp()?
        * (0.5 * std::f64::consts::FRAC_2_SQRT_PI * std::f64::consts::FRAC_1_SQRT_2))?;
    g * (cdf? + (x * pdf)?)?
}

/// Exact (erf) GELU: candle's kernel, with a backward pass of one kernel.
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    let y = x.detach().gelu_erf()?;
    joined(x, y, Grad::Gelu)
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
