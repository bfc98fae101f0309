//! Dataset sources for ldae.
//!
//! Every source is a row stream of `id, label, image` (encoded bytes) or `id, label, pixels`
//! (already-decoded `UInt8` tensors `[H, W, C]`), read in batches. All kinds share one ordering
//! mechanism ([`order::row_order`]): optional seeded shuffle, then `--limit`, then `--shard i/n`,
//! so shards are disjoint, their union is the (limited) dataset, and the same seed gives the same
//! assignment everywhere.

pub mod arrow_rows;
pub mod cifar;
pub mod file_access;
pub mod folder;
pub mod format;
pub mod idx;
pub mod indexed;
pub mod open;
pub mod order;
mod parquet_files;
pub mod parquet_table;
mod row_groups;
pub mod synthetic;
pub mod webdataset;

pub use format::{Format, FormatConfig, Probe};
pub use indexed::{IndexedSource, Payload, RawRow, RowReader};
pub use open::{open, SourceOptions};
pub use order::Shard;
