//! Opening a table folder for one shard of a job, under `flock` locks that the kernel releases
//! when a process dies (so a killed shard never blocks its rerun): `setup.lock` (exclusive,
//! briefly) guards the job identity in `job.json`; `job.lock` is held shared by every live
//! shard, so starting over (`overwrite`) a folder that a live job uses is refused;
//! `shard-IIII-of-NNNN.lock` (exclusive) keeps two processes off one shard; `publish.lock`
//! (exclusive) makes publishing race-free between shards that finish together.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::layout::{io, names_in, remove_if_exists, shard_dir, state_dir, DATA, STATE, SUCCESS};
use crate::atomic_file::{read_json, write_json};
use crate::{Error, Result, Shard};

/// What `job.json` holds: who owns the folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct JobFile {
    pub(super) format: String,
    pub(super) shards: usize,
    pub(super) job: serde_json::Value,
}

/// A table folder seen from one shard of the job writing it. Holds the shard's locks until
/// dropped.
pub struct TableFolder {
    pub(super) out: PathBuf,
    pub(super) shard: Shard,
    _job_lock: Option<File>,
    _shard_lock: Option<File>,
}

pub(crate) fn lock_file(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io(path))
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

/// `job` as `job.json` gives it back: serde_json's parsing of a printed f64 can land one unit
/// in the last place away (a CLIP mean of 0.4578275 as f32 reads back as another f64), so a
/// job is compared with the record as both went through the file, not as computed.
fn as_stored(job: &serde_json::Value) -> Result<serde_json::Value> {
    serde_json::from_str(&job.to_string())
        .map_err(|e| Error::internal(format!("job record does not read back: {e}")))
}

impl TableFolder {
    /// This shard's working folder.
    pub(super) fn shard_dir(&self) -> PathBuf {
        shard_dir(&self.out, self.shard)
    }

    /// Where parts wait until the table is published.
    pub fn staged(&self) -> PathBuf {
        state_dir(&self.out).join(DATA)
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
        let state = state_dir(out);
        Self::check_foreign(out, overwrite)?;
        crate::folders::create_dir_all(&state)?;
        let setup = lock_file(&state.join("setup.lock"))?;
        setup
            .lock()
            .map_err(|e| Error::io(state.join("setup.lock"), e))?;
        let wanted = JobFile {
            format: "ldae-job".into(),
            shards: shard.count,
            job: as_stored(job)?,
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
        crate::folders::create_dir_all(&folder.shard_dir())?;
        // Parts are staged until the table is published; a published table has none.
        if !out.join(DATA).exists() {
            crate::folders::create_dir_all(&folder.staged())?;
        }
        Ok(folder)
    }

    /// Refuse (or, with `overwrite`, clear) a folder that is not an ldae job folder: one with
    /// files but no `_ldae/job.json` (an older ldae's table, or someone else's files).
    fn check_foreign(out: &Path, overwrite: bool) -> Result<()> {
        // `_ldae/` alone is a job being set up by another shard right now (or a setup that
        // was killed before it recorded the job): ours either way.
        let names: Vec<String> = names_in(out)?.into_iter().filter(|n| n != STATE).collect();
        if names.is_empty() || state_dir(out).join("job.json").exists() {
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
}

/// What makes two runs the same job: the spec (`job`) without what differs between its
/// shards or runs (the shard index, `overwrite`, `resume`), with the input resolved, plus
/// the size and modification time of every file or folder the operators name (a PCA model,
/// a checkpoint), so a table is never completed with rows from a changed model.
pub fn job_identity(job: &serde_json::Value, ctx: &crate::BuildContext) -> serde_json::Value {
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
    // The shards of a large Parquet table were every n-th row until 2026-12-07 and are runs
    // of its row groups' rows since: a job folder begun with the former split must not be
    // resumed with this one (its shards would repeat some rows and miss others).
    let sharded = job
        .pointer("/source/shard/count")
        .and_then(|c| c.as_u64())
        .is_some_and(|c| c > 1);
    if let Some(obj) = job.as_object_mut() {
        obj.insert("files".into(), serde_json::Value::Object(files));
        if sharded {
            obj.insert("shard_rows".into(), SHARD_ROWS.into());
        }
    }
    job
}

/// How a sharded job splits its rows (recorded in the job's identity).
const SHARD_ROWS: &str = "runs of a row-group table's rows, every n-th row of other datasets";

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

#[cfg(test)]
mod tests {
    use super::*;

    /// The same job opens its folder again (as `--resume` and every shard do) although one of
    /// its numbers does not survive serde_json's print-and-parse bit for bit: CLIP's channel
    /// mean 0.4578275 as f32, widened to f64.
    #[test]
    fn a_job_recognises_its_own_record() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("t");
        let mean = f64::from(0.457_827_5_f32);
        let job = serde_json::json!({ "mean": [0.481_454_66_f32, mean] });
        let reread: serde_json::Value = serde_json::from_str(&job.to_string()).unwrap();
        // The premise: the printed number reads back as another f64.
        assert_ne!(reread, job, "serde_json now reads this number back exactly");
        let shard = Shard { index: 0, count: 1 };
        drop(TableFolder::open(&out, shard, &job, false).unwrap());
        TableFolder::open(&out, shard, &job, false).expect("the same job opens its folder again");
        // Another job is still told apart.
        let other = serde_json::json!({ "mean": [0.481_454_66_f32, 0.5] });
        assert!(TableFolder::open(&out, shard, &other, false).is_err());
    }
}
