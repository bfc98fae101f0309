//! One shard of a job: which part of the rows a source reads and which part files a sink
//! writes. `--shard i/n` on the command line, `shard = { index, count }` in a spec.

use crate::{Error, Result};

/// Shard `index` of `count` (`--shard i/n`, zero-based). A spec's `shard = { index, count }` is
/// checked like the flag: `count` > 0 and `index` < `count`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(try_from = "RawShard")]
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
            Error::invalid(format!(
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

/// A shard as written in a spec, before it is checked.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawShard {
    /// Which shard, `0..count`.
    index: usize,
    /// How many shards in all.
    count: usize,
}

impl TryFrom<RawShard> for Shard {
    type Error = String;
    fn try_from(raw: RawShard) -> std::result::Result<Self, String> {
        if raw.count == 0 || raw.index >= raw.count {
            return Err(format!(
                "shard {{ index = {}, count = {} }}: expected 0 <= index < count",
                raw.index, raw.count
            ));
        }
        Ok(Shard {
            index: raw.index,
            count: raw.count,
        })
    }
}

impl Shard {
    /// The whole job as one shard (0 of 1).
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// `IIII-of-NNNN`, the shard's tag in a table folder's state file names.
    pub fn tag(&self) -> String {
        format!("{:04}-of-{:04}", self.index, self.count)
    }

    /// The prefix of this shard's part files in a table folder: `part-` alone,
    /// `part-IIII-of-NNNN-` when the job is sharded.
    pub fn part_prefix(&self) -> String {
        if self.count > 1 {
            format!("part-{}-", self.tag())
        } else {
            "part-".to_string()
        }
    }

    /// The name of this shard's part `k` in a table folder.
    pub fn part_name(&self, k: usize) -> String {
        format!("{}{k:05}.parquet", self.part_prefix())
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}
