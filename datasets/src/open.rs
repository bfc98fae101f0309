//! Opening a dataset: its format (given, or detected through the format registry), then one
//! row order over its rows for every format.

use ldae_pipeline::{Error, Result, Source};

use crate::format::{Format, FormatSettings};
use crate::indexed::{IndexedSource, RowReader};
use crate::order::{row_order, Shard};

/// How to read a dataset: which rows, in which order, in what batches.
// No `deny_unknown_fields`: serde does not combine it with `flatten`. Unknown keys reach
// `formats`, which refuses every key that is not a format's settings table.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(default)]
pub struct SourceOptions {
    /// The dataset format (one of those below); detected from the input when unset.
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
    /// Rows per batch. Unset: as many as fit 4 MB of f32 pixels at the first `decode`'s
    /// size, at most 256 (a multiple of 32 in a job with an `encoder`), or 256 with no
    /// `decode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<usize>,
    /// Settings of a format, as a table named after it (`[source.synthetic]`); the format
    /// that reads the input uses its own table or its defaults.
    #[serde(flatten)]
    #[schemars(skip)]
    pub formats: FormatSettings,
}

impl SourceOptions {
    /// Rows per batch when nothing sizes it.
    pub const DEFAULT_BATCH_ROWS: usize = ldae_pipeline::registry::DEFAULT_BATCH_ROWS;

    /// Rows per batch.
    pub fn batch_rows(&self) -> usize {
        self.batch_size.unwrap_or(Self::DEFAULT_BATCH_ROWS)
    }

    /// Refuse settings that read nothing: a batch size or limit of 0.
    pub fn check(&self) -> Result<()> {
        if self.batch_size == Some(0) {
            return Err(Error::invalid("batch size 0: a batch holds at least 1 row"));
        }
        if self.limit == Some(0) {
            return Err(Error::invalid("limit 0 reads no rows"));
        }
        Ok(())
    }
}

fn indexed(
    reader: Box<dyn RowReader>,
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
        reader.blocks().as_ref(),
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
        None => Format::detect(input)?,
    };
    let settings = options.formats.for_format(format)?;
    indexed(settings.open(input)?, input, options)
}
