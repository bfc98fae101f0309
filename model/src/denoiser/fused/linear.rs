//! The linear layer's products: `x W^T + b` (bias written first, the product accumulated onto
//! it), the input gradient `g W` and the weight gradient `g^T x`, each as single-threaded
//! products over tiles (row blocks, cut into column blocks when there are fewer row blocks
//! than threads) spread over candle's workers.

use std::ops::Range;

use super::real::Real;
use super::rows::add_rows_into;
use super::storage::{slots, written, zeros};
use crate::par::{for_ranges, pool_threads, Shared};
use ldae_operators::cpu::matmul as product;

/// Rows per block of a forward or input-gradient product at most. Each block is one
/// single-threaded product on one of candle's workers (the same threads as every other kernel,
/// where gemm's own rayon threads competed with them for the cores), and each packs its part of
/// the weight again: on 2 threads, `tiny`'s 8192-row products ran inference 5% faster in two
/// blocks than in eight (training the same), `small`'s 1568 rows 14% faster in two than in
/// eight tiles.
const ROW_BLOCK: usize = 4096;

/// Rows of a forward or input-gradient block at least. Above 64, so that no tile takes gemm's
/// paths for small products, whose reduction is blocked differently (see [`Rows::Free`]).
const MIN_ROWS: usize = 128;

/// Rows per chunk of a weight gradient. Fixed, so the order of the sum over chunks does not
/// depend on the thread count.
const GRAD_CHUNK: usize = 2048;

/// Narrowest column block (a multiple of the kernels' 16-wide register tiles).
const MIN_COLS: usize = 64;

/// How the rows of a product may be cut into tiles.
#[derive(Clone, Copy)]
enum Rows {
    /// Any way: every element is one product over the whole reduction, which gemm blocks by the
    /// reduction's length alone (and by the tile's size only for tiles of at most 64 x 64, which
    /// [`MIN_ROWS`] rules out), so the tiling may follow the thread count without changing a
    /// bit. Few tall tiles: each tile packs its part of the weight again, and cutting a
    /// 196-token batch of 8 into eight tiles instead of two cost 14% of `small`'s inference.
    Free,
    /// In chunks of this many rows, fixed: a weight gradient's reduction runs over the rows, and
    /// its per-chunk partial sums are added in chunk order.
    Chunks(usize),
}

/// Run `f(rows, columns)` over the tiles of a `rows x cols` result, in parallel when `work`
/// (elements touched) is large enough: row blocks as `split` allows (for [`Rows::Free`], equal
/// blocks of at most [`ROW_BLOCK`] and at least [`MIN_ROWS`] rows, one per thread at least),
/// each cut into column blocks when there are fewer row blocks than threads. Every element is
/// computed by one product, and its value does not depend on the tiling (see [`Rows`]).
fn for_tiles(
    rows: usize,
    split: Rows,
    cols: usize,
    work: usize,
    f: impl Fn(Range<usize>, Range<usize>) + Sync,
) {
    let threads = pool_threads();
    let block = match split {
        Rows::Free => {
            let most = (rows / MIN_ROWS).clamp(1, 64);
            rows.div_ceil(rows.div_ceil(ROW_BLOCK).max(threads).min(most))
        }
        Rows::Chunks(chunk) => chunk,
    }
    .max(1);
    let row_blocks = rows.div_ceil(block).max(1);
    let wanted = match row_blocks >= threads {
        true => 1,
        false => threads.div_ceil(row_blocks),
    };
    let width = cols
        .div_ceil(wanted.min(cols / MIN_COLS).max(1))
        .next_multiple_of(16)
        .max(1);
    let col_blocks = cols.div_ceil(width).max(1);
    for_ranges(row_blocks * col_blocks, work, |tiles| {
        for t in tiles {
            let (r, c) = (t / col_blocks, t % col_blocks);
            f(
                r * block..((r + 1) * block).min(rows),
                c * width..((c + 1) * width).min(cols),
            );
        }
    });
}

/// `x` `[rows, inputs]`, `w` `[outputs, inputs]`, `b` `[outputs]` -> `[rows, outputs]`; without
/// `add_bias`, `x W^T` alone (for a caller that adds `b` in a pass it makes anyway: writing the
/// bias first sends a whole output through memory once more, 10% of `tiny`'s inference).
pub fn forward<T: Real>(x: &[T], w: &[T], b: &[T], inputs: usize, add_bias: bool) -> Vec<T> {
    let outputs = b.len();
    let rows = x.len() / inputs.max(1);
    let mut out = slots(rows * outputs);
    let dst = Shared::new(&mut out);
    let x_at = x.as_ptr() as usize;
    for_tiles(
        rows,
        Rows::Free,
        outputs,
        rows * (inputs + outputs),
        |r, c| {
            // SAFETY: the tile (rows r, columns c) of `out` is written by this tile only; the
            // pointers cover the stated shapes; rhs (k, j) = w[c.start + j, k].
            unsafe {
                let tile = dst.get().add(r.start * outputs + c.start);
                if add_bias {
                    let bias = &b[c.clone()];
                    for row in 0..r.len() {
                        let at = tile.add(row * outputs) as *mut T;
                        std::ptr::copy_nonoverlapping(bias.as_ptr(), at, bias.len());
                    }
                }
                product(
                    (r.len(), c.len(), inputs),
                    tile as *mut T,
                    (outputs, 1),
                    add_bias,
                    (x_at as *const T).add(r.start * inputs),
                    (inputs, 1),
                    w.as_ptr().add(c.start * inputs),
                    (1, inputs),
                    T::of(1.0),
                );
            }
        },
    );
    // SAFETY: every tile's product wrote its values, or accumulated onto the bias written first.
    unsafe { written(out) }
}

/// The input gradient `g W` (`g` `[rows, outputs]`, `w` `[outputs, inputs]`) as
/// `[rows, inputs]`, in row blocks as [`forward`].
pub fn input_grad<T: Real>(g: &[T], w: &[T], outputs: usize, inputs: usize) -> Vec<T> {
    let rows = g.len() / outputs.max(1);
    let mut out = slots::<T>(rows * inputs);
    let dst = Shared::new(&mut out);
    let g_at = g.as_ptr() as usize;
    for_tiles(
        rows,
        Rows::Free,
        inputs,
        rows * (inputs + outputs),
        |r, c| {
            // SAFETY: the tile (rows r, columns c) of `out` is written (not read) by this tile
            // only; the pointers cover the stated shapes; rhs (k, j) = w[k, c.start + j].
            unsafe {
                product(
                    (r.len(), c.len(), outputs),
                    dst.get().add(r.start * inputs + c.start) as *mut T,
                    (inputs, 1),
                    false,
                    (g_at as *const T).add(r.start * outputs),
                    (outputs, 1),
                    w.as_ptr().add(c.start),
                    (inputs, 1),
                    T::of(1.0),
                );
            }
        },
    );
    // SAFETY: every tile wrote its values.
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
    // Tiles: a chunk of rows (the reduction) by a block of outputs (the result's rows).
    for_tiles(
        rows,
        Rows::Chunks(GRAD_CHUNK),
        outputs,
        g.len() + x.len(),
        |r, o| {
            // SAFETY: this tile reads rows r of g and x and writes only outputs o of its chunk's
            // own partial.
            unsafe {
                product(
                    (o.len(), inputs, r.len()),
                    dst.get()
                        .add(r.start / GRAD_CHUNK * size + o.start * inputs),
                    (inputs, 1),
                    false,
                    (g_at as *const T).add(r.start * outputs + o.start),
                    (1, outputs), // lhs (o, r) = g[r, o]
                    (x_at as *const T).add(r.start * inputs),
                    (inputs, 1),
                    T::of(1.0),
                );
            }
        },
    );
    let (first, rest) = partial.split_at_mut(size);
    add_rows_into(first, rest);
    partial.truncate(size);
    partial
}
