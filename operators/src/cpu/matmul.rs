//! The one entry point of ldae's own matrix products: gemm's kernels, at the level
//! [`Isa::active`] chooses. `gemm::gemm` picks its kernel from the CPU alone; this calls the
//! same crate's kernel of the chosen level by name, so `LDAE_MAX_CPU_ISA` reaches the products.

use super::isa::Isa;
use gemm_common::gemm::gemm_basic_generic;
use gemm_common::Parallelism;

/// A float type gemm has kernels for at every level.
pub trait Element: Copy + Send + Sync + 'static {
    /// `1` in this type.
    const ONE: Self;
    /// `0` in this type.
    const ZERO: Self;

    /// gemm's kernel for this type at `isa`, on the column-major-destination form of a
    /// product (see [`matmul`]); the arguments are gemm's, in its order.
    ///
    /// # Safety
    /// As [`matmul`].
    #[allow(clippy::too_many_arguments)]
    unsafe fn kernel(
        isa: Isa,
        m: usize,
        n: usize,
        k: usize,
        dst: (*mut Self, isize, isize),
        read_dst: bool,
        lhs: (*const Self, isize, isize),
        rhs: (*const Self, isize, isize),
        alpha: Self,
        beta: Self,
    );
}

/// `Element` for one type: gemm's scalar, FMA (AVX2) and AVX-512 kernels of it, with the
/// number of values in one register of each (256 and 512 bits), as gemm's own dispatch
/// (`gemm_def!`) instantiates them.
macro_rules! element {
    ($t:ident, $crate_:ident, $fma_n:expr, $avx512_n:expr) => {
        impl Element for $t {
            const ONE: Self = 1.0;
            const ZERO: Self = 0.0;

            unsafe fn kernel(
                isa: Isa,
                m: usize,
                n: usize,
                k: usize,
                (dst, dst_cs, dst_rs): (*mut Self, isize, isize),
                read_dst: bool,
                (lhs, lhs_cs, lhs_rs): (*const Self, isize, isize),
                (rhs, rhs_cs, rhs_rs): (*const Self, isize, isize),
                alpha: Self,
                beta: Self,
            ) {
                macro_rules! run {
                    ($simd:ty, $module:ident, $n:expr) => {{
                        use $crate_::microkernel::$module::$t as ukr;
                        let simd =
                            <$simd as gemm_common::simd::MixedSimd<$t, $t, $t, $t>>::try_new()
                                .expect("the CPU supports the level Isa::active chose");
                        gemm_basic_generic::<
                            _,
                            $t,
                            { $n },
                            { ukr::MR_DIV_N * $n },
                            { ukr::NR },
                            { ukr::MR_DIV_N },
                            { ukr::H_M },
                            { ukr::H_N },
                        >(
                            simd,
                            m,
                            n,
                            k,
                            dst,
                            dst_cs,
                            dst_rs,
                            read_dst,
                            lhs,
                            lhs_cs,
                            lhs_rs,
                            rhs,
                            rhs_cs,
                            rhs_rs,
                            alpha,
                            beta,
                            false,
                            false,
                            false,
                            |a, b, c| a * b + c,
                            &ukr::UKR,
                            &ukr::H_UKR,
                            false,
                            Parallelism::None,
                        )
                    }};
                }
                match isa {
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => run!(gemm_common::simd::V4, avx512f, $avx512_n),
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => run!(gemm_common::simd::V3, fma, $fma_n),
                    _ => run!(gemm_common::simd::Scalar, scalar, 1),
                }
            }
        }
    };
}

element!(f32, gemm_f32, 8, 16);
element!(f64, gemm_f64, 4, 8);

/// Reduction rows per gemm call when gemm would pack a row-major right-hand side (see
/// [`matmul`]).
const PACKED_BLOCK: usize = 256;

/// `dst (m x n) = beta * lhs (m x k) @ rhs (k x n)`, added onto `dst` when `accumulate`, on
/// the calling thread (callers run many products in parallel instead), with the kernels of
/// [`Isa::active`]. Each matrix is given by pointer and (row stride, column stride).
///
/// When both operands run along the reduction in their outer dimension (a weight gradient
/// `g^T x`, the PCA statistics' `X^T X`), gemm packs the right-hand side of its column-major
/// form panel by panel, each panel read down every row of the reduction block (up to 1024 on
/// a 48 KiB L1 cache): strided reads that missed the L1 cache row after row. The reduction is
/// then cut into blocks of [`PACKED_BLOCK`] rows, each product accumulated onto the last, so a
/// panel's cache lines are still there for the next panel (tiny training at AVX2: weight
/// gradients 58-86 -> 85-90 GFLOP/s, the step about 3% faster). The blocks depend on `k` and
/// the layout only: the same sums in the same order for any tiling or thread count.
///
/// # Safety
/// The pointers must cover the stated shapes and strides; `dst` must be initialised when
/// `accumulate`, and is fully written otherwise.
#[allow(clippy::too_many_arguments)]
pub unsafe fn matmul<T: Element>(
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
    // gemm's kernels write column-major tiles of dst: a row-major dst is computed as its
    // transpose, dst^T = rhs^T lhs^T (what gemm::gemm does before it dispatches), whose
    // right-hand side is lhs^T, with lhs's column stride along the reduction.
    let transposed = dst_cs < dst_rs;
    // gemm's arguments: its (m, n), and (column stride, row stride) of dst, lhs and rhs.
    let (gemm_m, gemm_n, strides) = if transposed {
        (n, m, [dst_rs, dst_cs, rhs_rs, rhs_cs, lhs_rs, lhs_cs])
    } else {
        (m, n, [dst_cs, dst_rs, lhs_cs, lhs_rs, rhs_cs, rhs_rs])
    };
    let [dst_cs, dst_rs, a_cs, a_rs, b_cs, b_rs] = strides.map(|s| s as isize);
    // gemm's right-hand side runs along the reduction with its row stride.
    let block = match b_rs {
        1 => k,
        _ => PACKED_BLOCK,
    }
    .max(1);
    let mut start = 0;
    loop {
        let rows = block.min(k - start);
        let (l, r) = (lhs.add(start * lhs_cs), rhs.add(start * rhs_rs));
        let (a, b) = if transposed { (r, l) } else { (l, r) };
        let accumulate = accumulate || start > 0;
        T::kernel(
            Isa::active(),
            gemm_m,
            gemm_n,
            rows,
            (dst, dst_cs, dst_rs),
            accumulate,
            (a, a_cs, a_rs),
            (b, b_cs, b_rs),
            if accumulate { T::ONE } else { T::ZERO },
            beta,
        );
        start += rows;
        if start >= k {
            break;
        }
    }
}
