//! ldae's decode operator and what it needs: encoded images (JPEG, PNG) or raw pixels to
//! `pixels [S, S, C]` ([`decode`]), the JPEG fast paths ([`jpeg`]), the seeded
//! random-resized-crop ([`augment`]) and the per-row random streams ([`rowseed`]).
//!
//! A crate of its own so that its image code (generic resize and conversion kernels) compiles
//! once and beside the numeric crates, not inside `ldae-operators` twice (library and tests);
//! `ldae-operators` re-exports these modules under the same names.

pub mod augment;
pub mod decode;
pub mod jpeg;
pub mod rowseed;
