//! The linear layer's products: `x W^T + b` (bias written first, the product accumulated onto
//! it), the input gradient `g W` and the weight gradient `g^T x`, each as single-threaded
//! products over fixed row blocks spread over candle's workers.

use super::par::{for_ranges, Shared};
use super::product::product;
use super::real::Real;
use super::storage::{slots, written, zeros};

/// Rows per block of a forward or input-gradient product (1024 measured fastest of 256 to 2048
/// on the tiny preset). Each block is one single-threaded product on one of candle's workers:
/// the same threads as every other kernel, where gemm's own rayon threads competed with them
/// for the cores.
const ROW_BLOCK: usize = 1024;

/// Rows per chunk of a weight gradient. Fixed, so the order of the sum over chunks does not
/// depend on the thread count.
const GRAD_CHUNK: usize = 2048;

/// Run `f(start, end)` for consecutive blocks of `block` rows out of `rows`, the blocks in
/// parallel when `work` (elements touched) is large enough.
fn for_blocks(rows: usize, block: usize, work: usize, f: impl Fn(usize, usize) + Sync) {
    for_ranges(rows.div_ceil(block), work, |blocks| {
        for b in blocks {
            f(b * block, ((b + 1) * block).min(rows));
        }
    });
}

/// `x` `[rows, inputs]`, `w` `[outputs, inputs]`, `b` `[outputs]` -> `[rows, outputs]`.
pub fn forward<T: Real>(x: &[T], w: &[T], b: &[T], inputs: usize) -> Vec<T> {
    let outputs = b.len();
    let rows = x.len() / inputs.max(1);
    let mut out = slots(rows * outputs);
    let dst = Shared::new(&mut out);
    let x_at = x.as_ptr() as usize;
    for_blocks(rows, ROW_BLOCK, rows * (inputs + outputs), |start, end| {
        // SAFETY: rows start..end of `out` are written by this block only; the pointers cover
        // the stated shapes; rhs (k, j) = w[j, k].
        unsafe {
            let block = std::slice::from_raw_parts_mut(
                dst.get().add(start * outputs),
                (end - start) * outputs,
            );
            for row in block.chunks_exact_mut(outputs) {
                for (o, &v) in row.iter_mut().zip(b) {
                    o.write(v);
                }
            }
            product(
                (end - start, outputs, inputs),
                block.as_mut_ptr() as *mut T,
                (outputs, 1),
                true,
                (x_at as *const T).add(start * inputs),
                (inputs, 1),
                w.as_ptr(),
                (1, inputs),
                T::of(1.0),
            );
        }
    });
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
    for_blocks(rows, ROW_BLOCK, rows * (inputs + outputs), |start, end| {
        // SAFETY: rows start..end of `out` are written (not read) by this block only; the
        // pointers cover the stated shapes.
        unsafe {
            product(
                (end - start, inputs, outputs),
                dst.get().add(start * inputs) as *mut T,
                (inputs, 1),
                false,
                (g_at as *const T).add(start * outputs),
                (outputs, 1),
                w.as_ptr(),
                (inputs, 1),
                T::of(1.0),
            );
        }
    });
    // SAFETY: every block wrote its rows.
    unsafe { written(out) }
}

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
    for_blocks(rows, GRAD_CHUNK, g.len() + x.len(), |start, end| {
        // SAFETY: this chunk reads rows start..end of g and x and writes only its own partial.
        unsafe {
            product(
                (outputs, inputs, end - start),
                dst.get().add(start / GRAD_CHUNK * size),
                (inputs, 1),
                false,
                (g_at as *const T).add(start * outputs),
                (1, outputs), // lhs (o, r) = g[r, o]
                (x_at as *const T).add(start * inputs),
                (inputs, 1),
                T::of(1.0),
            );
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
