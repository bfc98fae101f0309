//! Multi-head self-attention as one kernel, forward and backward, reading queries, keys and
//! values straight out of the `qkv` projection `[B, N, 3W]` (columns: q | k | v, each split
//! into heads of `hd`) and writing heads straight into `[B, N, W]`: no permuted copies. Each
//! (image, head) is one task with its own N x N scratch; the backward pass recomputes the
//! attention weights instead of keeping them (as flash attention does), which costs one small
//! product and saves a `[B, H, N, N]` tensor per block.

use ldae_operators::cpu::{vectorize, vectorize_fused};

use super::real::Real;
use super::storage::{max_of, slots, sum_of, written, zeros};
use crate::par::{for_ranges, Shared};
use ldae_operators::cpu::matmul as product;

/// Shapes of one attention call.
#[derive(Clone, Copy, Debug)]
pub struct Dims {
    /// Images.
    pub batch: usize,
    /// Tokens per image.
    pub tokens: usize,
    /// Heads.
    pub heads: usize,
    /// Width of one head.
    pub head_dim: usize,
}

impl Dims {
    fn width(&self) -> usize {
        self.heads * self.head_dim
    }
    fn scale(&self) -> f64 {
        1.0 / (self.head_dim as f64).sqrt()
    }
}

/// An additive bias on the attention scores before the softmax, the same for every image
/// (BEiT's relative position bias): head `h`'s score of query `i` and key `j` gains
/// `table[h * entries + index[i * N + j]]`, `entries = table.len() / heads`.
#[derive(Clone, Copy)]
pub struct ScoreBias<'a, T> {
    /// Per head, the bias of each relative position: `[H, entries]`.
    pub table: &'a [T],
    /// Which entry each (query, key) pair reads: `[N, N]`.
    pub index: &'a [u32],
}

/// Softmax of every row (width `n`) of `s`, in place.
fn softmax_rows<T: Real>(s: &mut [T], n: usize) {
    // The body runs compiled for the active instruction-set level (see cpu::isa).
    vectorize_fused(
        #[inline(always)]
        |fused| {
            for row in s.chunks_exact_mut(n) {
                let max = max_of(row);
                let inv = T::of(1.0) / exp_in_place_and_sum(row, max, fused);
                for v in row.iter_mut() {
                    *v = *v * inv;
                }
            }
        },
    )
}

/// `row[i] = exp(row[i] - max)` and their sum, in one pass: sixteen partial sums (two
/// registers at AVX2, one at AVX-512) in a fixed order, so the additions overlap the next
/// exponentials instead of waiting on one chain (a separate summing pass took about a quarter of
/// softmax's time).
#[inline(always)]
fn exp_in_place_and_sum<T: Real>(row: &mut [T], max: T, fused: bool) -> T {
    const LANES: usize = 16;
    let mut acc = [T::of(0.0); LANES];
    let mut chunks = row.chunks_exact_mut(LANES);
    for chunk in &mut chunks {
        for (a, v) in acc.iter_mut().zip(chunk.iter_mut()) {
            *v = (*v - max).exp(fused);
            *a += *v;
        }
    }
    let mut tail = T::of(0.0);
    for v in chunks.into_remainder() {
        *v = (*v - max).exp(fused);
        tail += *v;
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            acc[i] += acc[i + width];
        }
    }
    acc[0] + tail
}

/// `dS = scale * P * (dP - rowsum(P * dP))`, in place of `dp`.
fn softmax_grad_rows<T: Real>(p: &[T], dp: &mut [T], n: usize, scale: T) {
    // The body runs compiled for the active instruction-set level (see cpu::isa).
    vectorize(
        #[inline(always)]
        || {
            for (pr, dr) in p.chunks_exact(n).zip(dp.chunks_exact_mut(n)) {
                let dot = sum_of(n, |j| pr[j] * dr[j]);
                for j in 0..n {
                    dr[j] = scale * pr[j] * (dr[j] - dot);
                }
            }
        },
    )
}

/// Attention weights `P = softmax(scale * Q K^T + bias)` of image `b`, head `h` into `p`
/// (N x N).
///
/// # Safety
/// `qkv` holds `[B, N, 3W]` values covering image `b`; `p` points to N x N writable values.
unsafe fn weights<T: Real>(
    qkv: *const T,
    d: Dims,
    b: usize,
    h: usize,
    bias: Option<ScoreBias<T>>,
    p: *mut T,
) {
    let (n, w) = (d.tokens, d.width());
    let q = qkv.add(b * n * 3 * w + h * d.head_dim);
    let k = q.add(w);
    product(
        (n, n, d.head_dim),
        p,
        (n, 1),
        false,
        q,
        (3 * w, 1),
        k,
        (1, 3 * w), // K^T: element (i, j) is K[j, i]
        T::of(d.scale()),
    );
    // SAFETY: the product above wrote all N x N values.
    let scores = std::slice::from_raw_parts_mut(p, n * n);
    if let Some(bias) = bias {
        let entries = bias.table.len() / d.heads;
        let own = &bias.table[h * entries..(h + 1) * entries];
        for (s, &at) in scores.iter_mut().zip(bias.index) {
            *s += own[at as usize];
        }
    }
    softmax_rows(scores, n);
}

/// Attention output `[B, N, W]` of `qkv` `[B, N, 3W]` (the scores shifted by `bias`, if any),
/// and, when `keep`, the attention weights `[B, H, N, N]` for the backward pass.
pub fn forward<T: Real>(
    qkv: &[T],
    d: Dims,
    keep: bool,
    bias: Option<ScoreBias<T>>,
) -> (Vec<T>, Option<Vec<T>>) {
    let (n, w) = (d.tokens, d.width());
    let tasks = d.batch * d.heads;
    let mut out = slots::<T>(d.batch * n * w);
    let mut kept = keep.then(|| slots::<T>(tasks * n * n));
    let dst = Shared::new(&mut out);
    let weights_dst = kept.as_mut().map(|p| Shared::new(p));
    let src = qkv.as_ptr() as usize;
    for_ranges(tasks, qkv.len(), |range| {
        let qkv = src as *const T;
        let mut scratch = if weights_dst.is_some() {
            Vec::new()
        } else {
            zeros::<T>(n * n)
        };
        for task in range {
            let (b, h) = (task / d.heads, task % d.heads);
            // SAFETY: `qkv` and `out` hold the full shapes; task (b, h) writes only the head-h
            // columns of image b's rows, and its own N x N block of the kept weights.
            unsafe {
                let p: *mut T = match weights_dst {
                    Some(all) => all.get().add(task * n * n) as *mut T,
                    None => scratch.as_mut_ptr(),
                };
                weights(qkv, d, b, h, bias, p);
                let v = qkv.add(b * n * 3 * w + 2 * w + h * d.head_dim);
                let o = dst.get().add(b * n * w + h * d.head_dim) as *mut T;
                product(
                    (n, d.head_dim, n),
                    o,
                    (w, 1),
                    false,
                    p,
                    (n, 1),
                    v,
                    (3 * w, 1),
                    T::of(1.0),
                );
            }
        }
    });
    // SAFETY: every (image, head) task wrote its columns of `out` and its block of `kept`.
    unsafe { (written(out), kept.map(|p| written(p))) }
}

/// The gradient `[B, N, 3W]` with respect to `qkv` given the output gradient `g` `[B, N, W]`
/// and the attention weights `kept` by the forward pass.
pub fn backward<T: Real>(qkv: &[T], g: &[T], kept: &[T], d: Dims) -> Vec<T> {
    let (n, w, hd) = (d.tokens, d.width(), d.head_dim);
    let mut out = slots::<T>(qkv.len());
    let dst = Shared::new(&mut out);
    let (src, grad) = (qkv.as_ptr() as usize, g.as_ptr() as usize);
    let scale = T::of(d.scale());
    for_ranges(d.batch * d.heads, qkv.len(), |tasks| {
        let (qkv, g) = (src as *const T, grad as *const T);
        let mut dp = zeros::<T>(n * n);
        for task in tasks {
            let (b, h) = (task / d.heads, task % d.heads);
            // SAFETY: as in `forward`; task (b, h) writes only head h's q, k and v columns of
            // image b's rows of the gradient.
            unsafe {
                let p = &kept[task * n * n..(task + 1) * n * n];
                let base = b * n * 3 * w + h * hd;
                let (q, k, v) = (qkv.add(base), qkv.add(base + w), qkv.add(base + 2 * w));
                let (dq, dk, dv) = (
                    dst.get().add(base) as *mut T,
                    dst.get().add(base + w) as *mut T,
                    dst.get().add(base + 2 * w) as *mut T,
                );
                let go = g.add(b * n * w + h * hd);
                // dV = P^T dO
                product(
                    (n, hd, n),
                    dv,
                    (3 * w, 1),
                    false,
                    p.as_ptr(),
                    (1, n),
                    go,
                    (w, 1),
                    T::of(1.0),
                );
                // dP = dO V^T
                product(
                    (n, n, hd),
                    dp.as_mut_ptr(),
                    (n, 1),
                    false,
                    go,
                    (w, 1),
                    v,
                    (1, 3 * w),
                    T::of(1.0),
                );
                softmax_grad_rows(p, &mut dp, n, scale);
                // dQ = dS K, dK = dS^T Q
                product(
                    (n, hd, n),
                    dq,
                    (3 * w, 1),
                    false,
                    dp.as_ptr(),
                    (n, 1),
                    k,
                    (3 * w, 1),
                    T::of(1.0),
                );
                product(
                    (n, hd, n),
                    dk,
                    (3 * w, 1),
                    false,
                    dp.as_ptr(),
                    (1, n),
                    q,
                    (3 * w, 1),
                    T::of(1.0),
                );
            }
        }
    });
    // SAFETY: every (image, head) task wrote its q, k and v columns.
    unsafe { written(out) }
}
