//! Which rows a source reads, in which order: shuffle, limit, shard.

use rand::seq::SliceRandom;
use rand::SeedableRng;

pub use ldae_pipeline::Shard;
use ldae_pipeline::{Error, Result};

/// Most rows a shuffled read can order in memory (one `usize` each).
pub const MAX_SHUFFLED_ROWS: usize = 1 << 32;

/// Rows stored in blocks that are read whole (a Parquet table's row groups), of which a reader
/// keeps only `resident` decoded at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocks {
    /// Rows of each block, in dataset order.
    pub rows: Vec<usize>,
    /// How many blocks the reader keeps decoded at once (at least 1).
    pub resident: usize,
}

/// The row indices to read from a dataset of `len` rows: all rows in dataset order, or a
/// permutation seeded by `seed` when `shuffle`; then the first `limit`; then every
/// `shard.count`-th row starting at `shard.index`, except for rows read in order from
/// `blocks`: there each shard is a run of consecutive rows (of the same count), so that it
/// decodes only its own blocks.
///
/// A dataset in `blocks` of which fewer than all fit in memory is shuffled in windows: the
/// blocks in a seeded random order, then the rows of each `resident` consecutive blocks of
/// that order in a seeded random order. A reader then decodes each block once per pass, where
/// a permutation of all rows would have it decode a block for nearly every row.
///
/// ```
/// use ldae_datasets::order::{row_order, Shard};
/// let a = row_order(10, true, 7, None, Some(Shard { index: 0, count: 2 }), None).unwrap();
/// let b = row_order(10, true, 7, None, Some(Shard { index: 1, count: 2 }), None).unwrap();
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
    blocks: Option<&Blocks>,
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
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let windowed = blocks
        .filter(|b| shuffle && b.resident < b.rows.len() && b.rows.iter().sum::<usize>() == len);
    let mut order: Vec<usize> = match windowed {
        Some(blocks) => shuffled_in_windows(blocks, &mut rng),
        None => {
            let mut order: Vec<usize> = (0..listed).collect();
            if shuffle {
                order.shuffle(&mut rng);
            }
            order
        }
    };
    if let Some(limit) = limit {
        order.truncate(limit);
    }
    if let Some(shard) = shard {
        order = match blocks {
            Some(_) if !shuffle => consecutive_run(order, shard),
            _ => order
                .into_iter()
                .skip(shard.index)
                .step_by(shard.count)
                .collect(),
        };
    }
    Ok(order)
}

/// Shard `shard` of rows read in order from blocks: a run of consecutive rows, as many as
/// every n-th row would give it (so shard sizes differ by one at most, as they do there), and
/// each shard decodes only its own blocks, where every n-th row made every shard decode every
/// block.
fn consecutive_run(order: Vec<usize>, shard: Shard) -> Vec<usize> {
    let rows_of = |i: usize| order.len().saturating_sub(i).div_ceil(shard.count);
    let start: usize = (0..shard.index).map(rows_of).sum();
    let end = start + rows_of(shard.index);
    order[start..end].to_vec()
}

/// The blocks in a random order, and the rows of each window of `resident` blocks of that
/// order in a random order.
fn shuffled_in_windows(blocks: &Blocks, rng: &mut rand_chacha::ChaCha8Rng) -> Vec<usize> {
    let first: Vec<usize> = blocks
        .rows
        .iter()
        .scan(0, |start, &n| {
            let first = *start;
            *start += n;
            Some(first)
        })
        .collect();
    let mut block_order: Vec<usize> = (0..blocks.rows.len()).collect();
    block_order.shuffle(rng);
    let mut order = Vec::with_capacity(blocks.rows.iter().sum());
    for window in block_order.chunks(blocks.resident.max(1)) {
        let start = order.len();
        for &b in window {
            order.extend(first[b]..first[b] + blocks.rows[b]);
        }
        order[start..].shuffle(rng);
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
            seen.extend(
                row_order(
                    103,
                    true,
                    42,
                    Some(50),
                    Some(Shard { index: i, count: n }),
                    None,
                )
                .unwrap(),
            );
        }
        let mut expected = row_order(103, true, 42, Some(50), None, None).unwrap();
        assert_eq!(seen.len(), 50);
        seen.sort();
        expected.sort();
        assert_eq!(seen, expected);
    }

    #[test]
    fn same_seed_same_order_other_seed_other_order() {
        let order = |seed| row_order(100, true, seed, None, None, None).unwrap();
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
        assert_eq!(
            row_order(5, false, 1, None, None, None).unwrap(),
            vec![0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn blocks_that_do_not_fit_are_shuffled_in_windows_of_resident_blocks() {
        let blocks = Blocks {
            rows: vec![7, 10, 10, 3, 10, 10, 9, 10],
            resident: 3,
        };
        let len: usize = blocks.rows.iter().sum();
        let block_of = |row: usize| {
            let mut start = 0;
            blocks.rows.iter().position(|&n| {
                start += n;
                row < start
            })
        };
        let order = row_order(len, true, 5, None, None, Some(&blocks)).unwrap();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..len).collect::<Vec<_>>(), "a permutation");
        // Each window holds every row of its blocks and of no others.
        let mut at = 0;
        let mut windows = 0;
        while at < len {
            let mut seen = std::collections::BTreeSet::new();
            let mut rows = 0;
            while at < len && (seen.len() < 3 || seen.contains(&block_of(order[at]))) {
                seen.insert(block_of(order[at]));
                at += 1;
                rows += 1;
            }
            let expected: usize = seen.iter().map(|b| blocks.rows[b.unwrap()]).sum();
            assert_eq!(rows, expected, "window {windows} holds whole blocks");
            windows += 1;
        }
        assert_eq!(windows, 3, "8 blocks in windows of 3");
        assert_eq!(
            order,
            row_order(len, true, 5, None, None, Some(&blocks)).unwrap()
        );
        assert_ne!(
            order,
            row_order(len, true, 6, None, None, Some(&blocks)).unwrap()
        );
        assert_ne!(
            order[..10],
            (0..10).collect::<Vec<_>>()[..],
            "rows mixed in a window"
        );
        // Shards still split the (limited) order.
        let mut shards: Vec<usize> = (0..2)
            .flat_map(|index| {
                let shard = Some(Shard { index, count: 2 });
                row_order(len, true, 5, Some(40), shard, Some(&blocks)).unwrap()
            })
            .collect();
        shards.sort();
        let mut limited = order[..40].to_vec();
        limited.sort();
        assert_eq!(shards, limited);
        // Read in order, each shard is a run of consecutive rows, as many as every n-th row.
        for count in 1..6 {
            let mut next = 0;
            for index in 0..count {
                let shard = Some(Shard { index, count });
                let run = row_order(len, false, 5, Some(41), shard, Some(&blocks)).unwrap();
                let every_nth = row_order(len, false, 5, Some(41), shard, None).unwrap();
                assert_eq!(run.len(), every_nth.len(), "shard {index}/{count}");
                assert_eq!(run, (next..next + run.len()).collect::<Vec<_>>());
                next += run.len();
            }
            assert_eq!(next, 41, "the shards of {count} cover the limited rows");
        }
        // All blocks resident, or no shuffle: the order is the one without blocks.
        let fits = Blocks {
            resident: 8,
            ..blocks.clone()
        };
        for (shuffle, b) in [(true, &fits), (false, &blocks)] {
            assert_eq!(
                row_order(len, shuffle, 5, None, None, Some(b)).unwrap(),
                row_order(len, shuffle, 5, None, None, None).unwrap()
            );
        }
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
            assert!(row_order(10, false, 0, None, Some(Shard { index, count }), None).is_err());
        }
        // A limit makes a huge unshuffled dataset cheap; a huge shuffle is refused.
        assert_eq!(
            row_order(usize::MAX, false, 0, Some(3), None, None).unwrap(),
            vec![0, 1, 2]
        );
        assert!(row_order(usize::MAX, true, 0, Some(3), None, None).is_err());
        assert!(row_order(usize::MAX, false, 0, None, None, None).is_err());
    }
}
