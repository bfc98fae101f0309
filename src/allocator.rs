//! The allocator of the programs that run models (the `ldae` binary and the benches), included
//! by each of them with `#[path]`. It is not part of the library on purpose: the Python
//! extension links the library, and mimalloc's C code uses initial-exec thread-local storage,
//! which makes a shared object that cannot be loaded into a process whose static TLS other
//! libraries (torch) already took ("cannot allocate memory in static TLS block").
//!
//! mimalloc is the global allocator: candle allocates a buffer per tensor operation, and the
//! system allocator returned those to the kernel and faulted them in again, with TLB flushes.

/// The allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (the same number in its v2 and v3 `mimalloc.h`).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's `mi_option_allow_thp` (v3 `mimalloc.h`).
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;

/// Keep freed memory in the process (for programs whose global allocator is mimalloc: the CLI,
/// the benches), unless `MIMALLOC_PURGE_DELAY` is set. Freed memory otherwise goes back to the
/// kernel after mimalloc's purge delay, and the next tensor of the same size faults in fresh
/// pages the kernel must zero. Measured on the 2-core AMD EPYC (Zen 4) VM: `ldae train` tiny
/// at batch 128 ran 217-226 images/s against 146-168, ViT-S/16 features of 500 photos took
/// 28.6-29.5 s against 30.5-34.0; peak memory rose 9-17% (the process keeps what it freed).
/// Results are the same either way. Call it before the command starts other threads.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one documented option; called before any other thread starts.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// Give freed memory back to the kernel 10 ms after it is freed (mimalloc v2's default; the
/// bundled v3 waits a second), unless `MIMALLOC_PURGE_DELAY` is set: for commands that build
/// their large buffers once (the probe), where what matters is the peak. The memory feature
/// tables are loaded through is freed on DataFusion's threads, whose free pages no other
/// thread reuses. Measured on the 2-core Intel Xeon VM, `ldae probe --knn` of 100k x 384
/// features: peak 774-778 MB kept, 630 with this, in the same time (linear 18-20 s either way).
pub fn return_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one documented option; called before any other thread starts.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 10) };
    }
}

/// No transparent huge pages for this process from here on, unless `MIMALLOC_ALLOW_THP` is
/// set: for the commands that stream images through the pipeline without a network (`pca`).
/// A huge page is 2 MiB that the kernel zeroes (and, in a VM, the host may have to back) at
/// the first touch of any byte in it, and each of mimalloc's partly used 4 MiB pages then
/// costs whole huge pages. Measured on the 2-core Intel Xeon VM, alternated with Pillow: the
/// pinned 224 px `pca encode` of 500 photos ran at 408-590 images/s with them (two modes,
/// depending on what the kernel had at hand) and 551-589 without. Training keeps them: its
/// working set is steady, and tiny training at AVX2 ran 5% slower without (231-241 against
/// 248-255 images/s). Call it before the pipeline starts its threads.
pub fn without_huge_pages() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: sets one documented option, and a prctl that only sets this process's THP
        // flag (mimalloc's own option acts at its start-up, before main, so it cannot do this
        // from here).
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
            libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
        }
    }
}
