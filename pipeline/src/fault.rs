//! Fault injection for the kill-safety tests: with `LDAE_FAULT_KILL_AT=NAME` (or `NAME:N`) in
//! the environment, the process kills itself with SIGKILL the first (or N-th) time it reaches
//! the point `NAME`, exactly as a preempted or OOM-killed task dies: no destructor, no flush.
//! Unset (always, outside tests), a point costs one cached environment lookup.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The points a writer passes, in order, while it commits its output.
pub mod points {
    /// A part file has been moved into the staged parts; its commit record is not written.
    pub const PART_MOVED: &str = "part-moved";
    /// A part file and its commit record are both in place.
    pub const PART_COMMITTED: &str = "part-committed";
    /// The staged parts were renamed into `data/`; the manifest and `_SUCCESS` are not written.
    pub const PUBLISH_RENAMED: &str = "publish-renamed";
}

fn target() -> &'static Option<(String, usize)> {
    static TARGET: OnceLock<Option<(String, usize)>> = OnceLock::new();
    TARGET.get_or_init(|| {
        let spec = std::env::var("LDAE_FAULT_KILL_AT").ok()?;
        Some(match spec.split_once(':') {
            Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1).max(1)),
            None => (spec, 1),
        })
    })
}

/// Reached the point `name`: die here if the environment asks for it.
pub fn point(name: &str) {
    static HITS: AtomicUsize = AtomicUsize::new(0);
    let Some((wanted, nth)) = target() else {
        return;
    };
    if wanted == name && HITS.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
        #[cfg(unix)]
        // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        std::process::abort();
    }
}
