//! Where each shard of the job writing a table folder stands, as `ldae status` shows it.

use std::path::Path;

use super::commit::{PartRecord, ShardDone};
use super::layout::{names_in, shard_dir, state_dir, STATE, SUCCESS};
use super::lock::{lock_file, JobFile};
use crate::atomic_file::read_json;
use crate::{Error, Result, Shard};

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
    let state = state_dir(out);
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
        let dir = shard_dir(out, id);
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
