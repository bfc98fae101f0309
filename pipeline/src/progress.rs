//! Progress reporting: a bar with rows/s and ETA on a terminal, plain log lines otherwise.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How a run shows its progress (`--progress auto|log|off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProgressMode {
    /// A bar on a terminal, periodic log lines when stderr is not a terminal.
    #[default]
    Auto,
    /// Periodic log lines (every `interval`).
    Log,
    /// Nothing.
    Off,
}

/// A caller-supplied line appended to the progress display (e.g. the training loss). It is
/// called from the reporter thread about ten times a second, so it must not block for long.
#[derive(Clone)]
pub struct Status(pub Arc<dyn Fn() -> String + Send + Sync>);

impl std::fmt::Debug for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Status(..)")
    }
}

/// A running progress reporter fed by a shared row counter.
pub(crate) struct Progress {
    done: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Progress {
    /// Start reporting `counter` (rows finished) against `total` under `label`.
    pub(crate) fn start(
        mode: ProgressMode,
        label: String,
        total: Option<u64>,
        counter: Arc<AtomicU64>,
        status: Option<Status>,
    ) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let mode = match mode {
            ProgressMode::Auto if std::io::stderr().is_terminal() => ProgressMode::Auto,
            ProgressMode::Auto => ProgressMode::Log,
            m => m,
        };
        let handle = match mode {
            ProgressMode::Off => None,
            ProgressMode::Auto => {
                let done = done.clone();
                Some(std::thread::spawn(move || {
                    bar(label, total, counter, done, status)
                }))
            }
            ProgressMode::Log => {
                let done = done.clone();
                Some(std::thread::spawn(move || {
                    log(label, total, counter, done, status)
                }))
            }
        };
        Progress { done, handle }
    }

    /// Stop reporting and wait for the reporter thread.
    pub(crate) fn stop(mut self) {
        self.done.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn status_text(status: &Option<Status>) -> String {
    status
        .as_ref()
        .map(|s| (s.0)())
        .filter(|s| !s.is_empty())
        .map(|s| format!(" {s}"))
        .unwrap_or_default()
}

fn bar(
    label: String,
    total: Option<u64>,
    counter: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    status: Option<Status>,
) {
    let pb = match total {
        Some(n) => indicatif::ProgressBar::new(n).with_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} rows {per_sec} ETA {eta}{msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        ),
        None => indicatif::ProgressBar::new_spinner(),
    };
    pb.set_prefix(label);
    while !done.load(Ordering::SeqCst) {
        pb.set_position(counter.load(Ordering::Relaxed));
        pb.set_message(status_text(&status));
        std::thread::sleep(Duration::from_millis(100));
    }
    pb.set_position(counter.load(Ordering::Relaxed));
    pb.finish_and_clear();
}

fn log(
    label: String,
    total: Option<u64>,
    counter: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    status: Option<Status>,
) {
    let start = Instant::now();
    let interval = Duration::from_secs(10);
    let mut next = start + interval;
    while !done.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
        if Instant::now() < next {
            continue;
        }
        next += interval;
        let rows = counter.load(Ordering::Relaxed);
        let secs = start.elapsed().as_secs_f64();
        let rate = rows as f64 / secs.max(1e-9);
        let extra = status_text(&status);
        match total {
            Some(n) if rate > 0.0 => tracing::info!(
                "{label}: {rows}/{n} rows, {rate:.0} rows/s, ETA {:.0} s{extra}",
                n.saturating_sub(rows) as f64 / rate
            ),
            _ => tracing::info!("{label}: {rows} rows, {rate:.0} rows/s{extra}"),
        }
    }
}
