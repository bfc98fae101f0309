//! Writing files so that a killed run never leaves one that looks complete: write to a hidden
//! temporary name in the same folder, flush to disk, then rename.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::{Error, Result};

/// The temporary name used while `path` is being written: `.NAME.tmp` beside it.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Move a finished temporary file to its final name.
pub fn commit(temp: &Path, path: &Path) -> Result<()> {
    std::fs::rename(temp, path).map_err(|e| Error::io(path, e))
}

/// Write `bytes` to `path` atomically.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let temp = temp_path(path);
    let mut f = std::fs::File::create(&temp).map_err(|e| Error::io(&temp, e))?;
    f.write_all(bytes).map_err(|e| Error::io(&temp, e))?;
    f.sync_all().map_err(|e| Error::io(&temp, e))?;
    commit(&temp, path)
}

/// A JSON file, parsed; an error names it.
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::external(format!("{}", path.display()), e))
}

/// Write `value` as pretty JSON at `path`, atomically.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Error::external(format!("{}: as JSON", path.display()), e))?;
    write_atomic(path, text.as_bytes())
}

/// Write one record batch as a small Parquet file at `path`, atomically (errors tables, metrics).
pub fn write_parquet_atomic(path: &Path, batch: &arrow::record_batch::RecordBatch) -> Result<()> {
    let temp = temp_path(path);
    let file = std::fs::File::create(&temp).map_err(|e| Error::io(&temp, e))?;
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None)
        .map_err(|e| Error::external(format!("{}", path.display()), e))?;
    writer
        .write(batch)
        .and_then(|_| writer.close().map(|_| ()))
        .map_err(|e| Error::external(format!("{}", path.display()), e))?;
    commit(&temp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.json");
        write_atomic(&p, b"{}").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"{}");
        assert!(!temp_path(&p).exists());
    }
}
