//! WebDataset tar shards: members `<key>.jpg|jpeg|png` with an optional `<key>.cls` holding the
//! integer label. One `.tar` file or a folder of them. The shards are indexed once (member
//! offsets, from the headers alone: the index seeks over the members' data) and then read by
//! seeking, so they are never held in memory.
//!
//! Broken shards cost rows, never silently: a member cut off by the end of the file, a
//! duplicate member, a sample without its label (when others have one) or with a label but no
//! image is a rejected row; a corrupt header, or data after the end-of-archive marker (what a
//! member whose size field lies leaves behind), is one error naming the shard and the byte.
//! Keys are the members' raw name bytes, escaped losslessly ([`crate::file_access::escape_bytes`]).

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ldae_pipeline::{Error, Rejection, Result};

use crate::file_access::{escape_bytes, ReadAhead, MAX_ENCODED_BYTES};
use crate::folder::IMAGE_EXTENSIONS;
use crate::format::{FormatConfig, Probe};
use crate::indexed::{Payload, RawRow, RowReader};

/// A member's data: byte offset in the shard and size.
type Span = (u64, u64);

struct Sample {
    shard: usize,
    key: String,
    image: Option<Span>,
    cls: Option<Span>,
    /// Why this sample cannot be read, found while indexing.
    problem: Option<String>,
}

/// Reads samples out of WebDataset tar shards.
pub struct WebDatasetReader {
    shards: Vec<(PathBuf, String)>,
    samples: Vec<Sample>,
    /// Open shards, by index (the ones read last).
    open: HashMap<usize, File>,
    /// Samples read ahead by `prefetch`, until `read` takes them.
    ready: ReadAhead<Fetched>,
}

/// A sample's member bytes: the image and, when it has one, the `.cls` label.
struct Fetched {
    image: std::io::Result<Vec<u8>>,
    cls: Option<std::io::Result<Vec<u8>>>,
}

/// Most shards kept open at once.
const MAX_OPEN_SHARDS: usize = 64;

/// The bytes of one member of an open shard.
fn read_at(file: &File, (offset, size): Span) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    if size > MAX_ENCODED_BYTES {
        return Err(std::io::Error::other(format!(
            "{size} bytes, more than the {} MiB read for one member",
            MAX_ENCODED_BYTES >> 20
        )));
    }
    let mut buf = vec![0u8; size as usize];
    file.read_exact_at(&mut buf, offset)?;
    Ok(buf)
}

/// The key and lower-cased extension of a member name: the key is the path up to the first
/// dot of the file name (WebDataset's convention). `None` for names without an extension.
fn split_member(name: &[u8]) -> Option<(String, String)> {
    let slash = name.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
    let dot = slash + name[slash..].iter().position(|&b| b == b'.')?;
    let key = escape_bytes(&name[..dot]);
    let ext = escape_bytes(&name[dot + 1..]).to_ascii_lowercase();
    Some((key, ext))
}

/// Index the members of one shard into `samples`.
fn index_shard(path: &Path, shard: usize, samples: &mut Vec<Sample>) -> Result<()> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
    // Seek over the members' data: the index reads only the headers (one 512-byte block per
    // member), where reading through read the whole shard, images and all.
    let mut archive = tar::Archive::new(std::io::BufReader::with_capacity(512, file));
    let mut by_key: HashMap<String, usize> = HashMap::new();
    let first = samples.len();
    // End of the last member's data (padded to 512 bytes): where the end-of-archive marker is.
    let mut end = 0u64;
    let mut last_member = String::from("the start");
    let entries = archive
        .entries_with_seek()
        .map_err(|e| Error::external(format!("{}: not a tar file", path.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            Error::external(
                format!(
                    "{}: corrupt tar header after {last_member} (byte {end})",
                    path.display()
                ),
                e,
            )
        })?;
        let (offset, size) = (entry.raw_file_position(), entry.size());
        let raw_name = entry.path_bytes().into_owned();
        let name = escape_bytes(&raw_name);
        end = offset.saturating_add(size.div_ceil(512).saturating_mul(512));
        last_member = format!("member '{name}'");
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let Some((key, ext)) = split_member(&raw_name) else {
            continue;
        };
        let is_image = IMAGE_EXTENSIONS.contains(&ext.as_str());
        if !is_image && ext != "cls" {
            continue;
        }
        let slot = *by_key.entry(key.clone()).or_insert_with(|| {
            samples.push(Sample {
                shard,
                key: key.clone(),
                image: None,
                cls: None,
                problem: None,
            });
            samples.len() - 1
        });
        let truncated = offset.saturating_add(size) > file_len;
        let sample = &mut samples[slot];
        let span = if is_image {
            &mut sample.image
        } else {
            &mut sample.cls
        };
        if span.is_some() {
            // A second member for the same key and extension: its own rejected row, so the
            // count of samples in the shard stays what its members say.
            samples.push(Sample {
                shard,
                key: format!("{key} (duplicate)"),
                image: None,
                cls: None,
                problem: Some(format!(
                    "member '{name}' at byte {offset} repeats key '{key}' with the same extension"
                )),
            });
        } else {
            *span = Some((offset, size));
        }
        if truncated {
            let sample = &mut samples[slot];
            sample.problem.get_or_insert(format!(
                "member '{name}' is cut off: its header says {size} bytes from byte {offset}, the file ends at byte {file_len}"
            ));
            // Nothing can follow a member that runs past the end of the file.
            end = file_len;
            break;
        }
    }
    check_tail(path, end, file_len, &last_member)?;
    // Keys without an image and without a label are other kinds of members (.json, .txt).
    for sample in &mut samples[first..] {
        if sample.problem.is_none() && sample.image.is_none() {
            sample.problem = Some("sample has a .cls label but no .jpg/.jpeg/.png image".into());
        }
    }
    Ok(())
}

/// After the end-of-archive marker a tar file holds only zeros. Anything else means a member's
/// size field was wrong and the reader skipped real members: an error, not a silent loss.
fn check_tail(path: &Path, end: u64, file_len: u64, last_member: &str) -> Result<()> {
    if end >= file_len {
        return Ok(());
    }
    let mut file = File::open(path).map_err(|e| Error::io(path, e))?;
    file.seek(SeekFrom::Start(end))
        .map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut at = end;
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        if let Some(i) = buf[..n].iter().position(|&b| b != 0) {
            return Err(Error::corrupt(path, format!("corrupt tar: data at byte {} after the end-of-archive marker that follows {last_member} (a member's size field is probably wrong)", at + i as u64)));
        }
        at += n as u64;
    }
}

impl WebDatasetReader {
    /// Index a `.tar` file or every `.tar` in a folder (name order).
    pub fn open(path: &Path) -> Result<Self> {
        let paths: Vec<PathBuf> = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("tar"))
                .collect();
            v.sort();
            v
        } else {
            vec![path.to_path_buf()]
        };
        if paths.is_empty() {
            return Err(Error::corrupt(path, "no .tar shards"));
        }
        let mut shards = Vec::new();
        let mut samples = Vec::new();
        for (si, p) in paths.iter().enumerate() {
            index_shard(p, si, &mut samples)?;
            let name = p
                .file_name()
                .map(|n| crate::file_access::path_id(Path::new(n)))
                .unwrap_or_default();
            shards.push((p.clone(), name));
        }
        // A dataset with labels labels every sample: one without its .cls is rejected, not
        // passed on unlabeled.
        if samples.iter().any(|s| s.cls.is_some()) {
            for s in samples
                .iter_mut()
                .filter(|s| s.problem.is_none() && s.cls.is_none())
            {
                s.problem = Some("sample has no .cls label (other samples have one)".into());
            }
        }
        Ok(WebDatasetReader {
            shards,
            samples,
            open: HashMap::new(),
            ready: ReadAhead::default(),
        })
    }

    /// Shard `shard`, opened (kept open for the next reads).
    fn shard_file(&mut self, shard: usize) -> std::io::Result<&File> {
        if !self.open.contains_key(&shard) {
            if self.open.len() >= MAX_OPEN_SHARDS {
                self.open.clear();
            }
            self.open.insert(shard, File::open(&self.shards[shard].0)?);
        }
        Ok(&self.open[&shard])
    }

    /// Read sample `index`'s members (its image span is `image`).
    fn fetch(&mut self, index: usize, image: Span) -> Fetched {
        let (shard, cls) = (self.samples[index].shard, self.samples[index].cls);
        match self.shard_file(shard) {
            Ok(file) => Fetched {
                image: read_at(file, image),
                cls: cls.map(|span| read_at(file, span)),
            },
            Err(e) => Fetched {
                image: Err(e),
                cls: None,
            },
        }
    }
}

impl RowReader for WebDatasetReader {
    fn kind(&self) -> &'static str {
        "webdataset"
    }
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn pixel_shape(&self) -> Option<[usize; 3]> {
        None
    }
    fn class_names(&self) -> Option<Vec<String>> {
        None
    }
    /// Once a sample of the next batch is not read yet, reads its members with those of the
    /// next samples at once ([`ReadAhead`]), several threads each reading a run of them, when
    /// members are slow to read (a shuffled read seeks for every sample; a network file system
    /// answers each read in about a millisecond).
    fn prefetch(&mut self, upcoming: &[usize], next: usize) {
        let samples = &self.samples;
        let readable = |i: usize| samples[i].problem.is_none() && samples[i].image.is_some();
        let candidates = self.ready.wanted(upcoming, next, readable);
        if candidates.is_empty() {
            return;
        }
        // Room for this read-ahead's shards (those of the last one are closed).
        if self.open.len() >= MAX_OPEN_SHARDS / 2 {
            self.open.clear();
        }
        // The samples of as many shards as may be open at once (the rest are read later).
        let mut wanted = Vec::new();
        for index in candidates {
            let shard = self.samples[index].shard;
            if !self.open.contains_key(&shard) {
                if self.open.len() >= MAX_OPEN_SHARDS {
                    break;
                }
                // A shard that does not open is reported by `read`, row by row.
                match File::open(&self.shards[shard].0) {
                    Ok(file) => self.open.insert(shard, file),
                    Err(_) => continue,
                };
            }
            wanted.push((index, index));
        }
        let (samples, open) = (&self.samples, &self.open);
        let read = |index: usize| {
            let sample = &samples[index];
            let file = &open[&sample.shard];
            Fetched {
                image: read_at(file, sample.image.unwrap_or_default()),
                cls: sample.cls.map(|span| read_at(file, span)),
            }
        };
        self.ready.read(wanted, read);
    }
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        let (shard, image) = {
            let s = &self.samples[index];
            (s.shard, s.image)
        };
        let id = format!("{}:{}", self.shards[shard].1, self.samples[index].key);
        let reject = |message: String| Rejection {
            id: id.clone(),
            message,
        };
        if let Some(problem) = &self.samples[index].problem {
            return Err(reject(format!("read {}: {problem}", self.shards[shard].1)));
        }
        let image = image.ok_or_else(|| reject("read: sample has no image".into()))?;
        let fetched = match self.ready.take(index) {
            Some(fetched) => fetched,
            None => self.fetch(index, image),
        };
        let bytes = fetched.image.map_err(|e| reject(format!("read: {e}")))?;
        let label = match fetched.cls {
            Some(text) => {
                let text = text.map_err(|e| reject(format!("read .cls: {e}")))?;
                let text = String::from_utf8_lossy(&text);
                Some(text.trim().parse::<i64>().map_err(|_| {
                    reject(format!(
                        "read .cls: '{}' is not an integer label",
                        text.trim()
                    ))
                })?)
            }
            None => None,
        };
        Ok(RawRow {
            id,
            label,
            payload: Payload::Encoded(bytes),
        })
    }
}

/// `webdataset` (or `wds`): WebDataset `.tar` shards, one file or a folder of them: members
/// `<key>.jpg|jpeg|png` with an optional `<key>.cls` label. Detected from a `.tar` name or a
/// folder holding `.tar` files.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct WebDatasetFormat {}

impl FormatConfig for WebDatasetFormat {
    const NAME: &'static str = "webdataset";
    const ALIASES: &'static [&'static str] = &["wds"];
    fn sniff(input: &Probe<'_>) -> Result<Option<u8>> {
        if input.is_file() {
            return Ok(input.file_name().ends_with(".tar").then_some(30));
        }
        Ok(input.has_entry(|n| n.ends_with(".tar"))?.then_some(20))
    }
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>> {
        Ok(Box::new(WebDatasetReader::open(Path::new(input))?))
    }
}

crate::register_format!(WebDatasetFormat);
