//! An ldae table folder: the layout readers rely on and the protocol the shards of one job
//! write it with.
//!
//! ```text
//! OUT/_SUCCESS          the table is complete (written last)
//! OUT/_manifest.json    rows in/out/rejected, files, schema, the job's settings
//! OUT/_errors.parquet   the rejected rows (id, stage, message)
//! OUT/data/part-*.parquet   the rows; appears in one rename when every shard is done
//! OUT/_ldae/            the job's working state (shards, committed parts, locks)
//! ```
//!
//! Readers that skip names starting with `_` or `.` (pyarrow, Spark, ldae) see no row of a
//! job until it is published ([`layout`]).
//!
//! Every shard (an unsharded job is shard 0 of 1) opens the folder with [`TableFolder::open`]
//! ([`lock`]) and commits its part files into `_ldae/data/` as they complete, each followed by
//! a commit record (`_ldae/shard-IIII-of-NNNN/part-KKKKK.json`: rows, source rows covered,
//! rejected rows), so a killed shard resumes after its last record ([`commit`]). A finished
//! shard writes `done.json` (its manifest and completion marker). The shard that finds every
//! shard done publishes the table ([`publish`]): one rename moves `_ldae/data` to `data`, then
//! `_errors.parquet`, `_manifest.json` and `_SUCCESS` are written. [`status`] reads where each
//! shard stands.

pub mod commit;
pub mod layout;
pub mod lock;
pub mod publish;
pub mod status;

pub use commit::{PartRecord, ShardDone};
pub use layout::{check_complete, data_dir, is_complete, is_table};
pub use lock::{job_identity, TableFolder};
pub use publish::{write_errors_table, Published};
pub use status::{job_status, JobStatus, ShardState};
