//! The Parquet table sink: a table folder of zstd part files, tensors as Arrow's fixed-shape
//! tensor extension type, written by one or many shards of a job (see [`ldae_pipeline::table`]).
//!
//! Contract: a part is written under a hidden temporary name, flushed, moved into the job's
//! staged parts and recorded as soon as it holds `rows_per_file` rows (cut at the next batch
//! boundary), so a killed run resumes after its last committed part and writes the same rows
//! and bytes as an uninterrupted one. When every shard is done, the table is published in one
//! rename (`data/`), then `_errors.parquet`, `_manifest.json` and, last, `_SUCCESS`. A rerun
//! of a finished shard does nothing (unless `overwrite`).

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use ldae_pipeline::columns::tensor_type;
use ldae_pipeline::table::layout::ERRORS;
use ldae_pipeline::tensor_bytes::{stored_schema, to_storage, TensorStorage};
use ldae_pipeline::{
    BuildContext, Error, Pass, PlanInfo, RejectedRow, Result, RunReport, RunSummary, Sink,
    SinkConfig, SinkJob,
};

use ldae_pipeline::atomic_file::temp_path;
use ldae_pipeline::table::{job_identity, PartRecord, Published, ShardDone, TableFolder};
use ldae_pipeline::Shard;

/// `parquet` (sink): a table folder (`data/part-*.parquet`, zstd) that the shards of one job
/// write side by side; parts are committed as they complete (a killed run resumes after the
/// last one), and the table is published in one step when every shard is done, then
/// `_errors.parquet`, `_manifest.json` and `_SUCCESS`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// Output folder.
    pub out: PathBuf,
    /// Close a part file (and commit it: the unit of resuming) at the first batch boundary
    /// after this many rows.
    pub rows_per_file: usize,
    /// Rows per Parquet row group, at most: a group also holds at most 128 MiB of fixed-width
    /// values (tensors, numbers), so tables of wide rows (224 px pixels, token features) get
    /// fewer rows per group, and the writer, which holds a group until it is complete, less
    /// memory.
    pub row_group_size: usize,
    /// zstd level. The default, 1, is also pyarrow's: on float tensors (byte-stream split)
    /// higher levels buy no space (CIFAR-10 latents: level 3 wrote 0.8% more bytes than level 1
    /// and took 25% longer), so raise it only for tables with other columns that compress.
    pub zstd_level: i32,
    /// The shard of a larger job this run writes, `{ index, count }` (default: the source's
    /// shard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Start over: redo a finished or partly written shard, or replace another job's table.
    pub overwrite: bool,
    /// Require committed parts to resume from (an error if there are none). Without it a
    /// shard with committed parts resumes anyway.
    pub resume: bool,
    /// How UInt8 tensor columns (pixels) are stored: `list` (default), Arrow's fixed-shape
    /// tensor, which pyarrow, pandas, polars and DuckDB read as tensors; or `bytes`, one
    /// fixed-size binary value a row with the shape in the field metadata, which ldae reads 8x
    /// faster (224 px pixels) and other tools as binary values. The training pixel cache uses
    /// `bytes`.
    #[serde(skip_serializing_if = "TensorStorage::is_list")]
    pub tensor_storage: TensorStorage,
}

impl SinkConfig for ParquetSinkConfig {
    const KIND: &'static str = "parquet";
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn SinkJob>> {
        let mut config = self.clone();
        config.out = ctx.resolve(&config.out);
        if config.shard.is_none() {
            config.shard = ctx.shard;
        }
        if config.overwrite && config.resume {
            return Err(Error::invalid("overwrite and resume exclude each other"));
        }
        // A Shard is checked when it is made (0 <= index < count).
        Ok(Box::new(ParquetJob {
            identity: job_identity(&ctx.job, ctx),
            shard: config.shard.unwrap_or(Shard::WHOLE),
            config,
            folder: None,
            committed: Vec::new(),
            already_done: None,
            ran: false,
            output: serde_json::Value::Null,
            messages: Vec::new(),
        }))
    }
}
ldae_pipeline::register_sink!(ParquetSinkConfig);

impl Default for ParquetSinkConfig {
    fn default() -> Self {
        ParquetSinkConfig {
            out: PathBuf::from("out"),
            rows_per_file: 8192,
            row_group_size: 4096,
            zstd_level: 1,
            shard: None,
            overwrite: false,
            resume: false,
            tensor_storage: TensorStorage::List,
        }
    }
}

/// The sink's job: opens the folder, decides whether to skip, resume or start, and publishes.
struct ParquetJob {
    config: ParquetSinkConfig,
    identity: serde_json::Value,
    shard: Shard,
    folder: Option<Arc<TableFolder>>,
    committed: Vec<PartRecord>,
    already_done: Option<ShardDone>,
    ran: bool,
    output: serde_json::Value,
    messages: Vec<String>,
}

impl ParquetJob {
    fn folder(&self) -> Result<Arc<TableFolder>> {
        self.folder
            .clone()
            .ok_or_else(|| Error::internal("parquet sink used before its plan was bound"))
    }

    fn shard_words(&self) -> String {
        if self.shard.count > 1 {
            format!("shard {}", self.shard)
        } else {
            "the table".to_string()
        }
    }
}

impl SinkJob for ParquetJob {
    fn bind(&mut self, plan: &PlanInfo) -> Result<()> {
        if plan.rows == Some(0) && self.shard.count == 1 {
            return Err(Error::data(
                "the input has no rows to write (an empty dataset, --limit 0 or a skip past the end)",
            ));
        }
        let folder = TableFolder::open(
            &self.config.out,
            self.shard,
            &self.identity,
            self.config.overwrite,
        )?;
        if self.config.overwrite {
            folder.reset_shard()?;
        } else if let Some(done) = folder.done()? {
            self.messages.push(format!(
                "{}: {} is already complete ({} rows): nothing to do (--overwrite redoes it)",
                self.config.out.display(),
                self.shard_words(),
                done.rows
            ));
            self.already_done = Some(done);
        }
        if self.already_done.is_none() {
            self.committed = folder.committed(plan.rows)?;
            let rows: u64 = self.committed.iter().map(|r| r.rows).sum();
            if self.config.resume && self.committed.is_empty() {
                return Err(Error::conflict(
                    &self.config.out,
                    format!(
                        "--resume, but {} has no committed parts to resume from",
                        self.shard_words()
                    ),
                ));
            }
            if !self.committed.is_empty() {
                self.messages.push(format!(
                    "{}: resuming {} after {} committed part(s) ({rows} rows)",
                    self.config.out.display(),
                    self.shard_words(),
                    self.committed.len()
                ));
            }
        }
        self.folder = Some(Arc::new(folder));
        Ok(())
    }

    fn next_pass(&mut self) -> Result<Option<Pass>> {
        if self.ran || self.already_done.is_some() {
            return Ok(None);
        }
        let skip: u64 = self.committed.iter().map(|r| r.rows_in).sum();
        Ok(Some(Pass {
            skip_rows: skip as usize,
            ..Pass::default()
        }))
    }

    fn sink(&mut self, _pass: &Pass) -> Result<Box<dyn Sink>> {
        self.ran = true;
        Ok(Box::new(ParquetSink {
            config: self.config.clone(),
            identity: self.identity.clone(),
            folder: self.folder()?,
            schema: None,
            open: None,
            committed: std::mem::take(&mut self.committed),
            pending_rows_in: 0,
            pending_rejected: Vec::new(),
        }))
    }

    fn end_pass(&mut self, _pass: &Pass, report: &RunReport) -> Result<()> {
        self.output = report.output.clone();
        Ok(())
    }

    fn messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.messages)
    }

    fn fail(&mut self, error: &Error) {
        if let Some(folder) = &self.folder {
            folder.record_failure(&error.chain());
        }
    }

    fn finish(&mut self) -> Result<serde_json::Value> {
        if let Some(done) = self.already_done.take() {
            // A finished shard still publishes: the shard that finished last may have been
            // killed between its marker and the publishing step.
            let folder = self.folder()?;
            let published = folder.publish(&self.identity)?;
            self.output = output(&folder, &done, published, true);
        }
        Ok(std::mem::take(&mut self.output))
    }
}

/// What the table sink reports when its job is done: the shard's counts and where the table
/// stands. It crosses the sink interface as JSON (the CLI prints it, Python returns it as a
/// dict); [`TableReport::from_output`] reads it back.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TableReport {
    /// The table folder.
    pub out: PathBuf,
    /// Rows this shard wrote.
    pub rows: u64,
    /// Source rows this shard accounts for (rows written plus rows rejected).
    pub rows_in: u64,
    /// Rows rejected.
    pub rejected: u64,
    /// Part files of this shard.
    pub files: u64,
    /// The table's errors table (written when it is published).
    pub errors: PathBuf,
    /// This shard, `i/n`.
    pub shard: Shard,
    /// Whether every shard is done and the table is published.
    pub complete: bool,
    /// Shards done so far.
    pub shards_done: usize,
    /// Shards of the job.
    pub shards: usize,
    /// The shard had finished already: nothing was written this time.
    pub skipped: bool,
}

impl TableReport {
    /// The report in a sink job's output (`None` when the output is not a table sink's).
    pub fn from_output(output: &serde_json::Value) -> Option<TableReport> {
        serde_json::from_value(output.clone()).ok()
    }
}

fn output(
    folder: &TableFolder,
    done: &ShardDone,
    published: Published,
    skipped: bool,
) -> serde_json::Value {
    let (complete, shards_done) = match published {
        Published::Yes => (true, folder.shard().count),
        Published::NotYet { done, .. } => (false, done),
    };
    let report = TableReport {
        out: folder.out().to_path_buf(),
        rows: done.rows,
        rows_in: done.rows_in,
        rejected: done.rejected().len() as u64,
        files: done.files.len() as u64,
        errors: folder.out().join(ERRORS),
        shard: folder.shard(),
        complete,
        shards_done,
        shards: folder.shard().count,
        skipped,
    };
    serde_json::to_value(report).unwrap_or_default()
}

struct OpenPart {
    writer: ArrowWriter<File>,
    /// The schema the part stores (the input's, with [`TensorStorage`] applied).
    stored: SchemaRef,
    temp: PathBuf,
    name: String,
    rows: usize,
}

/// The Parquet table sink of one pass: writes one shard's parts and commits them as they
/// complete.
pub struct ParquetSink {
    config: ParquetSinkConfig,
    identity: serde_json::Value,
    folder: Arc<TableFolder>,
    schema: Option<SchemaRef>,
    open: Option<OpenPart>,
    /// Records of the parts committed so far (by earlier runs too).
    committed: Vec<PartRecord>,
    /// Source rows handled since the last committed part, and the rows rejected among them.
    pending_rows_in: u64,
    pending_rejected: Vec<RejectedRow>,
}

impl ParquetSink {
    fn start_part(&mut self) -> Result<()> {
        let schema = self
            .schema
            .clone()
            .ok_or_else(|| Error::internal("parquet sink used before its schema was checked"))?;
        let name = self.folder.shard().part_name(self.committed.len());
        let path = self.folder.staged().join(&name);
        let temp = temp_path(&path);
        let file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        let level = ZstdLevel::try_new(self.config.zstd_level)
            .map_err(|e| Error::external("zstd level", e))?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(rows_per_group(&schema, self.config.row_group_size)));
        // Float tensors: dictionaries never pay off on continuous values, and splitting the
        // bytes of each float into streams lets zstd compress them (and faster).
        for field in schema.fields() {
            if let Some((DataType::Float32 | DataType::Float64, _)) = tensor_type(field) {
                let path =
                    ColumnPath::new(vec![field.name().clone(), "list".into(), "item".into()]);
                props = props
                    .set_column_dictionary_enabled(path.clone(), false)
                    .set_column_encoding(path, Encoding::BYTE_STREAM_SPLIT);
            }
        }
        let props = props.build();
        let stored = stored_schema(&schema, self.config.tensor_storage);
        let writer = ArrowWriter::try_new(file, stored.clone(), Some(props))
            .map_err(|e| Error::external(format!("{}", path.display()), e))?;
        self.open = Some(OpenPart {
            writer,
            stored,
            temp,
            name,
            rows: 0,
        });
        Ok(())
    }

    /// Close the open part, flush it to disk and commit it with the pending source rows.
    fn commit_part(&mut self) -> Result<()> {
        let Some(part) = self.open.take() else {
            return Ok(());
        };
        let file = part
            .writer
            .into_inner()
            .map_err(|e| Error::external(format!("{}", part.temp.display()), e))?;
        file.sync_all().map_err(|e| Error::io(&part.temp, e))?;
        let bytes = file.metadata().map_err(|e| Error::io(&part.temp, e))?.len();
        let record = PartRecord {
            name: part.name,
            rows: part.rows as u64,
            rows_in: std::mem::take(&mut self.pending_rows_in),
            bytes,
            rejected: std::mem::take(&mut self.pending_rejected),
        };
        self.folder
            .commit_part(self.committed.len(), &part.temp, &record)?;
        self.committed.push(record);
        Ok(())
    }
}

/// The table's columns for the manifest: tensors by element type and shape (and storage, when
/// stored as bytes), other columns by Arrow type.
fn describe_schema(schema: &SchemaRef, storage: TensorStorage) -> serde_json::Value {
    schema
        .fields()
        .iter()
        .map(|f| match tensor_type(f) {
            Some((DataType::UInt8, shape)) if storage == TensorStorage::Bytes => {
                serde_json::json!({
                    "name": f.name(), "type": "tensor", "element": "UInt8", "shape": shape,
                    "storage": storage,
                })
            }
            Some((el, shape)) => serde_json::json!({
                "name": f.name(), "type": "tensor", "element": el.to_string(), "shape": shape,
            }),
            None => serde_json::json!({
                "name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable(),
            }),
        })
        .collect()
}

impl Sink for ParquetSink {
    fn name(&self) -> String {
        ParquetSinkConfig::KIND.into()
    }

    fn check_schema(&mut self, input: &SchemaRef) -> Result<()> {
        self.schema = Some(input.clone());
        Ok(())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.open.is_none() {
            self.start_part()?;
        }
        let part = self
            .open
            .as_mut()
            .ok_or_else(|| Error::internal("no open part"))?;
        let batch = to_storage(batch, &part.stored)?;
        part.writer
            .write(&batch)
            .map_err(|e| Error::external(format!("{}", part.temp.display()), e))?;
        part.rows += batch.num_rows();
        Ok(())
    }

    fn consumed(&mut self, rows_in: u64, rejected: &[RejectedRow]) -> Result<()> {
        self.pending_rows_in += rows_in;
        self.pending_rejected.extend_from_slice(rejected);
        // Parts end on batch boundaries: a part's source rows are then a whole number of
        // batches, which a resumed run skips exactly.
        if self
            .open
            .as_ref()
            .is_some_and(|p| p.rows >= self.config.rows_per_file.max(1))
        {
            self.commit_part()?;
        }
        Ok(())
    }

    fn finish(&mut self, _summary: &RunSummary<'_>) -> Result<serde_json::Value> {
        self.commit_part()?;
        let files = std::mem::take(&mut self.committed);
        let done = ShardDone {
            shard: self.folder.shard(),
            rows: files.iter().map(|f| f.rows).sum(),
            rows_in: files.iter().map(|f| f.rows_in).sum::<u64>() + self.pending_rows_in,
            files,
            rejected_tail: std::mem::take(&mut self.pending_rejected),
            schema: self
                .schema
                .as_ref()
                .map(|s| describe_schema(s, self.config.tensor_storage))
                .unwrap_or_default(),
        };
        self.folder.finish_shard(&done)?;
        let published = self.folder.publish(&self.identity)?;
        Ok(output(&self.folder, &done, published, false))
    }

    fn abort(&mut self) {
        // Committed parts stay (a rerun resumes after them); the open one goes.
        if let Some(part) = self.open.take() {
            drop(part.writer);
            let _ = std::fs::remove_file(&part.temp);
        }
    }
}

/// The most fixed-width bytes (tensors and numbers) a row group holds.
const ROW_GROUP_BYTES: usize = 128 << 20;

/// Rows per row group for rows of `schema`: at most `most`, and no more than fit
/// [`ROW_GROUP_BYTES`] of their fixed-width values. Fixed by the schema, so the groups do not
/// depend on how the rows arrive in batches.
fn rows_per_group(schema: &Schema, most: usize) -> usize {
    fn width(t: &DataType) -> usize {
        match t {
            DataType::FixedSizeList(item, n) => *n as usize * width(item.data_type()),
            t => t.primitive_width().unwrap_or(0),
        }
    }
    let bytes: usize = schema.fields().iter().map(|f| width(f.data_type())).sum();
    (ROW_GROUP_BYTES / bytes.max(1)).clamp(1, most.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::Field;
    use ldae_pipeline::columns::tensor_field;

    #[test]
    fn wide_rows_get_fewer_rows_per_group() {
        let table = |shape: &[usize], t: DataType| {
            Schema::new(vec![
                Field::new("id", DataType::Utf8, false),
                Field::new("label", DataType::Int64, true),
                tensor_field("x", t, shape),
            ])
        };
        // CIFAR latents (4 KiB a row): the row count rules.
        assert_eq!(
            rows_per_group(&table(&[64, 16], DataType::Float32), 4096),
            4096
        );
        // 224 px patches in f32 (588 KiB a row): 128 MiB of them.
        let wide = table(&[196, 768], DataType::Float32);
        assert_eq!(
            rows_per_group(&wide, 4096),
            (128 << 20) / (196 * 768 * 4 + 8)
        );
        // 224 px u8 pixels (147 KiB a row).
        assert_eq!(
            rows_per_group(&table(&[224, 224, 3], DataType::UInt8), 4096),
            891
        );
        assert_eq!(rows_per_group(&wide, 100), 100);
        assert_eq!(
            rows_per_group(&table(&[1 << 26], DataType::Float32), 4096),
            1
        );
    }
}
