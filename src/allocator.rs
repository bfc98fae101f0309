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

/// Keep freed memory in the process (for programs whose global allocator is mimalloc: the CLI,
/// the benches), unless `MIMALLOC_PURGE_DELAY` is set. Freed memory otherwise goes back to the
/// kernel after mimalloc's purge delay, and the next tensor of the same size faults in fresh
/// pages the kernel must zero. Measured on the 2-core AMD EPYC (Zen 4) VM: `ldae train` tiny
/// at batch 128 ran 217-226 images/s against 146-168, ViT-S/16 features of 500 photos took
/// 28.6-29.5 s against 30.5-34.0; peak memory rose 9-17% (the process keeps what it freed).
/// Results are the same either way. Call it first thing in `main`.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one documented option; called before any other thread starts.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}
