//! One single-threaded matrix product (the kernels run many of them in parallel instead).

use super::real::Real;

/// `dst (m x n) = beta * lhs (m x k) @ rhs (k x n)`, added onto `dst` when `accumulate`. Each
/// matrix is given by pointer and (row stride, column stride).
///
/// # Safety
/// The pointers must cover the stated shapes and strides; `dst` must be initialised when
/// `accumulate`, and is fully written otherwise.
#[allow(clippy::too_many_arguments)]
pub unsafe fn product<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: *mut T,
    (dst_rs, dst_cs): (usize, usize),
    accumulate: bool,
    lhs: *const T,
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: *const T,
    (rhs_rs, rhs_cs): (usize, usize),
    beta: T,
) {
    gemm::gemm(
        m,
        n,
        k,
        dst,
        dst_cs as isize,
        dst_rs as isize,
        accumulate,
        lhs,
        lhs_cs as isize,
        lhs_rs as isize,
        rhs,
        rhs_cs as isize,
        rhs_rs as isize,
        T::of(if accumulate { 1.0 } else { 0.0 }),
        beta,
        false,
        false,
        false,
        gemm::Parallelism::None,
    )
}
