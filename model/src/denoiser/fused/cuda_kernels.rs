//! ldae's own CUDA kernels (feature `cuda`; PTX built by model/build.rs), each behind a
//! self-test: the first use in a process runs the kernel on a probe tensor and compares it with
//! candle's composite form; a kernel that fails to load, launch or agree is not used again, with
//! a warning, and training goes on with the composite form. `LDAE_CUDA_KERNELS=off` turns them
//! off (to compare the two on a card).

use std::sync::OnceLock;

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Device, Layout, Result, Shape, Tensor};

const PTX: &str = include_str!(concat!(env!("OUT_DIR"), "/gelu_grad.ptx"));

/// `dx = g * gelu'(x)` for contiguous f32 `x` and `g` on one GPU.
pub fn gelu_grad(
    x: &CudaStorage,
    x_layout: &Layout,
    g: &CudaStorage,
    g_layout: &Layout,
) -> Result<(CudaStorage, Shape)> {
    let (Some((x0, x1)), Some((g0, g1))) =
        (x_layout.contiguous_offsets(), g_layout.contiguous_offsets())
    else {
        candle_core::bail!("gelu grad: inputs must be contiguous");
    };
    if x1 - x0 != g1 - g0 {
        candle_core::bail!("gelu grad: x and g differ in size");
    }
    let n = x1 - x0;
    let device = x.device.clone();
    if n == 0 {
        let empty = device.alloc_zeros::<f32>(0)?;
        return Ok((
            CudaStorage::wrap_cuda_slice(empty, device),
            x_layout.shape().clone(),
        ));
    }
    let count = u32::try_from(n)
        .map_err(|_| candle_core::Error::Msg("gelu grad: over 2^32 values".into()))?;
    let xs = x.as_cuda_slice::<f32>()?.slice(x0..x1);
    let gs = g.as_cuda_slice::<f32>()?.slice(g0..g1);
    let func = device.get_or_load_custom_func("ldae_gelu_grad_f32", "ldae_gelu_grad", PTX)?;
    // SAFETY: every element is written by the kernel below.
    let dx = unsafe { device.alloc::<f32>(n)? };
    let mut builder = func.builder();
    builder.arg(&xs);
    builder.arg(&gs);
    builder.arg(&dx);
    builder.arg(&count);
    // SAFETY: the arguments match the kernel's signature (three f32 buffers of n values, n).
    unsafe { builder.launch(LaunchConfig::for_num_elems(count)) }.w()?;
    Ok((
        CudaStorage::wrap_cuda_slice(dx, device),
        x_layout.shape().clone(),
    ))
}

/// Whether the GELU-gradient kernel serves `device` (checked once per process).
pub fn gelu_grad_serves(device: &Device) -> bool {
    static READY: OnceLock<bool> = OnceLock::new();
    *READY.get_or_init(|| {
        if std::env::var("LDAE_CUDA_KERNELS").is_ok_and(|v| v == "off") {
            return false;
        }
        match self_test(device) {
            Ok(diff) if diff <= 1e-5 => {
                tracing::info!("ldae's CUDA GELU-gradient kernel passed its self-test (relative difference {diff:.1e})");
                true
            }
            Ok(diff) => {
                tracing::warn!(
                    "ldae's CUDA GELU-gradient kernel differs from candle's by {diff}; not used"
                );
                false
            }
            Err(e) => {
                tracing::warn!(
                    "ldae's CUDA GELU-gradient kernel failed its self-test ({e}); not used"
                );
                false
            }
        }
    })
}

/// The kernel against the composite form on values across GELU's range: the largest
/// difference relative to the gradient's size.
fn self_test(device: &Device) -> Result<f32> {
    let x = (Tensor::arange(0u32, 4099, device)?.to_dtype(candle_core::DType::F32)? * 0.003)?
        .affine(1.0, -6.0)?;
    let g = (x.cos()? + 1.5)?;
    let kernel = x.apply_op2_no_bwd(&g, &super::ops::GeluGrad)?;
    let composite = super::with_grad::gelu_grad_composite(&x, &g)?;
    let diff = (kernel - &composite)?
        .abs()?
        .max_all()?
        .to_scalar::<f32>()?;
    let scale = composite.abs()?.max_all()?.to_scalar::<f32>()?;
    Ok(diff / scale.max(1e-30))
}
