//! Committing a shard's part files one by one, so that a killed shard resumes after its last
//! committed part, marking the shard done, and resetting it (taking a published table back
//! from readers first).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::{
    io, names_in, remove_if_exists, state_dir, sync_dir, DATA, ERRORS, MANIFEST, SUCCESS,
};
use super::lock::{lock_file, TableFolder};
use crate::atomic_file::{commit, read_json, write_json};
use crate::{fault, Error, RejectedRow, Result, Shard};

/// The commit record of one part file: written after the file itself is in place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    /// The part's file name.
    pub name: String,
    /// Rows in the file.
    pub rows: u64,
    /// Source rows this part accounts for (its rows plus the rows rejected among them).
    pub rows_in: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    /// The rows rejected among this part's source rows.
    pub rejected: Vec<RejectedRow>,
}

/// A finished shard's manifest (`done.json`): its completion marker.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardDone {
    /// The shard.
    pub shard: Shard,
    /// Rows written.
    pub rows: u64,
    /// Source rows read.
    pub rows_in: u64,
    /// Every part, in order.
    pub files: Vec<PartRecord>,
    /// Rejected rows not covered by a part record (after the last part).
    pub rejected_tail: Vec<RejectedRow>,
    /// The output schema, described.
    pub schema: serde_json::Value,
}

impl ShardDone {
    /// Every rejected row of the shard, in input order.
    pub fn rejected(&self) -> Vec<RejectedRow> {
        let mut all: Vec<RejectedRow> = self
            .files
            .iter()
            .flat_map(|f| f.rejected.iter().cloned())
            .collect();
        all.extend(self.rejected_tail.iter().cloned());
        all
    }
}

impl TableFolder {
    fn done_path(&self) -> PathBuf {
        self.shard_dir().join("done.json")
    }

    fn failed_path(&self) -> PathBuf {
        self.shard_dir().join("failed.json")
    }

    fn plan_path(&self) -> PathBuf {
        self.shard_dir().join("plan.json")
    }

    /// The shard's manifest, if it finished.
    pub fn done(&self) -> Result<Option<ShardDone>> {
        let path = self.done_path();
        path.exists().then(|| read_json(&path)).transpose()
    }

    /// Forget this shard's work (parts, records, marker) so it runs again; unpublishes the
    /// table first if it was published.
    pub fn reset_shard(&self) -> Result<()> {
        self.unpublish()?;
        let staged = self.staged();
        let prefix = self.shard.part_prefix();
        for name in names_in(&staged)? {
            // An unsharded job's prefix `part-` matches every part: it has no other shard.
            if name.strip_prefix('.').unwrap_or(&name).starts_with(&prefix) {
                remove_if_exists(&staged.join(&name))?;
            }
        }
        let dir = self.shard_dir();
        std::fs::remove_dir_all(&dir).map_err(io(&dir))?;
        crate::folders::create_dir_all(&dir)
    }

    /// The committed parts of this shard, after removing what a killed run left half-done (a
    /// temporary part, a part whose record was never written). `planned_rows` is checked
    /// against the count the committed parts were planned with: a changed input is an error,
    /// not a silent mix.
    pub fn committed(&self, planned_rows: Option<u64>) -> Result<Vec<PartRecord>> {
        let dir = self.shard_dir();
        let mut records: Vec<PartRecord> = Vec::new();
        for name in names_in(&dir)? {
            if name.starts_with("part-") && name.ends_with(".json") {
                records.push(read_json(&dir.join(&name))?);
            }
        }
        for (k, r) in records.iter().enumerate() {
            let expected = self.shard.part_name(k);
            let path = self.staged().join(&r.name);
            let bytes = std::fs::metadata(&path).map(|m| m.len()).ok();
            if r.name != expected || bytes != Some(r.bytes) {
                return Err(Error::conflict(
                    &self.out,
                    format!(
                        "the committed part {} of shard {} is missing or changed; \
                     rerun with --overwrite to redo the shard",
                        r.name, self.shard
                    ),
                ));
            }
        }
        // Leftovers of a killed run: this shard's temporaries and unrecorded parts.
        let prefix = self.shard.part_prefix();
        let staged = self.staged();
        for name in names_in(&staged)? {
            let temp = name.starts_with('.') && name.ends_with(".tmp");
            let bare = name.strip_prefix('.').unwrap_or(&name);
            let mine = bare.starts_with(&prefix);
            let recorded = records.iter().any(|r| r.name == name);
            if mine && (temp || !recorded) {
                remove_if_exists(&staged.join(&name))?;
            }
        }
        let plan = self.plan_path();
        if !records.is_empty() && plan.exists() {
            let was: Option<u64> = read_json(&plan)?;
            if was != planned_rows {
                return Err(Error::conflict(
                    &self.out,
                    format!(
                        "the input of shard {} changed since its committed parts were written \
                     ({} rows planned then, {} now); rerun with --overwrite",
                        self.shard,
                        was.map_or("?".into(), |r| r.to_string()),
                        planned_rows.map_or("?".into(), |r| r.to_string())
                    ),
                ));
            }
        }
        write_json(&plan, &planned_rows)?;
        remove_if_exists(&self.failed_path())?;
        Ok(records)
    }

    /// Commit a finished part: move its temporary file into the staged parts, then write its
    /// record. A kill between the two leaves an unrecorded part, removed on resume.
    pub fn commit_part(&self, k: usize, temp: &Path, record: &PartRecord) -> Result<()> {
        commit(temp, &self.staged().join(&record.name))?;
        sync_dir(&self.staged())?;
        fault::point(fault::points::PART_MOVED);
        write_json(&self.shard_dir().join(format!("part-{k:05}.json")), record)?;
        // The record is what makes the part count on resume: durable before we go on.
        sync_dir(&self.shard_dir())?;
        fault::point(fault::points::PART_COMMITTED);
        Ok(())
    }

    /// Mark the shard done.
    pub fn finish_shard(&self, done: &ShardDone) -> Result<()> {
        write_json(&self.done_path(), done)
    }

    /// Record that the shard's last attempt failed (for `ldae status`).
    pub fn record_failure(&self, error: &str) {
        let _ = write_json(
            &self.failed_path(),
            &serde_json::json!({ "error": error, "pid": std::process::id() }),
        );
    }

    /// Take the table back from readers before a shard is redone: the marker goes first.
    fn unpublish(&self) -> Result<()> {
        let state = state_dir(&self.out);
        let lock = lock_file(&state.join("publish.lock"))?;
        lock.lock().map_err(io(&state.join("publish.lock")))?;
        remove_if_exists(&self.out.join(SUCCESS))?;
        remove_if_exists(&self.out.join(MANIFEST))?;
        remove_if_exists(&self.out.join(ERRORS))?;
        let data = self.out.join(DATA);
        if data.is_dir() {
            let staged = self.staged();
            if staged.is_dir() && names_in(&staged)?.is_empty() {
                std::fs::remove_dir(&staged).map_err(io(&staged))?;
            }
            std::fs::rename(&data, &staged).map_err(io(&data))?;
        }
        Ok(())
    }
}
