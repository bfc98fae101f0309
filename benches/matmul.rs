//! Single-threaded matrix-product throughput of ldae's kernels (gemm's, at the instruction-set
//! level `LDAE_MAX_CPU_ISA` allows) on given shapes. `benches/matmul_compare.py` runs it at
//! each level beside `torch.matmul` on one thread.
//!
//! `cargo build --release --bench matmul`, then `matmul M,N,K[,AB] ...`: prints one JSON line
//! per shape and level, `{"shape", "isa", "gflops", "peak_gflops"}` (best of repeated runs of
//! about 0.3 s; `peak_gflops` is one thread's measured f32 multiply-add peak at that level).
//! `AB` gives the operands' layouts as the training step stores them: `n` row-major, `t` stored
//! transposed (`A` as K x M, `B` as N x K); `nt` is a linear layer's forward (`x W^T`), `nn` its
//! input gradient (`g W`), `tn` its weight gradient (`g^T x`). Default `nn`.

use std::time::Instant;

use ldae_operators::cpu::{matmul, Isa};

#[path = "shared/fma_peak.rs"]
mod fma_peak;

fn main() {
    let shapes: Vec<(String, [usize; 3], [bool; 2])> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .map(|a| {
            let parts: Vec<&str> = a.split(',').collect();
            assert!(matches!(parts.len(), 3 | 4), "shapes are M,N,K[,AB]");
            let dims = [0, 1, 2].map(|i| parts[i].parse().expect("M,N,K are numbers"));
            let layout = parts.get(3).copied().unwrap_or("nn");
            assert!(
                matches!(layout, "nn" | "nt" | "tn" | "tt"),
                "layouts are nn, nt, tn or tt"
            );
            let transposed = [0, 1].map(|i| &layout[i..=i] == "t");
            (a.clone(), dims, transposed)
        })
        .collect();
    // The level is fixed per process (LDAE_MAX_CPU_ISA); the script runs one process per level.
    let isa = Isa::active();
    // The ceiling of one thread's products at this level.
    let peak = fma_peak::fma_peak_gflops(isa, 1);
    for (shape, [m, n, k], [a_t, b_t]) in shapes {
        // (row stride, column stride) of each operand as stored.
        let a_strides = if a_t { (1, m) } else { (k, 1) };
        let b_strides = if b_t { (1, k) } else { (n, 1) };
        let a: Vec<f32> = (0..m * k).map(|i| (i % 7) as f32 * 0.1).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 5) as f32 * 0.1).collect();
        let mut c = vec![0f32; m * n];
        let run = |c: &mut [f32]| unsafe {
            // SAFETY: a holds m x k values, b k x n, c m x n (row-major); the strides
            // address each within its buffer.
            matmul(
                (m, n, k),
                c.as_mut_ptr(),
                (n, 1),
                false,
                a.as_ptr(),
                a_strides,
                b.as_ptr(),
                b_strides,
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
            "{{\"shape\": \"{shape}\", \"isa\": \"{isa}\", \"gflops\": {:.1}, \"peak_gflops\": {peak:.1}}}",
            flops / best / 1e9
        );
    }
}
