//! Typed, contiguous views of candle CPU storage for the kernels.

use std::mem::MaybeUninit;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, DType, Layout, Result};

use super::real::Real;

/// A [`Real`] that candle stores on the CPU.
pub trait Stored: Real + candle_core::WithDType {
    /// The values, when `storage` holds this type.
    fn values(storage: &CpuStorage) -> Option<&[Self]>;
    /// Wrap computed values.
    fn storage(values: Vec<Self>) -> CpuStorage;
}

impl Stored for f32 {
    fn values(storage: &CpuStorage) -> Option<&[Self]> {
        match storage {
            CpuStorage::F32(v) => Some(v),
            _ => None,
        }
    }
    fn storage(values: Vec<Self>) -> CpuStorage {
        CpuStorage::F32(values)
    }
}

impl Stored for f64 {
    fn values(storage: &CpuStorage) -> Option<&[Self]> {
        match storage {
            CpuStorage::F64(v) => Some(v),
            _ => None,
        }
    }
    fn storage(values: Vec<Self>) -> CpuStorage {
        CpuStorage::F64(values)
    }
}

/// The contiguous values a layout views, of type `T`.
pub fn input<'a, T: Stored>(storage: &'a CpuStorage, layout: &Layout, op: &str) -> Result<&'a [T]> {
    let Some(values) = T::values(storage) else {
        candle_core::bail!("{op}: inputs must all be f32 or all f64");
    };
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&values[start..end]),
        None => candle_core::bail!("{op}: expects contiguous inputs"),
    }
}

/// Run `f32k` or `f64k` by the type of `storage`.
pub fn by_type<R>(
    storage: &CpuStorage,
    op: &str,
    f32k: impl FnOnce() -> Result<R>,
    f64k: impl FnOnce() -> Result<R>,
) -> Result<R> {
    match storage.dtype() {
        DType::F32 => f32k(),
        DType::F64 => f64k(),
        other => candle_core::bail!("{op}: only f32 and f64 are supported, got {other:?}"),
    }
}

/// `n` slots for a kernel that writes every one of them: not zeroed first, since zeroing was a
/// tenth of a training step. Turn into values with [`written`].
pub fn slots<T>(n: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(n);
    v.resize_with(n, MaybeUninit::uninit);
    v
}

/// The values of `slots` once every one has been written.
///
/// # Safety
/// Every slot must have been written.
pub unsafe fn written<T>(slots: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut slots = std::mem::ManuallyDrop::new(slots);
    // SAFETY: MaybeUninit<T> has T's layout; the caller guarantees initialisation.
    Vec::from_raw_parts(slots.as_mut_ptr() as *mut T, slots.len(), slots.capacity())
}

/// `n` zeros (allocated zeroed, so fresh pages are not written twice).
pub fn zeros<T: Real>(n: usize) -> Vec<T> {
    vec![T::of(0.0); n]
}

/// Largest of `values` (at least one) with eight partial maxima, so the loop vectorises.
#[inline(always)]
pub fn max_of<T: Real>(values: &[T]) -> T {
    let pick = |a: T, b: T| if b > a { b } else { a };
    let mut acc = [values[0]; 8];
    // Whole chunks of eight, so no element access is bounds-checked and the lanes vectorise.
    let chunks = values.chunks_exact(8);
    let tail = chunks.remainder();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a = pick(*a, v);
        }
    }
    let mut best = acc.iter().fold(acc[0], |a, &b| pick(a, b));
    for &v in tail {
        best = pick(best, v);
    }
    best
}

/// Sum of `f(0..n)` with eight partial sums, so the loop vectorises; the order is fixed.
#[inline(always)]
pub fn sum_of<T: Real>(n: usize, f: impl Fn(usize) -> T) -> T {
    let mut acc = [T::of(0.0); 8];
    let full = n / 8 * 8;
    let mut i = 0;
    while i < full {
        for (lane, a) in acc.iter_mut().enumerate() {
            *a += f(i + lane);
        }
        i += 8;
    }
    let mut tail = T::of(0.0);
    for j in full..n {
        tail += f(j);
    }
    ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + tail
}

/// The `cpu_fwd` of an operation with `N` inputs whose generic `fwd::<T>` takes them as
/// `[(storage, layout); N]`: runs it for the first input's type (f32 or f64).
macro_rules! cpu_fwd_by_type {
    (1) => {
        fn cpu_fwd(&self, s1: &CpuStorage, l1: &Layout) -> Result<(CpuStorage, Shape)> {
            let s = [(s1, l1)];
            $crate::denoiser::fused::storage::by_type(
                s1,
                self.name(),
                || self.fwd::<f32>(s),
                || self.fwd::<f64>(s),
            )
        }
    };
    (2) => {
        fn cpu_fwd(
            &self,
            s1: &CpuStorage,
            l1: &Layout,
            s2: &CpuStorage,
            l2: &Layout,
        ) -> Result<(CpuStorage, Shape)> {
            let s = [(s1, l1), (s2, l2)];
            $crate::denoiser::fused::storage::by_type(
                s1,
                self.name(),
                || self.fwd::<f32>(s),
                || self.fwd::<f64>(s),
            )
        }
    };
    (3) => {
        fn cpu_fwd(
            &self,
            s1: &CpuStorage,
            l1: &Layout,
            s2: &CpuStorage,
            l2: &Layout,
            s3: &CpuStorage,
            l3: &Layout,
        ) -> Result<(CpuStorage, Shape)> {
            let s = [(s1, l1), (s2, l2), (s3, l3)];
            $crate::denoiser::fused::storage::by_type(
                s1,
                self.name(),
                || self.fwd::<f32>(s),
                || self.fwd::<f64>(s),
            )
        }
    };
}
pub(super) use cpu_fwd_by_type;
