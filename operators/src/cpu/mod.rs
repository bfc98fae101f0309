//! What ldae's CPU kernels run on: the instruction-set level (detected, or capped by
//! `LDAE_MAX_CPU_ISA`) and the matrix product every kernel of ldae's own calls.

pub mod isa;
pub mod matmul;

pub use isa::{mul_add_if, vectorize, vectorize_fused, Isa};
pub use matmul::{matmul, Element};
