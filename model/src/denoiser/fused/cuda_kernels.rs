//! ldae's own CUDA kernels (feature `cuda`; PTX built by model/build.rs), launched on candle's
//! stream. Callers use them behind a self-test (`with_grad`).

use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, Layout, Result, Shape};

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
