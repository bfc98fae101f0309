use std::time::Instant;
fn run(m: usize, n: usize, k: usize, lhs_t: bool, par: gemm::Parallelism) -> f64 {
    let a = vec![1.0f32; m * k];
    let b = vec![1.0f32; k * n];
    let mut c = vec![0.0f32; m * n];
    let mut best = f64::INFINITY;
    for _ in 0..10 {
        let s = Instant::now();
        unsafe {
            // lhs (m x k): if lhs_t, stored as k x m row-major (element (i,kk) at kk*m + i)
            let (lcs, lrs) = if lhs_t {
                (m as isize, 1)
            } else {
                (1, k as isize)
            };
            gemm::gemm(
                m,
                n,
                k,
                c.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                lcs,
                lrs,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                par,
            );
        }
        best = best.min(s.elapsed().as_secs_f64());
    }
    best
}
fn main() {
    let r2 = gemm::Parallelism::Rayon(2);
    let none = gemm::Parallelism::None;
    for (m, n, k) in [
        (128usize, 512usize, 8192usize),
        (512, 128, 8192),
        (384, 128, 8192),
        (128, 128, 8192),
    ] {
        let full = run(m, n, k, true, r2);
        let half = run(m, n, k / 2, true, none);
        let gf = |t: f64, kk: usize| 2.0 * (m * n * kk) as f64 / t / 1e9;
        println!(
            "{m}x{n}x{k} lhsT rayon2: {:.2} ms {:.0} GF | half-k single: {:.2} ms {:.0} GF/thread",
            full * 1e3,
            gf(full, k),
            half * 1e3,
            gf(half, k / 2)
        );
        let full_n = run(m, n, k, false, r2);
        println!(
            "   lhs normal rayon2: {:.2} ms {:.0} GF",
            full_n * 1e3,
            gf(full_n, k)
        );
    }
}
