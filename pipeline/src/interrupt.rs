//! A process-wide request to stop the running job (Ctrl-C in a Python session).
//!
//! The executor checks it before reading each source batch; a requested stop fails the run
//! with [`Error::Interrupted`](crate::Error::Interrupted), so sinks abort (no output looks
//! complete) and a training run keeps its last checkpoint, as for any other error.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Ask every running pipeline of this process to stop at its next batch.
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Withdraw the request (before starting the next job).
pub fn clear() {
    REQUESTED.store(false, Ordering::SeqCst);
}

/// Whether a stop has been requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
