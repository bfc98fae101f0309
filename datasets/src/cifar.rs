//! CIFAR-10 binary batches (`data_batch_N.bin`, `test_batch.bin`): records of one label byte and
//! 3072 pixel bytes (R, G and B planes of 32 x 32), read by seeking, never all in memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use arrow::buffer::Buffer;
use ldae_pipeline::{Error, Rejection, Result};

use crate::format::{FormatConfig, Probe};
use crate::indexed::{Payload, RawRow, RowReader};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const RECORD: usize = 1 + 3 * PLANE;

/// CIFAR-10's class names, in label order.
pub const CIFAR10_CLASSES: [&str; 10] = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
];

/// One batch file: its path, its name in ids, its records (a trailing partial one included)
/// and its size.
struct CifarFile {
    path: PathBuf,
    name: String,
    records: usize,
    bytes: usize,
}

/// Reads one or more CIFAR-10 binary batch files.
pub struct CifarReader {
    files: Vec<CifarFile>,
    open: Option<(usize, File)>,
    classes: Vec<String>,
}

impl CifarReader {
    /// A `.bin` file, or a folder whose `data_batch_*.bin` files (the training split) are read
    /// in name order. Class names come from `batches.meta.txt` beside them when present.
    pub fn open(path: &Path) -> Result<Self> {
        let paths: Vec<PathBuf> = if path.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .map(|n| n.starts_with("data_batch_") && n.ends_with(".bin"))
                        .unwrap_or(false)
                })
                .collect();
            v.sort();
            v
        } else {
            vec![path.to_path_buf()]
        };
        if paths.is_empty() {
            return Err(Error::corrupt(path, "no data_batch_*.bin files"));
        }
        let mut files = Vec::new();
        for p in &paths {
            let len = std::fs::metadata(p).map_err(|e| Error::io(p, e))?.len() as usize;
            // A trailing partial record (a truncated file) is a row of its own, rejected when
            // read, so the whole records before it are kept and the loss is on record.
            let records = len.div_ceil(RECORD);
            let name = p
                .file_name()
                .map(|n| crate::file_access::path_id(std::path::Path::new(n)))
                .unwrap_or_default();
            files.push(CifarFile {
                path: p.clone(),
                name,
                records,
                bytes: len,
            });
        }
        let meta = paths[0].with_file_name("batches.meta.txt");
        let classes = std::fs::read_to_string(meta)
            .ok()
            .map(|t| {
                t.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect::<Vec<_>>()
            })
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| CIFAR10_CLASSES.iter().map(|s| s.to_string()).collect());
        Ok(CifarReader {
            files,
            open: None,
            classes,
        })
    }

    fn read_record(&mut self, file: usize, record: usize) -> std::io::Result<[u8; RECORD]> {
        if self.open.as_ref().map(|(i, _)| *i) != Some(file) {
            self.open = Some((file, File::open(&self.files[file].path)?));
        }
        let mut buf = [0u8; RECORD];
        if let Some((_, f)) = self.open.as_mut() {
            f.seek(SeekFrom::Start((record * RECORD) as u64))?;
            f.read_exact(&mut buf)?;
        }
        Ok(buf)
    }
}

impl RowReader for CifarReader {
    fn kind(&self) -> &'static str {
        "cifar"
    }
    fn len(&self) -> usize {
        self.files.iter().map(|f| f.records).sum()
    }
    fn pixel_shape(&self) -> Option<[usize; 3]> {
        Some([SIDE, SIDE, 3])
    }
    fn class_names(&self) -> Option<Vec<String>> {
        Some(self.classes.clone())
    }
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        let mut file = 0;
        let mut record = index;
        while record >= self.files[file].records {
            record -= self.files[file].records;
            file += 1;
        }
        let id = format!("{}:{record}", self.files[file].name);
        let present = self.files[file].bytes - record * RECORD;
        if present < RECORD {
            return Err(Rejection {
                id,
                message: format!(
                    "read {}: partial record, {present} of {RECORD} bytes (the file is truncated)",
                    self.files[file].path.display()
                ),
            });
        }
        let buf = self.read_record(file, record).map_err(|e| Rejection {
            id: id.clone(),
            message: format!("read {}: {e}", self.files[file].path.display()),
        })?;
        // Planar CHW on disk; the pipeline's convention is interleaved HWC.
        let mut pixels = vec![0u8; 3 * PLANE];
        for c in 0..3 {
            for i in 0..PLANE {
                pixels[i * 3 + c] = buf[1 + c * PLANE + i];
            }
        }
        Ok(RawRow {
            id,
            label: Some(buf[0] as i64),
            payload: Payload::Pixels(Buffer::from_vec(pixels)),
        })
    }
}

/// `cifar`: CIFAR-10 binary batches, one `.bin` file or the folder of `data_batch_N.bin`.
/// Detected from a `.bin` name or a folder holding `data_batch_*.bin`.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct CifarFormat {}

impl FormatConfig for CifarFormat {
    const NAME: &'static str = "cifar";
    fn sniff(input: &Probe<'_>) -> Result<Option<u8>> {
        if input.is_file() {
            return Ok(input.file_name().ends_with(".bin").then_some(30));
        }
        let batches = input.has_entry(|n| n.starts_with("data_batch_") && n.ends_with(".bin"))?;
        Ok(batches.then_some(10))
    }
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>> {
        Ok(Box::new(CifarReader::open(Path::new(input))?))
    }
}

crate::register_format!(CifarFormat);
