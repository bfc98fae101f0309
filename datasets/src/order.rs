//! Which rows a source reads, in which order: shuffle, limit, shard.

use rand::seq::SliceRandom;
use rand::SeedableRng;

use ldae_pipeline::{Error, Result};

/// Shard `index` of `count` (`--shard i/n`, zero-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// Which shard, `0..count`.
    pub index: usize,
    /// How many shards in all.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = Error;
    /// Parse `i/n`, e.g. `0/4`.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::msg(format!(
                "--shard '{s}': expected i/n with 0 <= i < n, e.g. 0/4"
            ))
        };
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: usize = i.trim().parse().map_err(|_| bad())?;
        let count: usize = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The row indices to read from a dataset of `len` rows: all rows in dataset order, or a
/// permutation seeded by `seed` when `shuffle`; then the first `limit`; then every
/// `shard.count`-th row starting at `shard.index`.
///
/// ```
/// use ldae_datasets::order::{row_order, Shard};
/// let a = row_order(10, true, 7, None, Some(Shard { index: 0, count: 2 }));
/// let b = row_order(10, true, 7, None, Some(Shard { index: 1, count: 2 }));
/// let mut all: Vec<usize> = a.iter().chain(&b).copied().collect();
/// all.sort();
/// assert_eq!(all, (0..10).collect::<Vec<_>>());
/// ```
pub fn row_order(
    len: usize,
    shuffle: bool,
    seed: u64,
    limit: Option<usize>,
    shard: Option<Shard>,
) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
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
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_disjoint_and_cover_the_limited_set() {
        let n = 4;
        let mut seen = vec![];
        for i in 0..n {
            seen.extend(row_order(
                103,
                true,
                42,
                Some(50),
                Some(Shard { index: i, count: n }),
            ));
        }
        let mut expected = row_order(103, true, 42, Some(50), None);
        assert_eq!(seen.len(), 50);
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn same_seed_same_order_other_seed_other_order() {
        assert_eq!(
            row_order(100, true, 1, None, None),
            row_order(100, true, 1, None, None)
        );
        assert_ne!(
            row_order(100, true, 1, None, None),
            row_order(100, true, 2, None, None)
        );
        assert_eq!(row_order(5, false, 1, None, None), vec![0, 1, 2, 3, 4]);
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
}
