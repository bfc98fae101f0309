//! Per-row random number generators. Every random choice derives from the run seed, the epoch,
//! the row id and what the randomness is for, never from thread scheduling or batch boundaries.

use rand::SeedableRng;
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The generator for row `id` in `epoch` of a run seeded with `seed`, for `purpose` (so that,
/// e.g., augmentation and noise of one row are independent streams).
///
/// ```
/// use rand::Rng;
/// let a: u64 = ldae_operators::rowseed::row_rng(7, 0, "cat/1.jpg", "crop").random();
/// let b: u64 = ldae_operators::rowseed::row_rng(7, 0, "cat/1.jpg", "crop").random();
/// assert_eq!(a, b);
/// ```
pub fn row_rng(seed: u64, epoch: u64, id: &str, purpose: &str) -> rand_chacha::ChaCha8Rng {
    let salt = xxh3_64_with_seed(purpose.as_bytes(), seed);
    let key = xxh3_64_with_seed(
        id.as_bytes(),
        salt ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    rand_chacha::ChaCha8Rng::seed_from_u64(key)
}
