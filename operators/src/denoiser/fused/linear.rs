//! `x W^T + b` as one product: the bias is written first and the product accumulated onto it.

use super::par::for_rows;
use super::real::Real;
use super::storage::{slots, written};

/// `x` `[rows, inputs]`, `w` `[outputs, inputs]`, `b` `[outputs]` -> `[rows, outputs]`.
pub fn forward<T: Real>(x: &[T], w: &[T], b: &[T], inputs: usize) -> Vec<T> {
    let outputs = b.len();
    let rows = x.len() / inputs.max(1);
    let mut out = slots(rows * outputs);
    for_rows(&mut out, outputs, |_, part| {
        for row in part.chunks_exact_mut(outputs) {
            for (o, &v) in row.iter_mut().zip(b) {
                o.write(v);
            }
        }
    });
    let threads = candle_core::utils::get_num_threads();
    let parallelism = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the pointers cover the stated shapes; rhs (k, j) = w[j, k].
    unsafe {
        gemm::gemm(
            rows,
            outputs,
            inputs,
            out.as_mut_ptr() as *mut T,
            1,
            outputs as isize,
            true,
            x.as_ptr(),
            1,
            inputs as isize,
            w.as_ptr(),
            inputs as isize,
            1,
            T::of(1.0),
            T::of(1.0),
            false,
            false,
            false,
            parallelism,
        );
    }
    // SAFETY: every row was written with the bias before the product accumulated onto it.
    unsafe { written(out) }
}
