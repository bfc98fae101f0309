//! AdamW's update on the CPU as in-place passes over contiguous f32 storage: the two moments,
//! then the parameter. candle's composite form ran a dozen elementwise operations per
//! parameter, each allocating a tensor of the parameter's size: 0.4 s of a 3.3 s training step
//! of the `small` preset (65M parameters). The arithmetic here is the composite form's,
//! operation for operation in f32 (candle's `x * c` is `x * c + 0`), so the results are the
//! same bits; a test holds them to that.

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor};

use crate::par::{for_ranges, Shared};
use ldae_operators::cpu::vectorize;

/// Elements per parallel chunk: fixed, so the split never depends on the thread count (each
/// element's arithmetic is independent anyway). Small enough that the `tiny` preset's weight
/// matrices (16k-65k values) are shared by the cores rather than updated by one while the
/// others wait.
const CHUNK: usize = 1 << 13;

/// Whether the in-place kernels serve this tensor: f32, contiguous, on the CPU.
pub fn serves(t: &Tensor) -> bool {
    t.device().is_cpu() && t.dtype() == candle_core::DType::F32 && t.is_contiguous()
}

/// The f32 values a contiguous layout covers.
fn values<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let all = s.as_slice::<f32>()?;
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&all[start..end]),
        None => candle_core::bail!("adamw: expected a contiguous tensor"),
    }
}

/// The f32 values a contiguous layout covers, to write.
fn values_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    let CpuStorage::F32(all) = s else {
        candle_core::bail!("adamw: expected f32 storage")
    };
    match l.contiguous_offsets() {
        Some((start, end)) => Ok(&mut all[start..end]),
        None => candle_core::bail!("adamw: expected a contiguous tensor"),
    }
}

/// `dst[i] = f(i, dst[i])` over chunks of [`CHUNK`] elements on candle's worker pool.
fn update_each(dst: &mut [f32], f: impl Fn(usize, f32) -> f32 + Sync) {
    let len = dst.len();
    let at = Shared::new(dst);
    for_ranges(len.div_ceil(CHUNK), len, |chunks| {
        for c in chunks {
            let range = c * CHUNK..((c + 1) * CHUNK).min(len);
            // SAFETY: the chunks are disjoint and inside `dst`, which outlives the call.
            let part =
                unsafe { std::slice::from_raw_parts_mut(at.get().add(range.start), range.len()) };
            // Compiled for the active instruction-set level (see cpu::isa); the same
            // operations in the same order as the scalar form, so the same bits.
            vectorize(
                #[inline(always)]
                || {
                    for (j, v) in part.iter_mut().enumerate() {
                        *v = f(range.start + j, *v);
                    }
                },
            )
        }
    });
}

/// A moment estimate, in place: `m = m * decay + g * (1 - decay)`, or with `g * g` for the
/// second moment.
pub struct Moment {
    /// The decay (beta1 or beta2).
    pub decay: f64,
    /// The second moment (of the squared gradient).
    pub square: bool,
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "adamw-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let g = values(s2, l2)?;
        let m = values_mut(s1, l1)?;
        if g.len() != m.len() {
            candle_core::bail!(
                "adamw: moment of {} values, gradient of {}",
                m.len(),
                g.len()
            );
        }
        let (keep, take) = (self.decay as f32, (1.0 - self.decay) as f32);
        let square = self.square;
        update_each(m, |i, m| {
            let x = if square { g[i] * g[i] } else { g[i] };
            (m * keep + 0.0) + (x * take + 0.0)
        });
        Ok(())
    }
}

/// The parameter step, in place: `p = p * (1 - lr * wd) - lr * (m * sm) / (sqrt(v * sv) + eps)`
/// with the bias corrections `sm`, `sv`.
pub struct Step {
    /// Learning rate.
    pub lr: f64,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// First-moment bias correction, `1 / (1 - beta1^t)`.
    pub scale_m: f64,
    /// Second-moment bias correction, `1 / (1 - beta2^t)`.
    pub scale_v: f64,
    /// Added to the root of the second moment.
    pub eps: f64,
}

impl InplaceOp3 for Step {
    fn name(&self) -> &'static str {
        "adamw-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let (m, v) = (values(s2, l2)?, values(s3, l3)?);
        let p = values_mut(s1, l1)?;
        if m.len() != p.len() || v.len() != p.len() {
            candle_core::bail!("adamw: parameter and moments differ in size");
        }
        let decay = (1.0 - self.lr * self.weight_decay) as f32;
        let (lr, sm, sv, eps) = (
            self.lr as f32,
            self.scale_m as f32,
            self.scale_v as f32,
            self.eps as f32,
        );
        update_each(p, |i, p| {
            let update = (m[i] * sm + 0.0) / ((v[i] * sv + 0.0).sqrt() * 1.0 + eps);
            (p * decay + 0.0) - (update * lr + 0.0)
        });
        Ok(())
    }
}
