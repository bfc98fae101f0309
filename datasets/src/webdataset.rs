//! WebDataset tar shards: members `<key>.jpg|jpeg|png` with an optional `<key>.cls` holding the
//! integer label. One `.tar` file or a folder of them. The shards are indexed once (member
//! offsets) and then read by seeking, so they are never held in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ldae_pipeline::{Error, Rejection, Result};

use crate::folder::IMAGE_EXTENSIONS;
use crate::indexed::{Payload, RawRow, RowReader};

struct Sample {
    shard: usize,
    key: String,
    image: Option<(u64, u64)>,
    cls: Option<(u64, u64)>,
}

/// Reads samples out of WebDataset tar shards.
pub struct WebDatasetReader {
    shards: Vec<(PathBuf, String)>,
    samples: Vec<Sample>,
    open: Option<(usize, File)>,
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
            return Err(Error::msg(format!("{}: no .tar shards", path.display())));
        }
        let mut shards = Vec::new();
        let mut samples = Vec::new();
        for (si, p) in paths.iter().enumerate() {
            let file = File::open(p).map_err(|e| Error::io(p, e))?;
            let mut archive = tar::Archive::new(file);
            // Keys in member order; BTreeMap only to find a key's sample quickly.
            let mut by_key: BTreeMap<String, usize> = BTreeMap::new();
            let first = samples.len();
            let entries = archive
                .entries()
                .map_err(|e| Error::external(format!("{}: not a tar file", p.display()), e))?;
            for entry in entries {
                let entry = entry
                    .map_err(|e| Error::external(format!("{}: corrupt tar", p.display()), e))?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = entry
                    .path()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                // WebDataset: the key is the path up to the first dot of the file name.
                let (dir, file) = name.rsplit_once('/').unwrap_or(("", name.as_str()));
                let Some((stem, ext)) = file.split_once('.') else {
                    continue;
                };
                let key = if dir.is_empty() {
                    stem.to_string()
                } else {
                    format!("{dir}/{stem}")
                };
                let ext = ext.to_ascii_lowercase();
                let span = (entry.raw_file_position(), entry.size());
                let slot = *by_key.entry(key.clone()).or_insert_with(|| {
                    samples.push(Sample {
                        shard: si,
                        key,
                        image: None,
                        cls: None,
                    });
                    samples.len() - 1
                });
                if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
                    samples[slot].image = Some(span);
                } else if ext == "cls" {
                    samples[slot].cls = Some(span);
                }
            }
            // Keys without an image are not samples of an image dataset.
            let mut kept: Vec<Sample> = samples
                .drain(first..)
                .filter(|s| s.image.is_some())
                .collect();
            samples.append(&mut kept);
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            shards.push((p.clone(), name));
        }
        Ok(WebDatasetReader {
            shards,
            samples,
            open: None,
        })
    }

    fn read_span(&mut self, shard: usize, (offset, size): (u64, u64)) -> std::io::Result<Vec<u8>> {
        if self.open.as_ref().map(|(i, _)| *i) != Some(shard) {
            self.open = Some((shard, File::open(&self.shards[shard].0)?));
        }
        let mut buf = vec![0u8; size as usize];
        if let Some((_, f)) = self.open.as_mut() {
            f.seek(SeekFrom::Start(offset))?;
            f.read_exact(&mut buf)?;
        }
        Ok(buf)
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
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        let (shard, image, cls) = {
            let s = &self.samples[index];
            (s.shard, s.image, s.cls)
        };
        let id = format!("{}:{}", self.shards[shard].1, self.samples[index].key);
        let reject = |message: String| Rejection {
            id: id.clone(),
            message,
        };
        let image = image.ok_or_else(|| reject("read: sample has no image".into()))?;
        let bytes = self
            .read_span(shard, image)
            .map_err(|e| reject(format!("read: {e}")))?;
        let label = match cls {
            Some(span) => {
                let text = self
                    .read_span(shard, span)
                    .map_err(|e| reject(format!("read .cls: {e}")))?;
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
