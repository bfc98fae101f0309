//! Fused CPU kernels, with backward passes, for the denoiser's row-wise operations.
//!
//! candle's own fused layer-norm and softmax have no backward pass, and their composite forms
//! (7 to 10 elementwise passes, each allocating a full tensor, and longer backward graphs) made
//! a training step several times slower than its forward pass. These compute each row in one
//! pass forward and one pass backward, and are used when gradients are tracked on the CPU;
//! without gradients candle's fused (multi-threaded) forward kernels are used, and other devices
//! use the composite forms while training.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};

/// The arithmetic the kernels need, for f32 and f64.
trait Real:
    Copy
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
{
    fn of(v: f64) -> Self;
    fn sqrt(self) -> Self;
    fn exp(self) -> Self;
}

impl Real for f32 {
    fn of(v: f64) -> Self {
        v as f32
    }
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    fn exp(self) -> Self {
        f32::exp(self)
    }
}

impl Real for f64 {
    fn of(v: f64) -> Self {
        v
    }
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    fn exp(self) -> Self {
        f64::exp(self)
    }
}

/// The contiguous slice a layout views.
fn view<'a, T>(data: &'a [T], layout: &Layout, op: &str) -> Result<&'a [T]> {
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{op}: expects a contiguous tensor"),
    }
}

fn row_width(layout: &Layout) -> usize {
    layout.shape().dims().last().copied().unwrap_or(1).max(1)
}

/// Mean and 1/sqrt(var + eps) of a row.
fn moments<T: Real>(row: &[T], eps: f64) -> (T, T) {
    let n = T::of(row.len() as f64);
    let mean = row.iter().fold(T::of(0.0), |a, &v| a + v) / n;
    let var = row
        .iter()
        .fold(T::of(0.0), |a, &v| a + (v - mean) * (v - mean))
        / n;
    (mean, T::of(1.0) / (var + T::of(eps)).sqrt())
}

fn norm_fwd<T: Real>(x: &[T], w: usize, eps: f64) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(w) {
        let (mean, inv) = moments(row, eps);
        out.extend(row.iter().map(|&v| (v - mean) * inv));
    }
    out
}

fn norm_bwd<T: Real>(x: &[T], dy: &[T], w: usize, eps: f64) -> Vec<T> {
    let n = T::of(w as f64);
    let mut out = Vec::with_capacity(x.len());
    for (row, g) in x.chunks_exact(w).zip(dy.chunks_exact(w)) {
        let (mean, inv) = moments(row, eps);
        let mut mean_g = T::of(0.0);
        let mut mean_gx = T::of(0.0);
        for (&v, &d) in row.iter().zip(g) {
            mean_g = mean_g + d;
            mean_gx = mean_gx + d * (v - mean) * inv;
        }
        let (mean_g, mean_gx) = (mean_g / n, mean_gx / n);
        out.extend(
            row.iter()
                .zip(g)
                .map(|(&v, &d)| inv * (d - mean_g - (v - mean) * inv * mean_gx)),
        );
    }
    out
}

fn softmax_fwd<T: Real>(x: &[T], w: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(x.len());
    for row in x.chunks_exact(w) {
        let max = row.iter().fold(row[0], |m, &v| if v > m { v } else { m });
        let start = out.len();
        let mut sum = T::of(0.0);
        for &v in row {
            let e = (v - max).exp();
            sum = sum + e;
            out.push(e);
        }
        for e in &mut out[start..] {
            *e = *e / sum;
        }
    }
    out
}

fn softmax_bwd<T: Real>(y: &[T], dy: &[T], w: usize) -> Vec<T> {
    let mut out = Vec::with_capacity(y.len());
    for (row, g) in y.chunks_exact(w).zip(dy.chunks_exact(w)) {
        let dot = row.iter().zip(g).fold(T::of(0.0), |a, (&p, &d)| a + p * d);
        out.extend(row.iter().zip(g).map(|(&p, &d)| p * (d - dot)));
    }
    out
}

/// Apply a row kernel to one input of f32 or f64.
fn unary(
    s: &CpuStorage,
    l: &Layout,
    op: &str,
    f32k: impl Fn(&[f32], usize) -> Vec<f32>,
    f64k: impl Fn(&[f64], usize) -> Vec<f64>,
) -> Result<(CpuStorage, Shape)> {
    let w = row_width(l);
    let out = match s {
        CpuStorage::F32(v) => CpuStorage::F32(f32k(view(v, l, op)?, w)),
        CpuStorage::F64(v) => CpuStorage::F64(f64k(view(v, l, op)?, w)),
        _ => candle_core::bail!("{op}: only f32 and f64 are supported"),
    };
    Ok((out, l.shape().clone()))
}

/// Apply a row kernel to two inputs of the same type.
#[allow(clippy::too_many_arguments)]
fn binary(
    s1: &CpuStorage,
    l1: &Layout,
    s2: &CpuStorage,
    l2: &Layout,
    op: &str,
    f32k: impl Fn(&[f32], &[f32], usize) -> Vec<f32>,
    f64k: impl Fn(&[f64], &[f64], usize) -> Vec<f64>,
) -> Result<(CpuStorage, Shape)> {
    let w = row_width(l1);
    let out = match (s1, s2) {
        (CpuStorage::F32(a), CpuStorage::F32(b)) => {
            CpuStorage::F32(f32k(view(a, l1, op)?, view(b, l2, op)?, w))
        }
        (CpuStorage::F64(a), CpuStorage::F64(b)) => {
            CpuStorage::F64(f64k(view(a, l1, op)?, view(b, l2, op)?, w))
        }
        _ => candle_core::bail!("{op}: only f32 and f64 are supported"),
    };
    Ok((out, l1.shape().clone()))
}

/// Layer norm over the last dimension, without affine parameters.
struct Norm {
    eps: f64,
}

struct NormGrad {
    eps: f64,
}

impl CustomOp1 for Norm {
    fn name(&self) -> &'static str {
        "fused-norm"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let eps = self.eps;
        unary(
            s,
            l,
            self.name(),
            |x, w| norm_fwd(x, w, eps),
            |x, w| norm_fwd(x, w, eps),
        )
    }
    fn bwd(&self, arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let g = grad.contiguous()?;
        Ok(Some(arg.apply_op2_no_bwd(&g, &NormGrad { eps: self.eps })?))
    }
}

impl CustomOp2 for NormGrad {
    fn name(&self) -> &'static str {
        "fused-norm-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let eps = self.eps;
        binary(
            s1,
            l1,
            s2,
            l2,
            self.name(),
            |x, g, w| norm_bwd(x, g, w, eps),
            |x, g, w| norm_bwd(x, g, w, eps),
        )
    }
}

/// Softmax over the last dimension.
struct Softmax;

struct SoftmaxGrad;

impl CustomOp1 for Softmax {
    fn name(&self) -> &'static str {
        "fused-softmax"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        unary(s, l, self.name(), softmax_fwd, softmax_fwd)
    }
    fn bwd(&self, _arg: &Tensor, res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let g = grad.contiguous()?;
        Ok(Some(res.apply_op2_no_bwd(&g, &SoftmaxGrad)?))
    }
}

impl CustomOp2 for SoftmaxGrad {
    fn name(&self) -> &'static str {
        "fused-softmax-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        binary(s1, l1, s2, l2, self.name(), softmax_bwd, softmax_bwd)
    }
}

/// Layer norm over the last dimension without affine parameters, differentiable.
pub fn norm(x: &Tensor, eps: f64) -> Result<Tensor> {
    let x = x.contiguous()?;
    if !x.track_op() {
        // No gradient needed: candle's multi-threaded kernel is faster than this one.
        let w = x.dim(candle_core::D::Minus1)?;
        let ones = Tensor::ones(w, x.dtype(), x.device())?;
        let zeros = Tensor::zeros(w, x.dtype(), x.device())?;
        return candle_nn::ops::layer_norm(&x, &ones, &zeros, eps as f32);
    }
    if x.device().is_cpu() {
        return x.apply_op1(Norm { eps });
    }
    let mean = x.mean_keepdim(candle_core::D::Minus1)?;
    let centred = x.broadcast_sub(&mean)?;
    let var = centred.sqr()?.mean_keepdim(candle_core::D::Minus1)?;
    centred.broadcast_div(&(var + eps)?.sqrt()?)
}

/// Softmax over the last dimension, differentiable.
pub fn softmax(x: &Tensor) -> Result<Tensor> {
    if !x.track_op() {
        // No gradient needed: candle's fused multi-threaded kernel.
        return candle_nn::ops::softmax_last_dim(x);
    }
    if x.device().is_cpu() {
        return x.contiguous()?.apply_op1(Softmax);
    }
    candle_nn::ops::softmax(x, candle_core::D::Minus1)
}
