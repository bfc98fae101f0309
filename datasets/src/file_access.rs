//! Reading one file of a dataset safely, and naming it losslessly.
//!
//! A dataset folder may hold anything: FIFOs (opening one for reading blocks until a writer
//! comes), sockets, devices, names that are not UTF-8, files of many gigabytes. Rows are read
//! only from regular files of bounded size, and ids are built from the name's raw bytes so two
//! files never share an id.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// The largest encoded image (or other member) read into memory for one row. Photos are a few
/// MB; a multi-gigabyte "image" is a mistake that would otherwise exhaust memory.
pub const MAX_ENCODED_BYTES: u64 = 256 << 20;

/// `bytes` as text, losslessly: valid UTF-8 is kept, except `%`, which becomes `%25`; every
/// byte that is not valid UTF-8 becomes `%XX`. Two different byte strings never give the same
/// text.
///
/// ```
/// use ldae_datasets::file_access::escape_bytes;
/// assert_eq!(escape_bytes(b"cat/1.jpg"), "cat/1.jpg");
/// assert_eq!(escape_bytes(b"a\xff.jpg"), "a%FF.jpg");
/// assert_eq!(escape_bytes(b"a%FF.jpg"), "a%25FF.jpg");
/// ```
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '%' {
                out.push_str("%25");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A path relative to a dataset root as an id: its components' raw bytes escaped by
/// [`escape_bytes`], joined by `/`.
pub fn path_id(relative: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    relative
        .components()
        .map(|c| escape_bytes(c.as_os_str().as_bytes()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Why a dataset file was not read, in words for the errors table.
fn not_regular(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else if kind.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

/// The bytes of the regular file `path` (a link to one is followed), at most `limit` of them,
/// read into `buffer` (cleared first; its capacity is reused, so a reader that recycles its
/// buffers does not allocate one per file). FIFOs, sockets and devices are refused without
/// being opened for reading, so a FIFO named `x.jpg` cannot block the run.
pub fn read_regular_file(path: &Path, limit: u64, mut buffer: Vec<u8>) -> Result<Vec<u8>, String> {
    buffer.clear();
    use std::os::unix::fs::OpenOptionsExt;
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!(
            "{} (only regular files are read)",
            not_regular(&meta.file_type())
        ));
    }
    // O_NONBLOCK as well: were the file swapped for a FIFO after the check, opening it must
    // still not wait for a writer. It changes nothing for a regular file.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| e.to_string())?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err(format!(
            "{} (only regular files are read)",
            not_regular(&meta.file_type())
        ));
    }
    if meta.len() > limit {
        return Err(format!(
            "{} bytes, more than the {} MiB read for one image",
            meta.len(),
            limit >> 20
        ));
    }
    let mut bytes = buffer;
    bytes.reserve(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "more than the {} MiB read for one image (the file grew while read)",
            limit >> 20
        ));
    }
    Ok(bytes)
}

/// Most reads at once by [`FileReads`]: reading is bound by the storage's latency (a
/// network file system's round trips, a cold disk), not by cores, so it gets more threads
/// than a small machine has cores.
const MAX_READ_THREADS: usize = 16;

/// Reads each thread gets at least: fewer are done on one thread, where a thread would cost
/// more than it saves.
const FILES_PER_READ_THREAD: usize = 8;

/// Reads taking this long or longer (one after the other) are waiting on the storage (a
/// network file system, a cold disk): then several run at once. Below it (the page cache's
/// few microseconds) they are bound by the CPU, and threads would only take cores from the
/// pipeline.
const SLOW_READ: Duration = Duration::from_micros(25);

/// Reads files (or parts of them) several at once while the storage is slow to answer, and
/// one after the other while it is fast, judging by the time the reads of the last call took.
#[derive(Debug)]
pub struct FileReads {
    /// Whether the next call reads on several threads.
    parallel: bool,
}

impl Default for FileReads {
    /// The first call reads in parallel: a new job's files are usually not cached.
    fn default() -> Self {
        FileReads { parallel: true }
    }
}

impl FileReads {
    /// `read` each of `items` (one file or span each); results in the order given.
    pub fn run<T: Send, R: Send>(&mut self, items: Vec<T>, read: impl Fn(T) -> R + Sync) -> Vec<R> {
        let count = items.len().max(1) as u32;
        let threads = match self.parallel {
            true => items.len().div_ceil(FILES_PER_READ_THREAD),
            false => 1,
        }
        .clamp(1, MAX_READ_THREADS);
        let timed = |item| {
            let started = Instant::now();
            let result = read(item);
            (result, started.elapsed())
        };
        let done = map_on_threads(items, threads, &timed);
        let mean = done.iter().map(|r| r.1).sum::<Duration>() / count;
        self.parallel = if threads == 1 {
            mean >= SLOW_READ
        } else {
            // More threads than cores stretch each read by the wait for a core: reads bound
            // by the CPU take about `threads / cores` times as long as alone, so they count
            // as that much shorter. Back to one thread only well below the threshold, so a
            // storage near it does not flip the mode every call.
            let cores = ldae_pipeline::cores();
            let alone = mean * cores.min(threads) as u32 / threads as u32;
            alone >= SLOW_READ / 4
        };
        tracing::debug!(
            "read {count} on {threads} thread(s), {mean:?} each; next: parallel {}",
            self.parallel
        );
        done.into_iter().map(|(result, _)| result).collect()
    }
}

/// Rows read at least at once by [`ReadAhead`], when batches are smaller (6 rows at 224 px by
/// default), so that enough reads are in flight together.
const READ_AHEAD_ROWS: usize = 64;

/// A reader's rows read ahead of the batches that need them ([`FileReads`]: several at once
/// while reads are slow), kept by row index until taken.
#[derive(Debug)]
pub struct ReadAhead<V> {
    ready: HashMap<usize, V>,
    reads: FileReads,
}

impl<V> Default for ReadAhead<V> {
    fn default() -> Self {
        ReadAhead {
            ready: HashMap::new(),
            reads: FileReads::default(),
        }
    }
}

impl<V: Send> ReadAhead<V> {
    /// The rows to read now: none while every `readable` row of the next batch
    /// (`upcoming[..next]`) is read; else the unread readable rows of the next batch and of
    /// those after it, [`READ_AHEAD_ROWS`] rows at least.
    pub fn wanted(
        &self,
        upcoming: &[usize],
        next: usize,
        readable: impl Fn(usize) -> bool,
    ) -> Vec<usize> {
        let waiting = |i: &usize| readable(*i) && !self.ready.contains_key(i);
        let next = next.min(upcoming.len());
        if !upcoming[..next].iter().any(waiting) {
            return Vec::new();
        }
        let ahead = &upcoming[..next.max(READ_AHEAD_ROWS).min(upcoming.len())];
        ahead.iter().copied().filter(waiting).collect()
    }

    /// Read `items` (a row index and what it is read from) with `read`, and keep them.
    pub fn read<T: Send>(&mut self, items: Vec<(usize, T)>, read: impl Fn(T) -> V + Sync) {
        let done = self.reads.run(items, |(index, item)| (index, read(item)));
        self.ready.extend(done);
    }

    /// Row `index`, if it was read ahead.
    pub fn take(&mut self, index: usize) -> Option<V> {
        self.ready.remove(&index)
    }

    /// Rows read ahead and not taken yet.
    pub fn len(&self) -> usize {
        self.ready.len()
    }

    /// Whether every row read ahead was taken.
    pub fn is_empty(&self) -> bool {
        self.ready.is_empty()
    }
}

/// `f` of each of `items` on up to `threads` threads, each taking a run of them; results in
/// the order given.
fn map_on_threads<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    f: &(impl Fn(T) -> R + Sync),
) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.into_iter().map(f).collect();
    }
    let per_thread = items.len().div_ceil(threads);
    let mut runs = Vec::with_capacity(threads);
    let mut items = items.into_iter();
    loop {
        let run: Vec<T> = items.by_ref().take(per_thread).collect();
        if run.is_empty() {
            break;
        }
        runs.push(run);
    }
    std::thread::scope(|scope| {
        let running: Vec<_> = runs
            .into_iter()
            .map(|run| scope.spawn(move || run.into_iter().map(f).collect::<Vec<R>>()))
            .collect();
        running
            .into_iter()
            .flat_map(|t| t.join().expect("reading files does not panic"))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_is_injective_on_tricky_names() {
        let names: [&[u8]; 6] = [
            b"a\xff",
            b"a\xfe",
            b"a%FF",
            b"a%25FF",
            b"a\xc3",
            b"a\xc3\xa9",
        ];
        let ids: std::collections::HashSet<String> =
            names.iter().map(|n| escape_bytes(n)).collect();
        assert_eq!(ids.len(), names.len());
        assert_eq!(escape_bytes(b"a\xc3\xa9"), "a\u{e9}");
    }
}
