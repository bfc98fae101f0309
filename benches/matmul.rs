//! Single-threaded matrix-product throughput of ldae's kernels (gemm's, at the instruction-set
//! level `LDAE_MAX_CPU_ISA` allows) on given shapes. `benches/matmul_compare.py` runs it at
//! each level beside `torch.matmul` on one thread.
//!
//! `cargo build --release --bench matmul`, then `matmul M,N,K [M,N,K ...]`: prints one JSON line
//! per shape and level, `{"m", "n", "k", "isa", "gflops"}` (best of repeated runs of about 0.3 s).

use std::time::Instant;

use ldae_operators::cpu::{matmul, Isa};

fn main() {
    let shapes: Vec<(usize, usize, usize)> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .map(|a| {
            let v: Vec<usize> = a.split(',').map(|x| x.parse().expect("M,N,K")).collect();
            assert_eq!(v.len(), 3, "shapes are M,N,K");
            (v[0], v[1], v[2])
        })
        .collect();
    // The level is fixed per process (LDAE_MAX_CPU_ISA); the script runs one process per level.
    let isa = Isa::active();
    for (m, n, k) in shapes {
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let run = |c: &mut [f32]| unsafe {
            // SAFETY: a is m x k, b is k x n, c is m x n, all row-major.
            matmul(
                (m, n, k),
                c.as_mut_ptr(),
                (n, 1),
                false,
                a.as_ptr(),
                (k, 1),
                b.as_ptr(),
                (n, 1),
                1.0,
            )
        };
        run(&mut c);
        let flops = 2.0 * (m * n * k) as f64;
        let reps = ((0.05e9 / flops).ceil() as usize).max(1);
        let mut best = f64::INFINITY;
        for _ in 0..6 {
            let start = Instant::now();
            for _ in 0..reps {
                run(&mut c);
            }
            best = best.min(start.elapsed().as_secs_f64() / reps as f64);
        }
        println!(
            "{{\"m\": {m}, \"n\": {n}, \"k\": {k}, \"isa\": \"{isa}\", \"gflops\": {:.1}}}",
            flops / best / 1e9
        );
    }
}
