//! Splitting a kernel's work over candle's CPU worker pool (the threads its own elementwise
//! operations use), so the fused kernels and the optimizer use every core without a second
//! pool competing.
//!
//! Every split is by whole items (rows, columns, batch entries) and each item is computed by
//! one thread in a fixed order, so results do not depend on the thread count.

use std::ops::Range;

/// Below this many elements a kernel runs on the calling thread: waking the pool costs more.
const PARALLEL_MIN: usize = 1 << 14;

/// A pointer handed to the workers; each writes a disjoint part of what it points to.
pub struct Shared<T>(*mut T);

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<T> {}

// SAFETY: the users below give every worker a disjoint range of the buffer.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Share `data` with the workers.
    pub fn new(data: &mut [T]) -> Self {
        Shared(data.as_mut_ptr())
    }

    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    pub fn get(self) -> *mut T {
        self.0
    }
}

/// Threads that share a parallel kernel: candle's workers and the calling thread.
pub fn pool_threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Run `f` over `0..items` split into ranges, in parallel when `work` (elements touched) is
/// large enough.
pub fn for_ranges(items: usize, work: usize, f: impl Fn(Range<usize>) + Sync) {
    if items == 0 {
        return;
    }
    if work < PARALLEL_MIN {
        f(0..items);
    } else {
        candle_core::utils::barrier_pool().execute_chunked(items, f);
    }
}

/// Fill `out`, rows of `width`, by `f(first_row, rows)` on disjoint row ranges.
pub fn for_rows<T: Send>(out: &mut [T], width: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    let rows = out.len() / width.max(1);
    let len = out.len();
    let ptr = Shared::new(out);
    for_ranges(rows, len, |range| {
        // SAFETY: the ranges are disjoint and inside `out`, which outlives the call.
        let part = unsafe {
            std::slice::from_raw_parts_mut(ptr.get().add(range.start * width), range.len() * width)
        };
        f(range.start, part);
    });
}
