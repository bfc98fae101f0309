//! Opening a dataset by path: the kind is detected from the path, or given with `--format`.

use std::path::Path;

use ldae_pipeline::{Error, Result, Source};

use crate::cifar::CifarReader;
use crate::folder::FolderReader;
use crate::idx::IdxReader;
use crate::indexed::{IndexedSource, RowReader};
use crate::order::{row_order, Shard};
use crate::parquet_table::ParquetReader;
use crate::synthetic::{SyntheticConfig, SyntheticReader};
use crate::webdataset::WebDatasetReader;

/// The dataset kinds ldae reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `root/<class>/*.jpg|jpeg|png`, or a flat folder of images.
    Folder,
    /// Parquet image tables (Hugging Face datasets layout).
    Parquet,
    /// WebDataset `.tar` shards.
    #[serde(alias = "wds")]
    Webdataset,
    /// IDX files (MNIST family).
    Idx,
    /// CIFAR-10 binary batches.
    Cifar,
    /// Generated images (`synthetic:N`).
    Synthetic,
}

impl std::str::FromStr for Format {
    type Err = Error;
    /// The serde name (`folder`, `parquet`, `webdataset` or `wds`, `idx`, `cifar`,
    /// `synthetic`), as `--format` and a spec's `format` key take it.
    fn from_str(s: &str) -> Result<Self> {
        ldae_pipeline::names::parse_name(s)
    }
}

/// How to read a dataset: which rows, in which order, in what batches.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SourceOptions {
    /// The dataset kind; detected from the path when absent.
    pub format: Option<Format>,
    /// Read at most this many rows (after shuffling, before sharding).
    pub limit: Option<usize>,
    /// Read only this shard of the rows.
    pub shard: Option<Shard>,
    /// Skip this many rows of the final order (resuming a training epoch part-way).
    pub skip: usize,
    /// Shuffle the rows with `seed`.
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Rows per batch; `None`: [`SourceOptions::DEFAULT_BATCH_ROWS`], unless the job sizes
    /// it from the decoded images (see `ldae_jobs::spec::Spec::size_batches`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Image side and class count of `synthetic:N` data.
    pub synthetic_size: usize,
    /// Classes of `synthetic:N` data.
    pub synthetic_classes: usize,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            format: None,
            limit: None,
            shard: None,
            skip: 0,
            shuffle: false,
            seed: 0,
            batch_size: None,
            synthetic_size: 32,
            synthetic_classes: 10,
        }
    }
}

impl SourceOptions {
    /// Rows per batch when nothing sizes it.
    pub const DEFAULT_BATCH_ROWS: usize = ldae_pipeline::registry::DEFAULT_BATCH_ROWS;

    /// Rows per batch.
    pub fn batch_rows(&self) -> usize {
        self.batch_size.unwrap_or(Self::DEFAULT_BATCH_ROWS)
    }

    /// Refuse settings that read nothing or make no sense: a batch size or limit of 0, a
    /// synthetic image side or class count of 0.
    pub fn check(&self) -> Result<()> {
        if self.batch_size == Some(0) {
            return Err(Error::invalid("batch size 0: a batch holds at least 1 row"));
        }
        if self.limit == Some(0) {
            return Err(Error::invalid("limit 0 reads no rows"));
        }
        if self.synthetic_size == 0 || self.synthetic_classes == 0 {
            return Err(Error::invalid(
                "synthetic data needs an image side and a class count of at least 1",
            ));
        }
        Ok(())
    }
}

/// Guess the dataset kind of `input`.
pub fn detect(input: &str) -> Result<Format> {
    if input.starts_with("synthetic:") {
        return Ok(Format::Synthetic);
    }
    let path = Path::new(input);
    if !path.exists() {
        return Err(Error::msg(format!("{input}: no such file or folder")));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if path.is_file() {
        return Ok(if name.ends_with(".parquet") {
            Format::Parquet
        } else if name.ends_with(".tar") {
            Format::Webdataset
        } else if name.ends_with(".bin") {
            Format::Cifar
        } else if name.contains("-ubyte") || name.ends_with(".idx") || name.contains("idx3") {
            Format::Idx
        } else {
            return Err(Error::invalid(format!(
                "{input}: cannot tell the dataset kind from the name; pass --format"
            )));
        });
    }
    let has = |pred: &dyn Fn(&str) -> bool| -> Result<bool> {
        for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
            let entry = entry.map_err(|e| Error::io(path, e))?;
            if pred(&entry.file_name().to_string_lossy().to_lowercase()) {
                return Ok(true);
            }
        }
        Ok(false)
    };
    Ok(
        if ldae_pipeline::table_layout::is_table(path) || has(&|n| n.ends_with(".parquet"))? {
            Format::Parquet
        } else if has(&|n| n.ends_with(".tar"))? {
            Format::Webdataset
        } else if has(&|n| n.starts_with("data_batch_") && n.ends_with(".bin"))? {
            Format::Cifar
        } else {
            Format::Folder
        },
    )
}

fn indexed<R: RowReader + 'static>(
    reader: R,
    input: &str,
    options: &SourceOptions,
) -> Result<Box<dyn Source>> {
    // A run over nothing would publish an empty table that looks like a result.
    if reader.is_empty() {
        return Err(Error::corrupt(
            input,
            format!("the {} dataset has no rows", reader.kind()),
        ));
    }
    let mut order = row_order(
        reader.len(),
        options.shuffle,
        options.seed,
        options.limit,
        options.shard,
    )
    .map_err(|e| e.context(input.to_string()))?;
    order.drain(..options.skip.min(order.len()));
    Ok(Box::new(IndexedSource::new(
        reader,
        order,
        options.batch_rows(),
        input,
    )))
}

/// Open `input` (a path, or `synthetic:N`) as a source.
pub fn open(input: &str, options: &SourceOptions) -> Result<Box<dyn Source>> {
    options.check()?;
    let format = match options.format {
        Some(f) => f,
        None => detect(input)?,
    };
    let path = Path::new(input);
    Ok(match format {
        Format::Synthetic => {
            let count = input
                .strip_prefix("synthetic:")
                .and_then(|n| n.parse::<usize>().ok())
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "'{input}': expected synthetic:N, e.g. synthetic:1000"
                    ))
                })?;
            let config = SyntheticConfig {
                count,
                size: options.synthetic_size,
                classes: options.synthetic_classes,
                seed: 0,
            };
            indexed(SyntheticReader::new(config), input, options)?
        }
        Format::Folder => indexed(FolderReader::open(path)?, input, options)?,
        Format::Parquet => indexed(ParquetReader::open(path)?, input, options)?,
        Format::Webdataset => indexed(WebDatasetReader::open(path)?, input, options)?,
        Format::Idx => indexed(IdxReader::open(path)?, input, options)?,
        Format::Cifar => indexed(CifarReader::open(path)?, input, options)?,
    })
}
