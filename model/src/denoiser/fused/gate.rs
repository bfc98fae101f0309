//! SwiGLU's gate in one pass, for inference: a first layer's output `[.., 2H]` (gate then value)
//! to `silu(gate) * value` `[.., H]`, row by row in parallel. Composed of candle's operations
//! (two strided views, SiLU, a product) it makes two `[.., H]` temporaries and a strided pass.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape};
use ldae_operators::cpu::vectorize_fused;

use super::real::Real;
use super::storage::{cpu_fwd_by_type, input, zeros, Stored};
use crate::par::for_rows;

/// `silu(y[.., :H]) * y[.., H:]` of `y` `[.., 2H]`.
pub struct SiluGate;

impl SiluGate {
    fn fwd<T: Stored>(&self, s: [(&CpuStorage, &Layout); 1]) -> Result<(CpuStorage, Shape)> {
        let y = input::<T>(s[0].0, s[0].1, self.name())?;
        let mut dims = s[0].1.shape().dims().to_vec();
        let Some(last) = dims.last_mut().filter(|w| **w % 2 == 0) else {
            candle_core::bail!("{}: the last dimension is not gate and value", self.name());
        };
        let hidden = *last / 2;
        *last = hidden;
        let mut out = zeros::<T>(y.len() / 2);
        for_rows(&mut out, hidden, |first, rows| {
            gate_rows(y, first, rows, hidden)
        });
        Ok((T::storage(out), Shape::from(dims)))
    }
}

/// Rows `first..` of the gate into `rows` (each `hidden` wide).
fn gate_rows<T: Real>(y: &[T], first: usize, rows: &mut [T], hidden: usize) {
    // The body runs compiled for the active instruction-set level (see cpu::isa).
    vectorize_fused(
        #[inline(always)]
        |fused| {
            for (i, row) in rows.chunks_exact_mut(hidden).enumerate() {
                let (gate, value) = y[(first + i) * 2 * hidden..][..2 * hidden].split_at(hidden);
                for j in 0..hidden {
                    let g = gate[j];
                    row[j] = g / (T::of(1.0) + (T::of(0.0) - g).exp(fused)) * value[j];
                }
            }
        },
    )
}

impl CustomOp1 for SiluGate {
    fn name(&self) -> &'static str {
        "fused-silu-gate"
    }
    cpu_fwd_by_type!(1);
}
