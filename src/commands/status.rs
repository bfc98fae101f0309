//! `ldae status DIR`: which shards of a job are done, and which array indices to resubmit.

use std::path::Path;

use anyhow::Result;
use ldae_pipeline::table::{job_status, ShardState};

/// Array indices as a scheduler takes them: `0,3-5,9`.
pub fn index_ranges(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < indices.len() {
        let start = indices[i];
        let mut end = start;
        while i + 1 < indices.len() && indices[i + 1] == end + 1 {
            i += 1;
            end = indices[i];
        }
        parts.push(if end > start {
            format!("{start}-{end}")
        } else {
            start.to_string()
        });
        i += 1;
    }
    parts.join(",")
}

/// Print the state of the job folder `dir`. Returns whether the job is complete; the command
/// exits with status 1 when it is not, so scripts can wait on it.
pub fn run(dir: &Path) -> Result<bool> {
    if !dir.join(ldae_pipeline::table::layout::STATE).is_dir() {
        if let Some(done) = partials(dir)? {
            return Ok(done);
        }
    }
    let status = job_status(dir)?;
    println!(
        "{:>6}  {:<8} {:>10} {:>9} {:>6}  note",
        "shard", "state", "rows", "rejected", "parts"
    );
    let mut counts = [0usize; 5];
    for (i, state) in status.states.iter().enumerate() {
        let (word, rows, rejected, parts, note, slot) = match state {
            ShardState::Done { rows, rejected } => {
                ("done", *rows, Some(*rejected), None, String::new(), 0)
            }
            ShardState::Running { rows, parts } => (
                "running",
                *rows,
                None,
                Some(*parts),
                "a live process holds it".to_string(),
                1,
            ),
            ShardState::Partial { rows, parts } => (
                "partial",
                *rows,
                None,
                Some(*parts),
                "killed: a rerun resumes after its committed parts".to_string(),
                2,
            ),
            ShardState::Failed {
                rows,
                rejected,
                error,
            } => ("failed", *rows, Some(*rejected), None, error.clone(), 3),
            ShardState::Missing => ("missing", 0, None, None, String::new(), 4),
        };
        counts[slot] += 1;
        let show = |v: Option<u64>| v.map_or("-".to_string(), |v| v.to_string());
        let note = note.lines().next().unwrap_or("").to_string();
        println!(
            "{i:>6}  {word:<8} {rows:>10} {:>9} {:>6}  {note}",
            show(rejected),
            show(parts.map(|p| p as u64)),
        );
    }
    println!(
        "{}: {} shard(s): {} done, {} running, {} partial, {} failed, {} missing; table {}",
        dir.display(),
        status.shards,
        counts[0],
        counts[1],
        counts[2],
        counts[3],
        counts[4],
        if status.complete {
            "published (_SUCCESS)"
        } else {
            "not published yet"
        }
    );
    let again = status.to_resubmit();
    if !again.is_empty() {
        let list = index_ranges(&again);
        println!("resubmit: {list}   (e.g. sbatch --array={list} ...)");
    }
    Ok(status.complete)
}

/// The state of a folder of `pca fit --partial` files; `None` when it holds none.
fn partials(dir: &Path) -> Result<Option<bool>> {
    if !dir.is_dir() {
        return Ok(None);
    }
    let Some((count, present)) = ldae_jobs::pca_fit::partial_status(dir)? else {
        return Ok(None);
    };
    println!("{:>6}  state", "shard");
    for (i, here) in present.iter().enumerate() {
        println!("{i:>6}  {}", if *here { "done" } else { "missing" });
    }
    let missing: Vec<usize> = (0..count).filter(|&i| !present[i]).collect();
    println!(
        "{}: {count} partial shard(s): {} done, {} missing",
        dir.display(),
        count - missing.len(),
        missing.len()
    );
    if missing.is_empty() {
        println!(
            "every partial is here: `ldae pca merge {} --out pca.safetensors`",
            dir.display()
        );
    } else {
        let list = index_ranges(&missing);
        println!("resubmit: {list}   (e.g. sbatch --array={list} ...)");
    }
    Ok(Some(missing.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::index_ranges;

    #[test]
    fn ranges_compress_runs() {
        assert_eq!(index_ranges(&[]), "");
        assert_eq!(index_ranges(&[3]), "3");
        assert_eq!(index_ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }
}
