//! The layout of an ldae table folder, for everything that reads one.
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
//! job until it is published; the writer side lives in `ldae_operators::table_folder`.

use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The completion marker.
pub const SUCCESS: &str = "_SUCCESS";
/// The table's manifest.
pub const MANIFEST: &str = "_manifest.json";
/// The table's errors table.
pub const ERRORS: &str = "_errors.parquet";
/// The folder of the published data files.
pub const DATA: &str = "data";
/// The job's working state.
pub const STATE: &str = "_ldae";

/// Whether `dir` is an ldae table folder (published or still being written).
pub fn is_table(dir: &Path) -> bool {
    dir.join(STATE).is_dir() || dir.join(MANIFEST).is_file() || dir.join(SUCCESS).is_file()
}

/// Whether the table at `dir` is complete (published with its marker).
pub fn is_complete(dir: &Path) -> bool {
    dir.join(SUCCESS).is_file()
}

/// An error unless `dir` is not an ldae table or is a complete one: readers call this so a
/// folder whose job has not finished never reads as a (partial) table.
pub fn check_complete(dir: &Path) -> Result<()> {
    if !is_table(dir) || is_complete(dir) {
        return Ok(());
    }
    Err(Error::corrupt(
        dir,
        format!(
            "the table is not complete (no {SUCCESS}): its job has not finished every shard; \
         `ldae status {}` lists what is missing",
            dir.display()
        ),
    ))
}

/// Where the data files of the table at `dir` are: `dir/data` once published, the staged
/// parts (`dir/_ldae/data`) of an unfinished job when `include_unfinished`, else `dir` itself
/// (a folder of Parquet files that ldae did not write).
pub fn data_dir(dir: &Path, include_unfinished: bool) -> PathBuf {
    let published = dir.join(DATA);
    if is_table(dir) && !published.is_dir() && include_unfinished {
        return dir.join(STATE).join(DATA);
    }
    if is_table(dir) {
        published
    } else {
        dir.to_path_buf()
    }
}
