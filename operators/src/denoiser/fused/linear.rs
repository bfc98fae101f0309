//! `x W^T + b` as one product: the bias is written first and the product accumulated onto it.

use super::par::{for_ranges, Shared};
use super::real::Real;
use super::storage::{slots, written, zeros};

/// Rows per block of a forward product (1024 measured fastest of 256 to 2048 on the tiny
/// preset). Each block is one single-threaded product on one of candle's workers: the same
/// threads as every other kernel, where gemm's own rayon threads competed with them for the
/// cores.
const ROW_BLOCK: usize = 1024;

/// `x` `[rows, inputs]`, `w` `[outputs, inputs]`, `b` `[outputs]` -> `[rows, outputs]`.
pub fn forward<T: Real>(x: &[T], w: &[T], b: &[T], inputs: usize) -> Vec<T> {
    let outputs = b.len();
    let rows = x.len() / inputs.max(1);
    let mut out = slots(rows * outputs);
    let dst = Shared::new(&mut out);
    let x_at = x.as_ptr() as usize;
    for_ranges(
        rows.div_ceil(ROW_BLOCK),
        rows * (inputs + outputs),
        |blocks| {
            for block in blocks {
                let (start, end) = (block * ROW_BLOCK, ((block + 1) * ROW_BLOCK).min(rows));
                // SAFETY: block rows start..end of `out` are written by this block only; the
                // pointers cover the stated shapes; rhs (k, j) = w[j, k].
                unsafe {
                    let rows_out = std::slice::from_raw_parts_mut(
                        dst.get().add(start * outputs),
                        (end - start) * outputs,
                    );
                    for row in rows_out.chunks_exact_mut(outputs) {
                        for (o, &v) in row.iter_mut().zip(b) {
                            o.write(v);
                        }
                    }
                    gemm::gemm(
                        end - start,
                        outputs,
                        inputs,
                        rows_out.as_mut_ptr() as *mut T,
                        1,
                        outputs as isize,
                        true,
                        (x_at as *const T).add(start * inputs),
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
                        gemm::Parallelism::None,
                    );
                }
            }
        },
    );
    // SAFETY: every block wrote its rows with the bias before the product accumulated onto it.
    unsafe { written(out) }
}

/// The input gradient `g W` (`g` `[rows, outputs]`, `w` `[outputs, inputs]`) as
/// `[rows, inputs]`, in row blocks as [`forward`].
pub fn input_grad<T: Real>(g: &[T], w: &[T], outputs: usize, inputs: usize) -> Vec<T> {
    let rows = g.len() / outputs.max(1);
    let mut out = slots::<T>(rows * inputs);
    let dst = Shared::new(&mut out);
    let g_at = g.as_ptr() as usize;
    for_ranges(
        rows.div_ceil(ROW_BLOCK),
        rows * (inputs + outputs),
        |blocks| {
            for block in blocks {
                let (start, end) = (block * ROW_BLOCK, ((block + 1) * ROW_BLOCK).min(rows));
                // SAFETY: block rows start..end of `out` are written (alpha 0: not read) by this
                // block only; the pointers cover the stated shapes.
                unsafe {
                    gemm::gemm(
                        end - start,
                        inputs,
                        outputs,
                        dst.get().add(start * inputs) as *mut T,
                        1,
                        inputs as isize,
                        false,
                        (g_at as *const T).add(start * outputs),
                        1,
                        outputs as isize,
                        w.as_ptr(),
                        1,
                        inputs as isize,
                        T::of(0.0),
                        T::of(1.0),
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
            }
        },
    );
    // SAFETY: every block wrote its rows.
    unsafe { written(out) }
}

/// Rows per chunk of a weight gradient. Fixed, so the order of the sum over chunks does not
/// depend on the thread count.
const GRAD_CHUNK: usize = 2048;

/// The weight gradient `g^T x` (`g` `[rows, outputs]`, `x` `[rows, inputs]`) as
/// `[outputs, inputs]`: one product per chunk of rows, the chunks in parallel, then summed in
/// order. The reduction dimension (all rows of the batch) is long and the result small, which
/// one product split over threads handles poorly (60-70% of its speed on other shapes).
pub fn weight_grad<T: Real>(g: &[T], x: &[T], outputs: usize, inputs: usize) -> Vec<T> {
    let rows = g.len() / outputs.max(1);
    let chunks = rows.div_ceil(GRAD_CHUNK).max(1);
    let size = outputs * inputs;
    let mut partial = zeros::<T>(chunks * size);
    let dst = Shared::new(&mut partial);
    let (g_at, x_at) = (g.as_ptr() as usize, x.as_ptr() as usize);
    for_ranges(chunks, g.len() + x.len(), |range| {
        for c in range {
            let (start, end) = (c * GRAD_CHUNK, ((c + 1) * GRAD_CHUNK).min(rows));
            // SAFETY: chunk c reads rows start..end of g and x and writes its own partial.
            unsafe {
                gemm::gemm(
                    outputs,
                    inputs,
                    end - start,
                    dst.get().add(c * size),
                    1,
                    inputs as isize,
                    false,
                    (g_at as *const T).add(start * outputs),
                    outputs as isize, // lhs (o, r) = g[r, o]
                    1,
                    (x_at as *const T).add(start * inputs),
                    1,
                    inputs as isize,
                    T::of(0.0),
                    T::of(1.0),
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        }
    });
    let (first, rest) = partial.split_at_mut(size);
    for part in rest.chunks_exact(size) {
        for (a, &b) in first.iter_mut().zip(part) {
            *a += b;
        }
    }
    partial.truncate(size);
    partial
}
