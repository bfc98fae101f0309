//! The x86-64 instruction-set level ldae's kernels run at: the widest the CPU has, or lower
//! when `LDAE_MAX_CPU_ISA` caps it (as oneDNN's `ONEDNN_MAX_CPU_ISA` does), so that one machine
//! can measure and test the paths other machines take.
//!
//! The level is read once per process. It governs ldae's matrix products ([`super::matmul`],
//! which the fused training and inference kernels and the PCA statistics and projection call)
//! and the row kernels run under [`vectorize`]. Products that candle computes itself (the
//! probes, the loss's small projection, non-CPU fallbacks) keep gemm's own choice.

use std::sync::OnceLock;

/// The environment variable that caps the instruction set.
pub const ENV: &str = "LDAE_MAX_CPU_ISA";

/// An x86-64 instruction-set level, in increasing order of width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The x86-64 baseline (SSE2): scalar matrix kernels. On other architectures, everything.
    Baseline,
    /// x86-64-v3: AVX2 and FMA, 256-bit vectors.
    Avx2,
    /// x86-64-v4: AVX-512 (F, BW, CD, DQ, VL), 512-bit vectors.
    Avx512,
}

impl Isa {
    /// Every level, narrowest first.
    pub const ALL: [Isa; 3] = [Isa::Baseline, Isa::Avx2, Isa::Avx512];

    /// The name `LDAE_MAX_CPU_ISA` takes and reports print.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Baseline => "baseline",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The level named `name` (case-insensitive; `sse2` and `avx512f` are accepted too).
    pub fn parse(name: &str) -> Result<Isa, String> {
        match name.trim().to_ascii_lowercase().as_str() {
            "baseline" | "sse2" => Ok(Isa::Baseline),
            "avx2" => Ok(Isa::Avx2),
            "avx512" | "avx512f" => Ok(Isa::Avx512),
            other => Err(format!(
                "{ENV}={other:?}: expected one of baseline, avx2, avx512"
            )),
        }
    }

    /// The widest level this CPU supports.
    pub fn detected() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if pulp::x86::V4::is_available() {
                return Isa::Avx512;
            }
            if pulp::x86::V3::is_available() {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }

    /// The cap `LDAE_MAX_CPU_ISA` sets, if it is set; an error names a value it cannot read.
    pub fn cap_from_env() -> Result<Option<Isa>, String> {
        match std::env::var(ENV) {
            Ok(v) if v.trim().is_empty() => Ok(None),
            Ok(v) => Isa::parse(&v).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(format!("{ENV}: not valid UTF-8")),
        }
    }

    /// The level in use: the detected one, capped by `LDAE_MAX_CPU_ISA`. Read once per process.
    ///
    /// # Panics
    /// When `LDAE_MAX_CPU_ISA` holds a value that names no level (the CLI checks it at start,
    /// with a clear error, before anything runs).
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| match Isa::cap_from_env() {
            Ok(cap) => cap.map_or(Isa::detected(), |c| c.min(Isa::detected())),
            Err(e) => panic!("{e}"),
        })
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One line for reports and bench headers: the level in use, and what caps it.
pub fn describe() -> String {
    let (active, detected) = (Isa::active(), Isa::detected());
    if active == detected {
        format!("{active}")
    } else {
        format!("{active} (capped by {ENV}; the CPU has {detected})")
    }
}

/// Runs `f` compiled for the active level: its body (and every `#[inline(always)]` function
/// it calls) is inlined into a function with that level's target features, so the compiler
/// vectorises its loops with those instructions. `f` should only call into `#[inline(always)]`
/// code for that to reach its inner loops.
#[inline(always)]
pub fn vectorize<R>(f: impl FnOnce() -> R) -> R {
    vectorize_fused(
        #[inline(always)]
        |_| f(),
    )
}

/// [`vectorize`] for bodies that evaluate polynomials: `f(fused)` runs with `fused` true at
/// the levels that have FMA (AVX-512 and AVX2 + FMA), where `f32::mul_add` is one instruction
/// with one rounding, and false at the baseline, where it would be a libm call that does not
/// vectorise (see [`mul_add_if`]). The flag is a constant in each level's copy of `f`.
#[inline(always)]
pub fn vectorize_fused<R>(f: impl FnOnce(bool) -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        match Isa::active() {
            Isa::Avx512 => {
                if let Some(v4) = pulp::x86::V4::try_new() {
                    return v4.vectorize(
                        #[inline(always)]
                        || f(true),
                    );
                }
            }
            Isa::Avx2 => {
                if let Some(v3) = pulp::x86::V3::try_new() {
                    return v3.vectorize(
                        #[inline(always)]
                        || f(true),
                    );
                }
            }
            Isa::Baseline => {}
        }
    }
    f(false)
}

/// `a * b + c`: fused (`mul_add`, one rounding) when `fused`, else a multiply and an add.
#[inline(always)]
pub fn mul_add_if(fused: bool, a: f32, b: f32, c: f32) -> f32 {
    if fused {
        a.mul_add(b, c)
    } else {
        a * b + c
    }
}
