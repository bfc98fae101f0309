//! The writer's side of a table folder shared by the shards of one job (the layout is in
//! [`ldae_pipeline::table_layout`]).
//!
//! Every shard (an unsharded job is shard 0 of 1) commits its part files into
//! `_ldae/data/` as they complete, each followed by a commit record
//! (`_ldae/shard-IIII-of-NNNN/part-KKKKK.json`: rows, source rows covered, rejected rows), so a
//! killed shard resumes after its last record. A finished shard writes `done.json` (its
//! manifest and completion marker). The shard that finds every shard done publishes the table:
//! one rename moves `_ldae/data` to `data`, then `_errors.parquet`, `_manifest.json` and
//! `_SUCCESS` are written. Until that rename no reader that skips `_` names sees any row.
//!
//! Locks (`flock`, released by the kernel when a process dies, so a killed shard never blocks
//! its rerun): `setup.lock` (exclusive, briefly) guards the job identity in `job.json`;
//! `job.lock` is held shared by every live shard, so starting over (`overwrite`) a folder that
//! a live job uses is refused; `shard-IIII-of-NNNN.lock` (exclusive) keeps two processes off
//! one shard; `publish.lock` (exclusive) makes publishing race-free between shards that finish
//! together.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use ldae_pipeline::table_layout::{DATA, ERRORS, MANIFEST, STATE, SUCCESS};
use ldae_pipeline::{fault, Error, RejectedRow, Result, Shard};

use crate::atomic::{commit, read_json, write_atomic, write_json};
use crate::errors_table::write_errors_table;

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

/// What `job.json` holds: who owns the folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct JobFile {
    format: String,
    shards: usize,
    job: serde_json::Value,
}

/// What happened when a shard tried to publish the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The table is complete (now or before).
    Yes,
    /// `done` of `of` shards are done; the last one to finish publishes.
    NotYet { done: usize, of: usize },
}

/// The state of one shard, as `ldae status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum ShardState {
    /// Finished: rows written, rows rejected.
    Done { rows: u64, rejected: u64 },
    /// A live process holds the shard: rows committed so far.
    Running { rows: u64, parts: usize },
    /// The last attempt failed with this error; rows committed so far (a rerun resumes).
    Failed {
        rows: u64,
        rejected: u64,
        error: String,
    },
    /// Killed (or still queued) with committed parts: a rerun resumes after them.
    Partial { rows: u64, parts: usize },
    /// Nothing committed.
    Missing,
}

/// A table folder seen from one shard of the job writing it. Holds the shard's locks until
/// dropped.
pub struct TableFolder {
    out: PathBuf,
    shard: Shard,
    _job_lock: Option<File>,
    _shard_lock: Option<File>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::io(path, e)
}

fn lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(path))
}

/// Flush a folder's entries (renames into it) to disk, so a committed file survives a crash.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

fn remove_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(path, e)),
        _ => Ok(()),
    }
}

fn names_in(dir: &Path) -> Result<Vec<String>> {
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

/// The first place two job descriptions differ, as `/path: was X, is Y`.
fn first_difference(path: &str, was: &serde_json::Value, is: &serde_json::Value) -> String {
    use serde_json::Value;
    match (was, is) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let (x, y) = (
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                );
                if x != y {
                    return first_difference(&format!("{path}/{k}"), x, y);
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                if x != y {
                    return first_difference(&format!("{path}/{i}"), x, y);
                }
            }
        }
        _ => {}
    }
    format!("{path}: was {was}, is {is} now")
}

impl TableFolder {
    /// The state folder.
    fn state(out: &Path) -> PathBuf {
        out.join(STATE)
    }

    fn shard_dir(&self) -> PathBuf {
        Self::state(&self.out).join(format!("shard-{}", self.shard.tag()))
    }

    /// Where parts wait until the table is published.
    pub fn staged(&self) -> PathBuf {
        Self::state(&self.out).join(DATA)
    }

    /// The output folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// The shard this folder handle writes.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// Open `out` for `shard` of the job described by `job`: create the folder, check (or
    /// record) that it belongs to this job and shard count, and lock the shard. With
    /// `overwrite`, a folder of another job is cleared first (refused while a process of that
    /// job is alive). A folder that holds other files than ldae's is refused.
    pub fn open(
        out: &Path,
        shard: Shard,
        job: &serde_json::Value,
        overwrite: bool,
    ) -> Result<TableFolder> {
        if shard.count == 0 || shard.index >= shard.count {
            return Err(Error::invalid(format!("invalid shard {shard}")));
        }
        let state = Self::state(out);
        Self::check_foreign(out, overwrite)?;
        ldae_pipeline::folders::create_dir_all(&state)?;
        let setup = lock_file(&state.join("setup.lock"))?;
        setup
            .lock()
            .map_err(|e| Error::io(state.join("setup.lock"), e))?;
        let wanted = JobFile {
            format: "ldae-job".into(),
            shards: shard.count,
            job: job.clone(),
        };
        let job_path = state.join("job.json");
        let job_lock_path = state.join("job.lock");
        let job_lock = lock_file(&job_lock_path)?;
        if job_path.exists() {
            let held: JobFile = read_json(&job_path)?;
            if held != wanted {
                let what = if held.shards != wanted.shards {
                    format!(
                        "it holds a job of {} shard(s), this is shard {shard}",
                        held.shards
                    )
                } else {
                    format!(
                        "it holds another job ({})",
                        first_difference("", &held.job, &wanted.job)
                    )
                };
                if !overwrite {
                    return Err(Error::conflict(
                        out,
                        format!(
                            "{what}; write to another --out, or pass --overwrite to start over"
                        ),
                    ));
                }
                if job_lock.try_lock().is_err() {
                    return Err(Error::conflict(
                        out,
                        format!(
                            "{what}, and a live process of that job is writing it; \
                         cannot start over"
                        ),
                    ));
                }
                Self::clear(out)?;
                job_lock.unlock().map_err(io(&job_lock_path))?;
                write_json(&job_path, &wanted)?;
            }
        } else {
            write_json(&job_path, &wanted)?;
        }
        job_lock.lock_shared().map_err(io(&job_lock_path))?;
        let shard_lock_path = state.join(format!("shard-{}.lock", shard.tag()));
        let shard_lock = lock_file(&shard_lock_path)?;
        if shard_lock.try_lock().is_err() {
            return Err(Error::conflict(
                out,
                format!("shard {shard} is being written by another live process"),
            ));
        }
        drop(setup);
        let folder = TableFolder {
            out: out.to_path_buf(),
            shard,
            _job_lock: Some(job_lock),
            _shard_lock: Some(shard_lock),
        };
        ldae_pipeline::folders::create_dir_all(&folder.shard_dir())?;
        // Parts are staged until the table is published; a published table has none.
        if !out.join(DATA).exists() {
            ldae_pipeline::folders::create_dir_all(&folder.staged())?;
        }
        Ok(folder)
    }

    /// Refuse (or, with `overwrite`, clear) a folder that is not an ldae job folder: one with
    /// files but no `_ldae/job.json` (an older ldae's table, or someone else's files).
    fn check_foreign(out: &Path, overwrite: bool) -> Result<()> {
        // `_ldae/` alone is a job being set up by another shard right now (or a setup that
        // was killed before it recorded the job): ours either way.
        let names: Vec<String> = names_in(out)?.into_iter().filter(|n| n != STATE).collect();
        if names.is_empty() || Self::state(out).join("job.json").exists() {
            return Ok(());
        }
        let ours = |n: &str| {
            n.starts_with("part-")
                || n.starts_with("_SUCCESS")
                || n.starts_with("_manifest")
                || n.starts_with("_errors")
                || n == DATA
                || n == STATE
                || (n.starts_with('.') && n.ends_with(".tmp"))
        };
        if !overwrite {
            return Err(Error::conflict(
                out,
                format!(
                    "the folder exists and holds no ldae job ({} entries, e.g. '{}'); \
                 write to another --out, or pass --overwrite to replace ldae's files in it",
                    names.len(),
                    names[0]
                ),
            ));
        }
        if let Some(other) = names.iter().find(|n| !ours(n)) {
            return Err(Error::conflict(
                out,
                format!(
                    "the folder holds files ldae did not write (e.g. '{other}'); \
                 refusing to write a table into it"
                ),
            ));
        }
        Self::clear(out)
    }

    /// Remove every file of a table folder but the lock files (which live processes of other
    /// jobs may be waiting on); the marker goes first, so the folder stops reading as complete.
    fn clear(out: &Path) -> Result<()> {
        remove_if_exists(&out.join(SUCCESS))?;
        for name in names_in(out)? {
            let path = out.join(&name);
            if name == STATE {
                for inner in names_in(&path)? {
                    let p = path.join(&inner);
                    if inner.ends_with(".lock") {
                        continue;
                    }
                    if p.is_dir() {
                        std::fs::remove_dir_all(&p).map_err(io(&p))?;
                    } else {
                        remove_if_exists(&p)?;
                    }
                }
            } else if path.is_dir() && name == DATA {
                std::fs::remove_dir_all(&path).map_err(io(&path))?;
            } else if path.is_file() {
                remove_if_exists(&path)?;
            }
        }
        Ok(())
    }

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
        ldae_pipeline::folders::create_dir_all(&dir)
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
        let state = Self::state(&self.out);
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

    /// Publish the table if every shard is done (whoever calls this last does it; the lock
    /// makes two shards finishing together safe, and publishing twice is a no-op).
    pub fn publish(&self, job: &serde_json::Value) -> Result<Published> {
        let state = Self::state(&self.out);
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
            let path = state.join(format!("shard-{}", id.tag())).join("done.json");
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

/// A job folder as `ldae status` reports it.
#[derive(Debug, Clone)]
pub struct JobStatus {
    /// Shards the job has.
    pub shards: usize,
    /// The state of each shard, in order.
    pub states: Vec<ShardState>,
    /// Whether the table is published (`_SUCCESS`).
    pub complete: bool,
}

impl JobStatus {
    /// The shards a scheduler should run again: not done and not running.
    pub fn to_resubmit(&self) -> Vec<usize> {
        self.states
            .iter()
            .enumerate()
            .filter(|(_, s)| !matches!(s, ShardState::Done { .. } | ShardState::Running { .. }))
            .map(|(i, _)| i)
            .collect()
    }
}

/// Read the state of the job writing (or that wrote) the table folder `out`.
pub fn job_status(out: &Path) -> Result<JobStatus> {
    let state = TableFolder::state(out);
    let job_path = state.join("job.json");
    if !job_path.exists() {
        return Err(Error::corrupt(
            out,
            format!("not an ldae job folder (no {STATE}/job.json)"),
        ));
    }
    let job: JobFile = read_json(&job_path)?;
    let mut states = Vec::with_capacity(job.shards);
    for i in 0..job.shards {
        let id = Shard {
            index: i,
            count: job.shards,
        };
        let dir = state.join(format!("shard-{}", id.tag()));
        let done = dir.join("done.json");
        if done.exists() {
            let d: ShardDone = read_json(&done)?;
            states.push(ShardState::Done {
                rows: d.rows,
                rejected: d.rejected().len() as u64,
            });
            continue;
        }
        let mut rows = 0;
        let mut rejected = 0;
        let mut parts = 0;
        for name in names_in(&dir)? {
            if name.starts_with("part-") && name.ends_with(".json") {
                let r: PartRecord = read_json(&dir.join(&name))?;
                rows += r.rows;
                rejected += r.rejected.len() as u64;
                parts += 1;
            }
        }
        let lock_path = state.join(format!("shard-{}.lock", id.tag()));
        let running = lock_path.exists()
            && lock_file(&lock_path)
                .map(|f| f.try_lock_shared().is_err())
                .unwrap_or(false);
        let failed = dir.join("failed.json");
        states.push(if running {
            ShardState::Running { rows, parts }
        } else if failed.exists() {
            let v: serde_json::Value = read_json(&failed)?;
            ShardState::Failed {
                rows,
                rejected,
                error: v["error"].as_str().unwrap_or("?").to_string(),
            }
        } else if parts > 0 {
            ShardState::Partial { rows, parts }
        } else {
            ShardState::Missing
        });
    }
    Ok(JobStatus {
        shards: job.shards,
        states,
        complete: out.join(SUCCESS).exists(),
    })
}

/// What makes two runs the same job: the spec (`job`) without what differs between its
/// shards or runs (the shard index, `overwrite`, `resume`), with the input resolved, plus
/// the size and modification time of every file or folder the operators name (a PCA model,
/// a checkpoint), so a table is never completed with rows from a changed model.
pub fn job_identity(
    job: &serde_json::Value,
    ctx: &ldae_pipeline::BuildContext,
) -> serde_json::Value {
    let mut job = job.clone();
    if let Some(shard) = job
        .pointer_mut("/source/shard")
        .and_then(|s| s.as_object_mut())
    {
        shard.remove("index");
    }
    if let Some(input) = job.pointer_mut("/source/input") {
        *input = serde_json::Value::String(ctx.input.clone());
    }
    if let Some(sink) = job.get_mut("sink").and_then(|s| s.as_object_mut()) {
        for key in ["overwrite", "resume", "shard"] {
            sink.remove(key);
        }
    }
    let mut files = serde_json::Map::new();
    if let Some(ops) = job.get("operator").and_then(|o| o.as_array()) {
        for op in ops.iter().filter_map(|o| o.as_object()) {
            for value in op.values() {
                if let Some(text) = value.as_str() {
                    let path = ctx.resolve(Path::new(text));
                    if let Some(stamp) = stamp_of(&path, 2) {
                        files.insert(path.display().to_string(), stamp);
                    }
                }
            }
        }
    }
    if let Some(obj) = job.as_object_mut() {
        obj.insert("files".into(), serde_json::Value::Object(files));
    }
    job
}

/// Size and modification time (ns) of a file, or of the files in a folder (`depth` levels).
fn stamp_of(path: &Path, depth: usize) -> Option<serde_json::Value> {
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_file() {
        let mtime = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_nanos();
        return Some(serde_json::json!([meta.len(), mtime.to_string()]));
    }
    if !meta.is_dir() || depth == 0 {
        return None;
    }
    let mut inner = serde_json::Map::new();
    for name in names_in(path).ok()?.into_iter().take(256) {
        if let Some(s) = stamp_of(&path.join(&name), depth - 1) {
            inner.insert(name, s);
        }
    }
    Some(serde_json::Value::Object(inner))
}
