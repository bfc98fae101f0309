//! Per-stage counters recorded while a pipeline runs, and the table printed at the end.

use std::fmt::Write as _;
use std::time::Duration;

use crate::RejectedRow;

/// What one stage did during a run (summed over its worker threads).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageMetrics {
    /// Stage name (`source:folder`, `decode`, `parquet`, ...).
    pub name: String,
    /// Worker threads the stage ran on.
    pub workers: usize,
    /// Rows received (for the source: rows read, rejected ones included).
    pub rows_in: u64,
    /// Rows handed on.
    pub rows_out: u64,
    /// Rows this stage rejected.
    pub rejected: u64,
    /// Batches handed on.
    pub batches: u64,
    /// Time spent doing the stage's work.
    #[serde(serialize_with = "secs")]
    pub busy: Duration,
    /// Time spent waiting for input (upstream too slow).
    #[serde(serialize_with = "secs")]
    pub wait_input: Duration,
    /// Time spent waiting for the next stage to take output (downstream too slow).
    #[serde(serialize_with = "secs")]
    pub wait_output: Duration,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

impl StageMetrics {
    /// Add another worker's counters to this stage's.
    pub fn merge(&mut self, other: &StageMetrics) {
        self.rows_in += other.rows_in;
        self.rows_out += other.rows_out;
        self.rejected += other.rejected;
        self.batches += other.batches;
        self.busy += other.busy;
        self.wait_input += other.wait_input;
        self.wait_output += other.wait_output;
    }

    /// Rows per second of busy time per worker: what the stage sustains when it is not waiting.
    pub fn rows_per_busy_second(&self) -> f64 {
        let busy = self.busy.as_secs_f64() / self.workers.max(1) as f64;
        if busy > 0.0 {
            self.rows_in as f64 / busy
        } else {
            f64::INFINITY
        }
    }
}

/// The outcome of a successful run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    /// One entry per stage, source first, sink last.
    pub stages: Vec<StageMetrics>,
    /// Rows read by the source, rejected ones included.
    pub rows_in: u64,
    /// Rows that reached the sink.
    pub rows_out: u64,
    /// Every rejected row, in input order.
    pub rejected: Vec<RejectedRow>,
    /// Wall-clock time of the run.
    #[serde(serialize_with = "secs")]
    pub wall: Duration,
    /// What the sink wrote, as it described it.
    pub output: serde_json::Value,
}

impl RunReport {
    /// Add a later pass of the same plan (the next epoch of a training run) to this report:
    /// counters and times summed stage by stage, rejected rows appended.
    pub fn absorb(&mut self, later: &RunReport) {
        for (mine, theirs) in self.stages.iter_mut().zip(&later.stages) {
            mine.merge(theirs);
        }
        self.rows_in += later.rows_in;
        self.rows_out += later.rows_out;
        self.rejected.extend(later.rejected.iter().cloned());
        self.wall += later.wall;
        self.output = later.output.clone();
    }

    /// The per-stage table, as printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<22} {:>7} {:>10} {:>10} {:>8} {:>9} {:>9} {:>9} {:>11}",
            "stage",
            "workers",
            "rows in",
            "rows out",
            "rejected",
            "busy s",
            "wait in",
            "wait out",
            "rows/s busy"
        );
        for s in &self.stages {
            let rate = s.rows_per_busy_second();
            let rate = if rate.is_finite() {
                format!("{rate:.0}")
            } else {
                "-".to_string()
            };
            let _ = writeln!(
                out,
                "{:<22} {:>7} {:>10} {:>10} {:>8} {:>9.2} {:>9.2} {:>9.2} {:>11}",
                s.name,
                s.workers,
                s.rows_in,
                s.rows_out,
                s.rejected,
                s.busy.as_secs_f64(),
                s.wait_input.as_secs_f64(),
                s.wait_output.as_secs_f64(),
                rate
            );
        }
        let wall = self.wall.as_secs_f64();
        let _ = write!(
            out,
            "total: {} rows in, {} out, {} rejected in {:.2} s ({:.0} rows/s)",
            self.rows_in,
            self.rows_out,
            self.rejected.len(),
            wall,
            if wall > 0.0 {
                self.rows_in as f64 / wall
            } else {
                0.0
            }
        );
        if let Some(bytes) = peak_memory_bytes() {
            let _ = write!(out, "; peak memory {}", human_bytes(bytes));
        }
        out
    }
}

/// The most memory this process has held so far (its peak resident set), where the system
/// reports it.
pub fn peak_memory_bytes() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given (zeroed, so every field is valid).
        let usage = unsafe {
            (libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) == 0)
                .then(|| usage.assume_init())
        }?;
        let maxrss = u64::try_from(usage.ru_maxrss).ok()?;
        // Linux counts it in KiB, macOS in bytes.
        Some(if cfg!(target_os = "macos") {
            maxrss
        } else {
            maxrss * 1024
        })
    }
    #[cfg(not(unix))]
    None
}

/// `bytes` in MiB or GiB, as the stage table prints memory.
pub fn human_bytes(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    match bytes as f64 / MIB {
        m if m < 1024.0 => format!("{m:.0} MiB"),
        m => format!("{:.2} GiB", m / 1024.0),
    }
}
