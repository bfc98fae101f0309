//! The Parquet table sink: a folder of `part-NNNNN.parquet` files (zstd), tensors as Arrow's
//! fixed-shape tensor extension type.
//!
//! Contract: parts are written under hidden temporary names and renamed only when the whole
//! stream has ended without error; then the errors table (`_errors.parquet`), the manifest
//! (`_manifest.json`: rows, schema, inputs, config) and last the `_SUCCESS` marker. A folder
//! without `_SUCCESS` is incomplete. With a shard `i/n`, every name carries the shard
//! (`part-0002-of-0008-00000.parquet`, `_SUCCESS-0002-of-0008`, ...) so shards can share a folder.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;

use ldae_pipeline::columns::tensor_type;
use ldae_pipeline::{BuildContext, Error, Result, RunSummary, Sink, SinkConfig, SinkJob};

use crate::atomic::{commit, temp_path, write_atomic};
use crate::errors_table::write_errors_table;

/// `parquet` (sink): a table folder of zstd `part-NNNNN.parquet` files written under temporary
/// names and renamed when complete, then `_errors.parquet`, `_manifest.json` and `_SUCCESS`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ParquetSinkConfig {
    /// Output folder.
    pub out: PathBuf,
    /// Start a new part file after this many rows.
    pub rows_per_file: usize,
    /// Rows per Parquet row group.
    pub row_group_size: usize,
    /// zstd level.
    pub zstd_level: i32,
    /// `(index, count)` when this run writes one shard of a larger job (default: the source's
    /// shard).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<(usize, usize)>,
}

impl SinkConfig for ParquetSinkConfig {
    const KIND: &'static str = "parquet";
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn SinkJob>> {
        let mut config = self.clone();
        config.out = ctx.resolve(&config.out);
        if config.shard.is_none() {
            config.shard = ctx.shard;
        }
        Ok(<dyn SinkJob>::once(Box::new(ParquetSink::new(
            config,
            ctx.job.clone(),
        )?)))
    }
}
ldae_pipeline::register_sink!(ParquetSinkConfig);

impl Default for ParquetSinkConfig {
    fn default() -> Self {
        ParquetSinkConfig {
            out: PathBuf::from("out"),
            rows_per_file: 100_000,
            row_group_size: 4096,
            zstd_level: 3,
            shard: None,
        }
    }
}

struct OpenPart {
    writer: ArrowWriter<File>,
    temp: PathBuf,
    name: String,
    rows: usize,
}

/// The Parquet table sink.
pub struct ParquetSink {
    config: ParquetSinkConfig,
    /// Free-form description of the job (inputs, settings) for the manifest.
    job: serde_json::Value,
    schema: Option<SchemaRef>,
    open: Option<OpenPart>,
    /// Finished parts still under temporary names: (temp, final name, rows).
    done: Vec<(PathBuf, String, usize)>,
}

impl ParquetSink {
    /// A sink writing to `config.out`; `job` goes into the manifest. Nothing is touched until
    /// the plan checks out; then the folder is prepared: the old `_SUCCESS` marker of this
    /// shard goes first (so the folder stops looking complete), then this shard's old parts and
    /// leftovers of killed runs.
    pub fn new(config: ParquetSinkConfig, job: serde_json::Value) -> Result<Self> {
        Ok(ParquetSink {
            config,
            job,
            schema: None,
            open: None,
            done: Vec::new(),
        })
    }

    /// Create the folder and clear what an earlier run of this shard left. Called once the
    /// plan is known to be good, so a spec that fails to plan never touches an old output.
    fn prepare(&self) -> Result<()> {
        let out = &self.config.out;
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        let sink = self;
        let marker = sink.marker_path();
        if marker.exists() {
            std::fs::remove_file(&marker).map_err(|e| Error::io(&marker, e))?;
        }
        let prefix = sink.part_prefix();
        let out = &sink.config.out;
        for entry in std::fs::read_dir(out).map_err(|e| Error::io(out, e))? {
            let path = entry.map_err(|e| Error::io(out, e))?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let ours = name.strip_prefix('.').unwrap_or(&name).starts_with(&prefix);
            let stale = ours && (name.ends_with(".parquet") || name.ends_with(".parquet.tmp"));
            if stale || (name.starts_with('.') && name.ends_with(".tmp")) {
                std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
            }
        }
        Ok(())
    }

    fn suffix(&self) -> String {
        match self.config.shard {
            Some((i, n)) => format!("-{i:04}-of-{n:04}"),
            None => String::new(),
        }
    }

    fn part_prefix(&self) -> String {
        format!("part{}-", self.suffix())
    }

    /// `_SUCCESS` (or `_SUCCESS-IIII-of-NNNN` for a shard).
    pub fn marker_path(&self) -> PathBuf {
        self.config.out.join(format!("_SUCCESS{}", self.suffix()))
    }

    /// `_manifest.json` (or `_manifest-IIII-of-NNNN.json`).
    pub fn manifest_path(&self) -> PathBuf {
        self.config
            .out
            .join(format!("_manifest{}.json", self.suffix()))
    }

    /// `_errors.parquet` (or `_errors-IIII-of-NNNN.parquet`).
    pub fn errors_path(&self) -> PathBuf {
        self.config
            .out
            .join(format!("_errors{}.parquet", self.suffix()))
    }

    fn start_part(&mut self) -> Result<()> {
        let schema = self
            .schema
            .clone()
            .ok_or_else(|| Error::msg("parquet sink used before its schema was checked"))?;
        let index = self.done.len();
        let name = format!("{}{index:05}.parquet", self.part_prefix());
        let path = self.config.out.join(&name);
        let temp = temp_path(&path);
        let file = File::create(&temp).map_err(|e| Error::io(&temp, e))?;
        let level = ZstdLevel::try_new(self.config.zstd_level)
            .map_err(|e| Error::external("zstd level", e))?;
        let mut props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(self.config.row_group_size.max(1)));
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
        let writer = ArrowWriter::try_new(file, schema, Some(props))
            .map_err(|e| Error::external(format!("{}", path.display()), e))?;
        self.open = Some(OpenPart {
            writer,
            temp,
            name,
            rows: 0,
        });
        Ok(())
    }

    fn close_part(&mut self) -> Result<()> {
        if let Some(part) = self.open.take() {
            let file = part
                .writer
                .into_inner()
                .map_err(|e| Error::external(format!("{}", part.temp.display()), e))?;
            file.sync_all().map_err(|e| Error::io(&part.temp, e))?;
            self.done.push((part.temp, part.name, part.rows));
        }
        Ok(())
    }
}

fn describe_schema(schema: &SchemaRef) -> serde_json::Value {
    schema
        .fields()
        .iter()
        .map(|f| match tensor_type(f) {
            Some((el, shape)) => serde_json::json!({
                "name": f.name(), "type": "tensor", "element": el.to_string(), "shape": shape,
            }),
            None => serde_json::json!({
                "name": f.name(), "type": f.data_type().to_string(), "nullable": f.is_nullable(),
            }),
        })
        .collect()
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

impl Sink for ParquetSink {
    fn name(&self) -> String {
        "parquet".into()
    }

    fn check_schema(&mut self, input: &SchemaRef) -> Result<()> {
        self.prepare()?;
        self.schema = Some(input.clone());
        Ok(())
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let mut offset = 0;
        while offset < batch.num_rows() {
            if self.open.is_none() {
                self.start_part()?;
            }
            let limit = self.config.rows_per_file.max(1);
            let part = self
                .open
                .as_mut()
                .ok_or_else(|| Error::msg("no open part"))?;
            let take = (limit - part.rows).min(batch.num_rows() - offset);
            part.writer
                .write(&batch.slice(offset, take))
                .map_err(|e| Error::external(format!("{}", part.temp.display()), e))?;
            part.rows += take;
            offset += take;
            if part.rows >= limit {
                self.close_part()?;
            }
        }
        Ok(())
    }

    fn finish(&mut self, summary: &RunSummary<'_>) -> Result<serde_json::Value> {
        self.close_part()?;
        let mut files = Vec::new();
        for (temp, name, rows) in std::mem::take(&mut self.done) {
            let path = self.config.out.join(&name);
            commit(&temp, &path)?;
            files.push(serde_json::json!({ "name": name, "rows": rows, "bytes": file_len(&path) }));
        }
        let errors = self.errors_path();
        write_errors_table(&errors, summary.rejected)?;
        let schema = self.schema.as_ref().map(describe_schema);
        let manifest = serde_json::json!({
            "format": "ldae-table",
            "version": 1,
            "ldae_version": env!("CARGO_PKG_VERSION"),
            "rows": summary.rows_out,
            "rows_in": summary.rows_in,
            "rows_rejected": summary.rejected.len(),
            "files": files,
            "errors": errors.file_name().map(|n| n.to_string_lossy().to_string()),
            "schema": schema,
            "shard": self.config.shard.map(|(i, n)| format!("{i}/{n}")),
            "job": self.job,
        });
        let text =
            serde_json::to_string_pretty(&manifest).map_err(|e| Error::msg(e.to_string()))?;
        write_atomic(&self.manifest_path(), text.as_bytes())?;
        write_atomic(&self.marker_path(), b"")?;
        Ok(serde_json::json!({
            "out": self.config.out.display().to_string(),
            "rows": summary.rows_out,
            "files": manifest["files"].as_array().map(|a| a.len()).unwrap_or(0),
            "errors": errors.display().to_string(),
        }))
    }

    fn abort(&mut self) {
        if let Some(part) = self.open.take() {
            drop(part.writer);
            let _ = std::fs::remove_file(&part.temp);
        }
        for (temp, _, _) in self.done.drain(..) {
            let _ = std::fs::remove_file(temp);
        }
    }
}
