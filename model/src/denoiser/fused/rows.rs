//! Row-wise kernels of a transformer block, forward and backward: the adaLN-modulated layer
//! norm, the gated residual, GELU and column sums (bias gradients). Rows are tokens of width
//! `w`; `tokens` rows belong to one image, whose modulation vectors are one row of `[B, w]`.

use ldae_operators::cpu::{vectorize, vectorize_fused};

use super::real::Real;
use crate::par::{for_ranges, for_rows, Shared};
use std::mem::MaybeUninit;

use super::storage::{slots, sum_of, written, zeros};

/// `len` values in rows of `width`, written in parallel by `fill(first_row, rows)`.
///
/// # Safety
/// `fill` must write every slot of the rows it is given.
unsafe fn filled_rows<T: Real>(
    len: usize,
    width: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut out = slots::<T>(len);
    for_rows(&mut out, width, fill);
    written(out)
}

/// Mean and 1/sqrt(var + eps) of a row; uncentred (an RMSNorm's), zero and
/// 1/sqrt(mean(x^2) + eps).
#[inline(always)]
fn moments<T: Real>(row: &[T], eps: f64, centred: bool) -> (T, T) {
    let n = T::of(row.len() as f64);
    let mean = match centred {
        true => sum_of(row.len(), |i| row[i]) / n,
        false => T::of(0.0),
    };
    let var = sum_of(row.len(), |i| (row[i] - mean) * (row[i] - mean)) / n;
    (mean, T::of(1.0) / (var + T::of(eps)).sqrt())
}

/// `norm(x) * (1 + scale) + shift` for `x` `[B*tokens, w]`, `shift`/`scale` `[B, w]`: a layer
/// norm when `centred`, else an RMS norm.
pub fn modulated_norm<T: Real>(
    x: &[T],
    shift: &[T],
    scale: &[T],
    dims: (usize, usize),
    eps: f64,
    centred: bool,
) -> Vec<T> {
    // SAFETY: the closure writes every slot of the rows it is given.
    unsafe {
        filled_rows(x.len(), dims.1, |first, rows| {
            modulated_norm_rows(x, shift, scale, dims, (eps, centred), first, rows)
        })
    }
}

fn modulated_norm_rows<T: Real>(
    x: &[T],
    shift: &[T],
    scale: &[T],
    (tokens, w): (usize, usize),
    (eps, centred): (f64, bool),
    first: usize,
    rows: &mut [MaybeUninit<T>],
) {
    // The body runs compiled for the active instruction-set level (see cpu::isa).
    vectorize(
        #[inline(always)]
        || {
            for (i, y) in rows.chunks_exact_mut(w).enumerate() {
                let r = first + i;
                let b = r / tokens;
                let xr = &x[r * w..(r + 1) * w];
                let (sh, sc) = (&shift[b * w..(b + 1) * w], &scale[b * w..(b + 1) * w]);
                let (mean, inv) = moments(xr, eps, centred);
                for j in 0..w {
                    y[j].write((xr[j] - mean) * inv * (T::of(1.0) + sc[j]) + sh[j]);
                }
            }
        },
    )
}

/// The gradient of [`modulated_norm`] with respect to `x`, given the output gradient `g`.
pub fn modulated_norm_dx<T: Real>(
    x: &[T],
    scale: &[T],
    g: &[T],
    dims: (usize, usize),
    eps: f64,
) -> Vec<T> {
    // SAFETY: the closure writes every slot of the rows it is given.
    unsafe {
        filled_rows(x.len(), dims.1, |first, rows| {
            modulated_norm_dx_rows(x, scale, g, dims, eps, first, rows)
        })
    }
}

fn modulated_norm_dx_rows<T: Real>(
    x: &[T],
    scale: &[T],
    g: &[T],
    (tokens, w): (usize, usize),
    eps: f64,
    first: usize,
    rows: &mut [MaybeUninit<T>],
) {
    // The body runs compiled for the active instruction-set level (see cpu::isa).
    vectorize(
        #[inline(always)]
        || {
            let n = T::of(w as f64);
            let mut dxhat = vec![T::of(0.0); w];
            for (i, dx) in rows.chunks_exact_mut(w).enumerate() {
                let r = first + i;
                let b = r / tokens;
                let (xr, gr) = (&x[r * w..(r + 1) * w], &g[r * w..(r + 1) * w]);
                let sc = &scale[b * w..(b + 1) * w];
                let (mean, inv) = moments(xr, eps, true);
                for j in 0..w {
                    dxhat[j] = gr[j] * (T::of(1.0) + sc[j]);
                }
                let mean_g = sum_of(w, |j| dxhat[j]) / n;
                let mean_gx = sum_of(w, |j| dxhat[j] * (xr[j] - mean) * inv) / n;
                for j in 0..w {
                    dx[j].write(inv * (dxhat[j] - mean_g - (xr[j] - mean) * inv * mean_gx));
                }
            }
        },
    )
}

/// The gradients of [`modulated_norm`] with respect to shift and scale, `[B, 2, w]`: per image
/// the sum over its tokens of `g` and of `g * norm(x)`.
pub fn modulated_norm_dparams<T: Real>(x: &[T], g: &[T], dims: (usize, usize), eps: f64) -> Vec<T> {
    let (tokens, w) = dims;
    let images = x.len() / (tokens * w);
    let mut out = zeros(images * 2 * w);
    for_rows(&mut out, 2 * w, |first, parts| {
        modulated_norm_dparams_rows(x, g, dims, eps, first, parts)
    });
    out
}

fn modulated_norm_dparams_rows<T: Real>(
    x: &[T],
    g: &[T],
    (tokens, w): (usize, usize),
    eps: f64,
    first: usize,
    parts: &mut [T],
) {
    // The body runs compiled for the active instruction-set level (see cpu::isa).
    vectorize(
        #[inline(always)]
        || {
            for (i, part) in parts.chunks_exact_mut(2 * w).enumerate() {
                let b = first + i;
                let (dshift, dscale) = part.split_at_mut(w);
                for r in b * tokens..(b + 1) * tokens {
                    let (xr, gr) = (&x[r * w..(r + 1) * w], &g[r * w..(r + 1) * w]);
                    let (mean, inv) = moments(xr, eps, true);
                    for j in 0..w {
                        dshift[j] += gr[j];
                        dscale[j] += gr[j] * (xr[j] - mean) * inv;
                    }
                }
            }
        },
    )
}

/// Rows `[B*tokens, w]` written in parallel by `f(row, gate_row, out_row)`, `gate_row` the
/// row of `gate` `[B, w]` that belongs to the row's image; the body runs compiled for the
/// active instruction-set level (see cpu::isa).
///
/// # Safety
/// `f` must write every slot of the row it is given.
unsafe fn gated_rows<T: Real>(
    len: usize,
    gate: &[T],
    (tokens, w): (usize, usize),
    f: impl Fn(usize, &[T], &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    filled_rows(len, w, |first, rows| {
        vectorize(
            #[inline(always)]
            || {
                for (i, y) in rows.chunks_exact_mut(w).enumerate() {
                    let r = first + i;
                    f(r, &gate[(r / tokens) * w..(r / tokens + 1) * w], y);
                }
            },
        )
    })
}

/// `x + h * gate` for `x`, `h` `[B*tokens, w]` and `gate` `[B, w]`.
pub fn gated_residual<T: Real>(x: &[T], h: &[T], gate: &[T], dims: (usize, usize)) -> Vec<T> {
    let w = dims.1;
    // SAFETY: the closure writes every slot of its row.
    unsafe {
        gated_rows(
            x.len(),
            gate,
            dims,
            #[inline(always)]
            |r, gt, y| {
                let (xr, hr) = (&x[r * w..(r + 1) * w], &h[r * w..(r + 1) * w]);
                for j in 0..w {
                    y[j].write(xr[j] + hr[j] * gt[j]);
                }
            },
        )
    }
}

/// `x + position[token]` for `x` `[B*tokens, w]` and `position` `[tokens, w]`.
pub fn add_position<T: Real>(x: &[T], position: &[T], w: usize) -> Vec<T> {
    let tokens = position.len() / w.max(1);
    // SAFETY: the closure writes every slot of the rows it is given.
    unsafe {
        filled_rows(x.len(), w, |first, rows| {
            // The body runs compiled for the active instruction-set level (see cpu::isa).
            vectorize(
                #[inline(always)]
                || {
                    for (i, y) in rows.chunks_exact_mut(w).enumerate() {
                        let r = first + i;
                        let p = &position[(r % tokens) * w..(r % tokens + 1) * w];
                        for ((o, &a), &b) in y.iter_mut().zip(&x[r * w..(r + 1) * w]).zip(p) {
                            o.write(a + b);
                        }
                    }
                },
            );
        })
    }
}

/// Per image, `[B, w]` from zeros: `add(row, out)` for each of the image's token rows in
/// order, the images in parallel, the body compiled for the active instruction-set level.
fn token_sums<T: Real>(
    images: usize,
    (tokens, w): (usize, usize),
    add: impl Fn(usize, &mut [T]) + Sync,
) -> Vec<T> {
    let mut out = zeros::<T>(images * w);
    for_rows(&mut out, w, |first, rows| {
        vectorize(
            #[inline(always)]
            || {
                for (i, y) in rows.chunks_exact_mut(w).enumerate() {
                    let b = first + i;
                    for r in b * tokens..(b + 1) * tokens {
                        add(r, y);
                    }
                }
            },
        );
    });
    out
}

/// Per image, the mean over its tokens: `x` `[B*tokens, w]` to `[B, w]`.
pub fn mean_tokens<T: Real>(x: &[T], dims: (usize, usize)) -> Vec<T> {
    let (tokens, w) = dims;
    let images = x.len() / (tokens * w).max(1);
    let mut out = token_sums(
        images,
        dims,
        #[inline(always)]
        |r, y| {
            for (o, &v) in y.iter_mut().zip(&x[r * w..(r + 1) * w]) {
                *o += v;
            }
        },
    );
    let inv = T::of(1.0 / tokens as f64);
    for o in out.iter_mut() {
        *o = *o * inv;
    }
    out
}

/// `g * gate`, the gradient of [`gated_residual`] with respect to `h`.
pub fn gated_residual_dh<T: Real>(g: &[T], gate: &[T], dims: (usize, usize)) -> Vec<T> {
    let w = dims.1;
    // SAFETY: the closure writes every slot of its row.
    unsafe {
        gated_rows(
            g.len(),
            gate,
            dims,
            #[inline(always)]
            |r, gt, y| {
                let gr = &g[r * w..(r + 1) * w];
                for j in 0..w {
                    y[j].write(gr[j] * gt[j]);
                }
            },
        )
    }
}

/// Per image, the sum over its tokens of `g * h`: the gradient of [`gated_residual`] with
/// respect to the gate, `[B, w]`.
pub fn gated_residual_dgate<T: Real>(g: &[T], h: &[T], dims: (usize, usize)) -> Vec<T> {
    let (tokens, w) = dims;
    token_sums(
        g.len() / (tokens * w),
        dims,
        #[inline(always)]
        |r, y| {
            let (gr, hr) = (&g[r * w..(r + 1) * w], &h[r * w..(r + 1) * w]);
            for j in 0..w {
                y[j] += gr[j] * hr[j];
            }
        },
    )
}

const FRAC_1_SQRT_2: f64 = std::f64::consts::FRAC_1_SQRT_2;
/// 1 / sqrt(2 pi).
const INV_SQRT_2PI: f64 = 0.398_942_280_401_432_7;

/// Fill `out` (as long as `x`) block by block in parallel, `f(first_index, block)`.
fn map<T: Real>(x: &[T], f: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync) -> Vec<T> {
    let mut out = slots::<T>(x.len());
    const BLOCK: usize = 4096;
    let blocks = x.len().div_ceil(BLOCK);
    let ptr = Shared::new(&mut out);
    let len = x.len();
    for_ranges(blocks, len, |range| {
        let (start, end) = (range.start * BLOCK, (range.end * BLOCK).min(len));
        // SAFETY: the block ranges are disjoint and inside `out`.
        let part = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(start), end - start) };
        f(start, part);
    });
    // SAFETY: `f` writes every element of its block, and the blocks cover `out`.
    unsafe { written(out) }
}

/// Exact (erf) GELU: `x * Phi(x)`.
pub fn gelu<T: Real>(x: &[T]) -> Vec<T> {
    map(x, |start, out| {
        gelu_block(&x[start..start + out.len()], out)
    })
}

/// GELU of `u + b` for `u` `[rows, b.len()]`, `b` added to every row; `u + b` is also written
/// back into `u` (the pre-activation a backward pass needs).
pub fn bias_gelu<T: Real>(u: &mut [T], b: &[T]) -> Vec<T> {
    let (len, width) = (u.len(), b.len().max(1));
    let pre = Shared::new(u);
    // SAFETY: the closure writes every slot of the rows it is given, and touches only the same
    // rows of `u`.
    unsafe {
        filled_rows(len, width, |first, rows| {
            let u = std::slice::from_raw_parts_mut(pre.get().add(first * width), rows.len());
            // The body runs compiled for the active instruction-set level (see cpu::isa).
            vectorize_fused(
                #[inline(always)]
                |fused| {
                    for (ur, yr) in u.chunks_exact_mut(width).zip(rows.chunks_exact_mut(width)) {
                        for ((p, y), &bias) in ur.iter_mut().zip(yr).zip(b) {
                            *p += bias;
                            y.write(gelu_of(*p, fused));
                        }
                    }
                },
            )
        })
    }
}

/// GELU of `u + b` written over `u` `[rows, b.len()]`: [`bias_gelu`] without a backward pass
/// to serve, so without a second buffer (the same values).
pub fn bias_gelu_in_place<T: Real>(u: &mut [T], b: &[T]) {
    let width = b.len().max(1);
    for_rows(u, width, |_, rows| {
        // The body runs compiled for the active instruction-set level (see cpu::isa).
        vectorize_fused(
            #[inline(always)]
            |fused| {
                for row in rows.chunks_exact_mut(width) {
                    for (p, &bias) in row.iter_mut().zip(b) {
                        *p = gelu_of(*p + bias, fused);
                    }
                }
            },
        )
    });
}

/// Exact (erf) GELU of one value: `v * Phi(v)`.
#[inline(always)]
fn gelu_of<T: Real>(v: T, fused: bool) -> T {
    v * T::of(0.5) * (T::of(1.0) + (v * T::of(FRAC_1_SQRT_2)).erf(fused))
}

fn gelu_block<T: Real>(x: &[T], out: &mut [MaybeUninit<T>]) {
    // The body runs compiled for the active instruction-set level (see cpu::isa).
    vectorize_fused(
        #[inline(always)]
        |fused| {
            for (y, &v) in out.iter_mut().zip(x) {
                y.write(gelu_of(v, fused));
            }
        },
    )
}

/// The gradient of [`gelu`]: `g * (Phi(x) + x phi(x))`.
pub fn gelu_dx<T: Real>(x: &[T], g: &[T]) -> Vec<T> {
    map(x, |start, out| {
        let end = start + out.len();
        gelu_dx_block(&x[start..end], &g[start..end], out)
    })
}

fn gelu_dx_block<T: Real>(x: &[T], g: &[T], out: &mut [MaybeUninit<T>]) {
    // The body runs compiled for the active instruction-set level (see cpu::isa).
    vectorize_fused(
        #[inline(always)]
        |fused| {
            for ((y, &v), &d) in out.iter_mut().zip(x).zip(g) {
                // erf(v / sqrt 2) and exp(-v^2 / 2) from one exponential.
                let (erf, gauss) = (v * T::of(FRAC_1_SQRT_2)).erf_and_gauss(fused);
                let cdf = T::of(0.5) * (T::of(1.0) + erf);
                let pdf = T::of(INV_SQRT_2PI) * gauss;
                y.write(d * (cdf + v * pdf));
            }
        },
    )
}

/// Rows per partial sum of [`column_sums`]: fixed, so the order of the sum does not depend on
/// the thread count.
const SUM_BLOCK: usize = 256;

/// Column sums of `g` `[rows, cols]` (the gradient of a bias added to every row): one partial
/// sum per block of [`SUM_BLOCK`] rows, the blocks in parallel, then the partials added in
/// order. (Splitting by columns instead had each thread stride over every row, reading a few
/// values of each cache line: 5% of a `tiny` training step.)
pub fn column_sums<T: Real>(g: &[T], cols: usize) -> Vec<T> {
    let rows = g.len() / cols.max(1);
    let blocks = rows.div_ceil(SUM_BLOCK).max(1);
    let mut partial = zeros::<T>(blocks * cols);
    let ptr = Shared::new(&mut partial);
    for_ranges(blocks, g.len(), |range| {
        for b in range {
            // SAFETY: each block writes only its own row of `partial`.
            let acc = unsafe { std::slice::from_raw_parts_mut(ptr.get().add(b * cols), cols) };
            let end = ((b + 1) * SUM_BLOCK).min(rows);
            add_rows_into(acc, &g[b * SUM_BLOCK * cols..end * cols]);
        }
    });
    let (first, rest) = partial.split_at_mut(cols);
    add_rows_into(first, rest);
    partial.truncate(cols);
    partial
}

/// Add each row of `rows` (rows of `acc.len()` values) onto `acc`, in order.
pub fn add_rows_into<T: Real>(acc: &mut [T], rows: &[T]) {
    // The body runs compiled for the active instruction-set level (see cpu::isa).
    vectorize(
        #[inline(always)]
        || {
            for row in rows.chunks_exact(acc.len().max(1)) {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a += v;
                }
            }
        },
    )
}
