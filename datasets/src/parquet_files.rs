//! Which Parquet files a dataset path holds: every `.parquet` file below it (metadata and
//! working state skipped; an ldae table only once its job has published it), and of those the
//! files of one Hugging Face split, or all of them unless they belong to several splits.

use std::path::{Path, PathBuf};

use ldae_pipeline::{Error, Result};

/// The files of `split` below `path` (one file, or a folder of them), or, without a split,
/// every file unless they belong to several splits: those are refused rather than read as
/// one table.
pub(crate) fn dataset_files(path: &Path, split: Option<&str>) -> Result<Vec<PathBuf>> {
    files_of_split(path, list_parquet(path)?, split)
}

/// Every `.parquet` file below `path`, sorted (or `path` itself when it is a file).
fn list_parquet(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    // An ldae table is read only once its job has published it, and only its data files.
    ldae_pipeline::table::layout::check_complete(path)?;
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let p = entry.map_err(|e| Error::io(&dir, e))?.path();
            // Names starting with `_` or `.` are metadata and working state, never rows.
            if p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(['_', '.']))
            {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().and_then(|e| e.to_str()) == Some("parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    if out.is_empty() {
        return Err(Error::corrupt(path, "no .parquet files"));
    }
    Ok(out)
}

/// The Hugging Face split a file's name gives (`train` of `train-00000-of-00004.parquet`).
fn split_in_name(file: &Path) -> Option<&str> {
    let stem = file.file_stem()?.to_str()?;
    let (split, shard) = stem.split_once('-')?;
    let (index, count) = shard.split_once("-of-")?;
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    (digits(index) && digits(count)).then_some(split)
}

/// Folder names that hold one split's files (the layout of the Hugging Face Hub's Parquet
/// conversion: `CONFIG/SPLIT/0000.parquet`).
const SPLIT_FOLDERS: [&str; 6] = ["train", "test", "validation", "valid", "val", "dev"];

/// The split a file belongs to: the one its name gives, else its folder's when that is named
/// like a split.
fn split_of(file: &Path) -> Option<&str> {
    split_in_name(file).or_else(|| {
        let folder = file.parent()?.file_name()?.to_str()?;
        SPLIT_FOLDERS.contains(&folder).then_some(folder)
    })
}

/// The files of `split` among `files` (below `root`), or, without a split, all of them unless
/// they belong to several splits: those are refused rather than read as one table.
fn files_of_split(root: &Path, files: Vec<PathBuf>, split: Option<&str>) -> Result<Vec<PathBuf>> {
    let splits: std::collections::BTreeSet<&str> =
        files.iter().filter_map(|f| split_of(f)).collect();
    let found = splits.iter().copied().collect::<Vec<_>>().join(", ");
    let Some(split) = split else {
        if splits.len() > 1 {
            return Err(Error::invalid(format!(
                "{} holds the files of several splits ({found}): choose one with --split NAME \
                 ([source.parquet] split = \"NAME\" in a spec), so that they are not read as \
                 one table",
                root.display()
            )));
        }
        return Ok(files);
    };
    let in_split = |f: &PathBuf| {
        let relative = f.strip_prefix(root).unwrap_or(f);
        let in_folder = relative
            .parent()
            .is_some_and(|d| d.components().any(|c| c.as_os_str() == split));
        split_in_name(f) == Some(split) || f.file_stem().is_some_and(|s| s == split) || in_folder
    };
    let chosen: Vec<PathBuf> = files.into_iter().filter(in_split).collect();
    if chosen.is_empty() {
        let found = if found.is_empty() {
            "none".to_string()
        } else {
            found
        };
        return Err(Error::invalid(format!(
            "{}: no files of split '{split}' (named {split}-NNNNN-of-NNNNN.parquet or \
             {split}.parquet, or under a folder named {split}); splits found: {found}",
            root.display()
        )));
    }
    Ok(chosen)
}
