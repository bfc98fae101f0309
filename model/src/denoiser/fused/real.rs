//! The arithmetic the fused kernels need, for f32 (training) and f64 (gradient checks).
//!
//! The f32 `exp` and `erf` are branch-free polynomial approximations so that the kernels' inner
//! loops vectorise: libm's are scalar calls, and GELU and softmax spent most of their time in
//! them. f64 keeps libm's accurate functions; the tests compare the two.

use ldae_operators::cpu::mul_add_if;

/// A float type the kernels run in.
pub trait Real:
    ldae_operators::cpu::Element
    + PartialOrd
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
    + std::ops::Div<Output = Self>
    + std::ops::AddAssign
{
    /// The value `v` in this type.
    fn of(v: f64) -> Self;
    /// Square root.
    fn sqrt(self) -> Self;
    /// `e^self`. `fused`: the level has FMA (`cpu::vectorize_fused`), so the f32
    /// polynomials use fused multiply-adds.
    fn exp(self, fused: bool) -> Self;
    /// The error function (`fused` as for [`Real::exp`]).
    fn erf(self, fused: bool) -> Self;
    /// `(erf(self), exp(-self^2))`: GELU's gradient needs both, and the f32 error function
    /// computes the exponential anyway.
    fn erf_and_gauss(self, fused: bool) -> (Self, Self);
}

impl Real for f64 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f64::sqrt(self)
    }
    #[inline(always)]
    fn exp(self, _fused: bool) -> Self {
        f64::exp(self)
    }
    #[inline(always)]
    fn erf(self, _fused: bool) -> Self {
        candle_core::cpu::erf::erf_f64(self)
    }
    #[inline(always)]
    fn erf_and_gauss(self, _fused: bool) -> (Self, Self) {
        (candle_core::cpu::erf::erf_f64(self), f64::exp(-self * self))
    }
}

impl Real for f32 {
    #[inline(always)]
    fn of(v: f64) -> Self {
        v as f32
    }
    #[inline(always)]
    fn sqrt(self) -> Self {
        f32::sqrt(self)
    }
    #[inline(always)]
    fn exp(self, fused: bool) -> Self {
        exp_f32(self, fused)
    }
    #[inline(always)]
    fn erf(self, fused: bool) -> Self {
        erf_f32(self, fused)
    }
    #[inline(always)]
    fn erf_and_gauss(self, fused: bool) -> (Self, Self) {
        let gauss = exp_f32(-self * self, fused);
        (erf_given_gauss(self, gauss, fused), gauss)
    }
}

/// `e^x` within 2 ulp for x in [-87, 88] (Cephes' expf: x = n ln2 + r, a degree-6 polynomial in
/// r, times 2^n built from the exponent bits). Below -87 it returns about 1e-38 instead of 0.
/// `fused`: evaluate the polynomial with fused multiply-adds (only where the level has FMA).
#[inline(always)]
pub fn exp_f32(x: f32, fused: bool) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and removing 1.5 * 2^23 (floor() is a libm call without
    // SSE4.1, which blocks vectorisation).
    const ROUND: f32 = 12_582_912.0;
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let madd = |a: f32, b: f32, c: f32| mul_add_if(fused, a, b, c);
    let mut p = 1.987_569_1e-4_f32;
    p = madd(p, r, 1.398_199_9e-3);
    p = madd(p, r, 8.333_452e-3);
    p = madd(p, r, 4.166_579_6e-2);
    p = madd(p, r, 1.666_666_5e-1);
    p = madd(p, r, 0.5);
    let y = madd(p * r, r, r) + 1.0;
    // 2^n from the exponent bits. Adding 2^23 to the integer-valued n + 127 (in 1..=215) puts
    // it in the low mantissa bits; this avoids a float-to-int cast, which does not vectorise.
    let biased = (n + 127.0 + 8_388_608.0).to_bits() & 0x7f_ffff;
    y * f32::from_bits(biased << 23)
}

/// The error function within 1e-6 absolute (Abramowitz and Stegun 7.1.26, whose 1.5e-7 bound
/// f32 rounding loosens; the form PyTorch's vectorised CPU GELU uses).
#[inline(always)]
pub fn erf_f32(x: f32, fused: bool) -> f32 {
    erf_given_gauss(x, exp_f32(-x * x, fused), fused)
}

/// [`erf_f32`] given `gauss = exp(-x^2)`.
#[inline(always)]
fn erf_given_gauss(x: f32, gauss: f32, fused: bool) -> f32 {
    let madd = |a: f32, b: f32, c: f32| mul_add_if(fused, a, b, c);
    let a = x.abs();
    let t = 1.0 / madd(0.327_591_1, a, 1.0);
    let mut poly = madd(1.061_405_4, t, -1.453_152_1);
    poly = madd(poly, t, 1.421_413_7);
    poly = madd(poly, t, -0.284_496_74);
    poly = madd(poly, t, 0.254_829_6);
    let y = madd(-(poly * t), gauss, 1.0);
    y.copysign(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_libm_within_two_ulp() {
        for fused in [false, true] {
            let mut worst = 0f64;
            for i in 0..=200_000 {
                let x = -87.0 + 175.0 * i as f32 / 200_000.0;
                let exact = (x as f64).exp();
                let rel = ((exp_f32(x, fused) as f64 - exact) / exact).abs();
                worst = worst.max(rel);
            }
            assert!(worst < 2.5e-7, "fused {fused}: max relative error {worst}");
            assert_eq!(exp_f32(0.0, fused), 1.0);
            assert!(exp_f32(-1e4, fused) < 1e-37 && exp_f32(-1e4, fused) >= 0.0);
        }
    }

    #[test]
    fn erf_matches_libm_within_1e_6() {
        for fused in [false, true] {
            let mut worst = 0f64;
            for i in 0..=200_000 {
                let x = -8.0 + 16.0 * i as f32 / 200_000.0;
                let exact = candle_core::cpu::erf::erf_f64(x as f64);
                worst = worst.max((erf_f32(x, fused) as f64 - exact).abs());
            }
            assert!(worst < 1e-6, "fused {fused}: max absolute error {worst}");
            assert!(erf_f32(0.0, fused).abs() < 1e-6);
            assert_eq!(erf_f32(-9.0, fused), -1.0);
        }
    }
}
