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
/// `shard.count`-th row starting at `shard.index`, except for rows read from `blocks` that a
/// shard would otherwise decode all of: read in order, each shard is a run of consecutive
/// rows; shuffled in windows (below), each shard takes a run of the rows (by index) of each
/// n consecutive windows, shuffled again, so that it decodes 1/n of the blocks, with rows
/// from as many blocks at once as an unsharded read. Shard sizes are those of every n-th row
/// either way (they differ by one at most).
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
    let (mut order, mut windows) = match windowed {
        Some(blocks) => shuffled_in_windows(blocks, &mut rng),
        None => {
            let mut order: Vec<usize> = (0..listed).collect();
            if shuffle {
                order.shuffle(&mut rng);
            }
            let windows = vec![order.len()];
            (order, windows)
        }
    };
    if let Some(limit) = limit.filter(|&l| l < order.len()) {
        order.truncate(limit);
        cut_windows(&mut windows, limit);
    }
    let Some(shard) = shard.filter(|s| s.count > 1) else {
        return Ok(order);
    };
    Ok(match (blocks, windowed) {
        // Every shard's part of the rows of n windows at once: each decodes a window's worth
        // of blocks, as the whole read does, and 1/n of the table in all.
        (_, Some(_)) => {
            let groups: Vec<usize> = windows
                .chunks(shard.count)
                .map(|w| w.iter().sum())
                .collect();
            runs_of_groups(&order, &groups, shard, Some(seed))
        }
        // Read in order: one run of consecutive rows each.
        (Some(_), None) if !shuffle => runs_of_groups(&order, &[order.len()], shard, None),
        _ => order
            .into_iter()
            .skip(shard.index)
            .step_by(shard.count)
            .collect(),
    })
}

/// Cut the window lengths `windows` to the first `limit` rows.
fn cut_windows(windows: &mut Vec<usize>, limit: usize) {
    let mut left = limit;
    for w in windows.iter_mut() {
        *w = (*w).min(left);
        left -= *w;
    }
    windows.retain(|&w| w > 0);
}

/// Shard `shard` of rows read from blocks, in `groups` of consecutive rows of `order`: of each
/// group, the shard takes a run of the group's rows sorted by index (so it touches only the
/// blocks of its run), as many as every n-th row would give it there (so shard sizes differ
/// by one at most, as they do there). A shuffled read (`seed`) shuffles each run again, so
/// that its rows come from all of its blocks at once; otherwise the run keeps its order.
fn runs_of_groups(
    order: &[usize],
    groups: &[usize],
    shard: Shard,
    seed: Option<u64>,
) -> Vec<usize> {
    let n = shard.count;
    // Positions p < x with p % n == i.
    let below = |x: usize, i: usize| x.saturating_sub(i).div_ceil(n);
    let mut taken = Vec::with_capacity(order.len() / n + 1);
    let mut first = 0;
    for (g, &len) in groups.iter().enumerate() {
        let end = first + len;
        let count = |i: usize| below(end, i) - below(first, i);
        let start: usize = (0..shard.index).map(count).sum();
        let mut rows = order[first..end].to_vec();
        rows.sort_unstable();
        let mut run = rows[start..start + count(shard.index)].to_vec();
        if let Some(seed) = seed {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(g as u64 + 1);
            run.shuffle(&mut rng);
        }
        taken.extend(run);
        first = end;
    }
    taken
}

/// The blocks in a random order, and the rows of each window of `resident` blocks of that
/// order in a random order; with the number of rows of each window.
fn shuffled_in_windows(
    blocks: &Blocks,
    rng: &mut rand_chacha::ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
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
    let mut windows = Vec::new();
    for window in block_order.chunks(blocks.resident.max(1)) {
        let start = order.len();
        for &b in window {
            order.extend(first[b]..first[b] + blocks.rows[b]);
        }
        order[start..].shuffle(rng);
        windows.push(order.len() - start);
    }
    (order, windows)
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
    fn shards_of_a_windowed_shuffle_decode_their_part_of_the_blocks() {
        // 40 blocks of 10 rows, 4 kept at once: windows of 4 blocks; 4 shards take runs of
        // each 4 windows (16 blocks) in turn.
        let blocks = Blocks {
            rows: vec![10; 40],
            resident: 4,
        };
        let whole = row_order(400, true, 3, None, None, Some(&blocks)).unwrap();
        for limit in [None, Some(333)] {
            let mut all = Vec::new();
            for index in 0..4 {
                let shard = Some(Shard { index, count: 4 });
                let part = row_order(400, true, 3, limit, shard, Some(&blocks)).unwrap();
                let every_nth = row_order(400, true, 3, limit, shard, None).unwrap();
                assert_eq!(
                    part.len(),
                    every_nth.len(),
                    "shard {index}, limit {limit:?}"
                );
                let touched = |rows: &[usize]| {
                    let blocks: std::collections::BTreeSet<usize> =
                        rows.iter().map(|r| r / 10).collect();
                    blocks.len()
                };
                // Its 4 blocks of each of 3 runs, and the 2 blocks that each run cuts.
                assert!(touched(&part) <= 10 + 2 * 3, "touched {}", touched(&part));
                // Every 4th row of the same windows touched (nearly) every block.
                let nth: Vec<usize> = whole.iter().copied().skip(index).step_by(4).collect();
                assert!(
                    touched(&nth) >= 36,
                    "every 4th row touched {}",
                    touched(&nth)
                );
                // A window's worth of blocks at once: the first 10 rows come from 4 or more.
                assert!(touched(&part[..10]) >= 3, "{:?}", &part[..10]);
                all.extend(part);
            }
            all.sort();
            let mut limited = whole[..limit.unwrap_or(400)].to_vec();
            limited.sort();
            assert_eq!(all, limited, "the shards cover the limited rows");
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
