//! The names in a table folder and what a reader checks before it reads one.

use std::fs::File;
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

/// The job's working state folder of the table at `out`.
pub(crate) fn state_dir(out: &Path) -> PathBuf {
    out.join(STATE)
}

/// The working folder of one shard (its commit records, `done.json`, `failed.json`).
pub(crate) fn shard_dir(out: &Path, shard: crate::Shard) -> PathBuf {
    state_dir(out).join(format!("shard-{}", shard.tag()))
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

/// Flush a folder's entries (renames into it) to disk, so a committed file survives a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

pub(crate) fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

/// The names in `dir`, sorted (none when it does not exist).
pub(crate) fn names_in(dir: &Path) -> Result<Vec<String>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        names.push(entry.file_name().to_string_lossy().to_string());
    }
    names.sort();
    Ok(names)
}
