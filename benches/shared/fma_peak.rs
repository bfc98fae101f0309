//! The machine's measured f32 multiply-add peak at the level ldae's kernels run at: the
//! ceiling a bench's GFLOP/s are a share of. Included by the benches with `#[path]`.
//!
//! Each thread runs 12 independent chains of register-only fused multiply-adds (enough to
//! cover the FMA units' latency), all threads at once, so the clock is the one every core
//! gets under full vector load (lower than one core's turbo, and lower for 512-bit vectors
//! than for 256-bit ones on many Intel parts).

use std::time::Instant;

use ldae_operators::cpu::Isa;

/// Chains per thread.
const CHAINS: usize = 12;

/// GFLOP/s (2 per multiply-add) of `threads` threads running f32 FMAs at `isa` at once: the
/// best of 5 runs of about 0.1 s each (on a shared machine a slower run is another tenant's
/// load, not a lower ceiling).
pub fn fma_peak_gflops(isa: Isa, threads: usize) -> f64 {
    let threads = threads.max(1);
    (0..5)
        .map(|_| {
            let start = Instant::now();
            let flops: f64 = std::thread::scope(|s| {
                let runs: Vec<_> = (0..threads).map(|_| s.spawn(move || run(isa))).collect();
                runs.into_iter().map(|r| r.join().unwrap()).sum()
            });
            flops / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0.0, f64::max)
}

/// One thread's run; returns the floating-point operations it did.
fn run(isa: Isa) -> f64 {
    const ITERS: usize = 20_000_000;
    let lanes = match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Isa::active` chose the level from what the CPU reports.
        Isa::Avx512 => unsafe { x86::chains_512(ITERS / 2) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above.
        Isa::Avx2 => unsafe { x86::chains_256(ITERS) },
        _ => chains_scalar(ITERS / 8),
    };
    lanes as f64 * 2.0
}

/// Scalar chains (`a * b + c`, two operations each): returns multiply-adds done.
fn chains_scalar(iters: usize) -> usize {
    let mut acc = [0f32; CHAINS];
    let (x, y) = std::hint::black_box((1.000_000_1f32, 0.999_999_9f32));
    for _ in 0..iters {
        for a in acc.iter_mut() {
            *a = x * *a + y;
        }
    }
    std::hint::black_box(acc);
    iters * CHAINS
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// 256-bit chains: returns multiply-adds done (8 lanes each).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn chains_256(iters: usize) -> usize {
        let mut acc = [_mm256_setzero_ps(); CHAINS];
        let (x, y) =
            std::hint::black_box((_mm256_set1_ps(1.000_000_1), _mm256_set1_ps(0.999_999_9)));
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm256_fmadd_ps(x, y, *a);
            }
        }
        std::hint::black_box(acc);
        iters * CHAINS * 8
    }

    /// 512-bit chains: returns multiply-adds done (16 lanes each).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn chains_512(iters: usize) -> usize {
        let mut acc = [_mm512_setzero_ps(); CHAINS];
        let (x, y) =
            std::hint::black_box((_mm512_set1_ps(1.000_000_1), _mm512_set1_ps(0.999_999_9)));
        for _ in 0..iters {
            for a in acc.iter_mut() {
                *a = _mm512_fmadd_ps(x, y, *a);
            }
        }
        std::hint::black_box(acc);
        iters * CHAINS * 16
    }
}
