//! Publishing a table once every shard of its job is done, and the errors table written with
//! it.

use std::sync::Arc;

use arrow::array::StringArray;
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use super::commit::ShardDone;
use super::layout::{io, shard_dir, state_dir, sync_dir, DATA, ERRORS, MANIFEST, STATE, SUCCESS};
use super::lock::{lock_file, TableFolder};
use crate::atomic_file::{read_json, write_atomic, write_json, write_parquet_atomic};
use crate::{fault, Error, RejectedRow, Result, Shard};

/// What happened when a shard tried to publish the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The table is complete (now or before).
    Yes,
    /// `done` of `of` shards are done; the last one to finish publishes.
    NotYet { done: usize, of: usize },
}

impl TableFolder {
    /// Publish the table if every shard is done (whoever calls this last does it; the lock
    /// makes two shards finishing together safe, and publishing twice is a no-op).
    pub fn publish(&self, job: &serde_json::Value) -> Result<Published> {
        let state = state_dir(&self.out);
        let lock = lock_file(&state.join("publish.lock"))?;
        lock.lock().map_err(io(&state.join("publish.lock")))?;
        if self.out.join(SUCCESS).exists() {
            return Ok(Published::Yes);
        }
        let mut shards = Vec::with_capacity(self.shard.count);
        for i in 0..self.shard.count {
            let id = Shard {
                index: i,
                count: self.shard.count,
            };
            let path = shard_dir(&self.out, id).join("done.json");
            if path.exists() {
                shards.push(read_json::<ShardDone>(&path)?);
            }
        }
        if shards.len() < self.shard.count {
            return Ok(Published::NotYet {
                done: shards.len(),
                of: self.shard.count,
            });
        }
        let rows: u64 = shards.iter().map(|s| s.rows).sum();
        let rows_in: u64 = shards.iter().map(|s| s.rows_in).sum();
        let rejected: Vec<RejectedRow> = shards.iter().flat_map(|s| s.rejected()).collect();
        if rows == 0 {
            return Err(Error::data(format!(
                "{}: the job wrote no rows ({rows_in} read, {} rejected, e.g. {}); \
                 nothing to publish",
                self.out.display(),
                rejected.len(),
                rejected
                    .first()
                    .map_or("-".to_string(), |r| format!("{}: {}", r.id, r.message))
            )));
        }
        let data = self.out.join(DATA);
        let staged = self.staged();
        let renamed = !staged.is_dir();
        if !renamed && data.exists() {
            return Err(Error::conflict(
                &self.out,
                format!("both {DATA}/ and {STATE}/{DATA}/ exist; rerun with --overwrite"),
            ));
        }
        // Where the parts are now: still staged, or already renamed by a publisher that was
        // killed before it wrote the marker.
        let parts_dir = if renamed { &data } else { &staged };
        let mut files = Vec::new();
        for s in &shards {
            for f in &s.files {
                if !parts_dir.join(&f.name).is_file() {
                    return Err(Error::conflict(
                        &self.out,
                        format!(
                            "part {} of shard {} is missing; rerun that shard with --overwrite",
                            f.name, s.shard
                        ),
                    ));
                }
                files.push(serde_json::json!({
                    "name": format!("{DATA}/{}", f.name),
                    "rows": f.rows,
                    "bytes": f.bytes,
                    "shard": s.shard.index,
                }));
            }
        }
        // Metadata first (its `_` names are invisible to readers of rows), then the one
        // rename that makes every row visible at once, then the marker.
        write_errors_table(&self.out.join(ERRORS), &rejected)?;
        let manifest = serde_json::json!({
            "format": "ldae-table",
            "version": 2,
            "ldae_version": env!("CARGO_PKG_VERSION"),
            "rows": rows,
            "rows_in": rows_in,
            "rows_rejected": rejected.len(),
            "files": files,
            "errors": ERRORS,
            "schema": shards[0].schema,
            "shards": self.shard.count,
            "job": job,
        });
        write_json(&self.out.join(MANIFEST), &manifest)?;
        if !renamed {
            std::fs::rename(&staged, &data).map_err(io(&data))?;
            sync_dir(&self.out)?;
            fault::point(fault::points::PUBLISH_RENAMED);
        }
        write_atomic(&self.out.join(SUCCESS), b"")?;
        Ok(Published::Yes)
    }
}

/// Write `rows` to `path` (atomically; an empty table when no row was rejected, so a stale table
/// from an earlier run never survives).
pub fn write_errors_table(path: &std::path::Path, rows: &[RejectedRow]) -> Result<()> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("stage", DataType::Utf8, false),
        Field::new("message", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.id.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.stage.as_str()))
                    .collect::<StringArray>(),
            ),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.message.as_str()))
                    .collect::<StringArray>(),
            ),
        ],
    )?;
    write_parquet_atomic(path, &batch)
}
