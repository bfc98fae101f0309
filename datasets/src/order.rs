//! Which rows a source reads, in which order: shuffle, limit, shard.

use rand::seq::SliceRandom;
use rand::SeedableRng;

pub use ldae_pipeline::Shard;
use ldae_pipeline::{Error, Result};

/// Most rows a shuffled read can order in memory (one `usize` each).
pub const MAX_SHUFFLED_ROWS: usize = 1 << 32;

/// The row indices to read from a dataset of `len` rows: all rows in dataset order, or a
/// permutation seeded by `seed` when `shuffle`; then the first `limit`; then every
/// `shard.count`-th row starting at `shard.index`.
///
/// ```
/// use ldae_datasets::order::{row_order, Shard};
/// let a = row_order(10, true, 7, None, Some(Shard { index: 0, count: 2 })).unwrap();
/// let b = row_order(10, true, 7, None, Some(Shard { index: 1, count: 2 })).unwrap();
/// let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
/// all.sort();
/// assert_eq!(all, (0..10).collect::<Vec<_>>());
/// ```
///
/// Without a shuffle only the first `limit` rows are listed, so a huge dataset read with a
/// limit costs nothing; a shuffle of more than [`MAX_SHUFFLED_ROWS`] rows is an error.
pub fn row_order(
    len: usize,
    shuffle: bool,
    seed: u64,
    limit: Option<usize>,
    shard: Option<Shard>,
) -> Result<Vec<usize>> {
    if shard.is_some_and(|s| s.count == 0 || s.index >= s.count) {
        return Err(Error::invalid(format!(
            "shard {}: expected i/n with 0 <= i < n",
            shard.map(|s| s.to_string()).unwrap_or_default()
        )));
    }
    if shuffle && len > MAX_SHUFFLED_ROWS {
        return Err(Error::invalid(format!(
            "{len} rows are too many to shuffle in memory (at most {MAX_SHUFFLED_ROWS})"
        )));
    }
    let listed = if shuffle {
        len
    } else {
        limit.map_or(len, |l| l.min(len))
    };
    if listed > MAX_SHUFFLED_ROWS {
        return Err(Error::invalid(format!(
            "{len} rows are too many to list; read them with --limit"
        )));
    }
    let mut order: Vec<usize> = (0..listed).collect();
    if shuffle {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        order.shuffle(&mut rng);
    }
    if let Some(limit) = limit {
        order.truncate(limit);
    }
    if let Some(shard) = shard {
        order = order
            .into_iter()
            .skip(shard.index)
            .step_by(shard.count)
            .collect();
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_the_limited_set() {
        let n = 4;
        let mut seen = vec![];
        for i in 0..n {
            seen.extend(
                row_order(103, true, 42, Some(50), Some(Shard { index: i, count: n })).unwrap(),
            );
        }
        let mut expected = row_order(103, true, 42, Some(50), None).unwrap();
        assert_eq!(seen.len(), 50);
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn same_seed_same_order_other_seed_other_order() {
        let order = |seed| row_order(100, true, seed, None, None).unwrap();
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
        assert_eq!(
            row_order(5, false, 1, None, None).unwrap(),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn shard_parsing() {
        assert_eq!(
            "1/3".parse::<Shard>().unwrap(),
            Shard { index: 1, count: 3 }
        );
        assert!("3/3".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
    }

    #[test]
    fn bad_shards_and_huge_counts_are_errors_not_panics() {
        for (index, count) in [(0, 0), (3, 2), (2, 2)] {
            let text = format!("index = {index}\ncount = {count}\n");
            assert!(toml::from_str::<Shard>(&text).is_err(), "{text}");
            assert!(row_order(10, false, 0, None, Some(Shard { index, count })).is_err());
        }
        // A limit makes a huge unshuffled dataset cheap; a huge shuffle is refused.
        assert_eq!(
            row_order(usize::MAX, false, 0, Some(3), None).unwrap(),
            vec![0, 1, 2]
        );
        assert!(row_order(usize::MAX, true, 0, Some(3), None).is_err());
        assert!(row_order(usize::MAX, false, 0, None, None).is_err());
    }
}
