//! IDX files (MNIST, Fashion-MNIST), gzipped or not: `N x H x W` or `N x H x W x C` unsigned
//! bytes, with labels from the sibling `...-labels-idx1-ubyte[.gz]` file when it exists.

use std::io::Read;
use std::path::{Path, PathBuf};

use arrow::buffer::Buffer;

use ldae_pipeline::{Error, Rejection, Result};

use crate::format::{FormatConfig, Probe};
use crate::indexed::{Payload, RawRow, RowReader};

/// Fashion-MNIST's class names, used when the path names Fashion-MNIST.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// An IDX image file held in memory (IDX files are small; gzip forbids random access anyway).
pub struct IdxReader {
    name: String,
    shape: [usize; 3],
    /// Every image's pixels; a row is a view of them.
    pixels: Buffer,
    labels: Option<Vec<u8>>,
    classes: Option<Vec<String>>,
}

/// An IDX file's reader: the file itself, or its gzip stream.
fn open_maybe_gz(path: &Path) -> Result<Box<dyn Read>> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut magic = [0u8; 2];
    let n = read_up_to(&mut file, &mut magic).map_err(|e| Error::io(path, e))?;
    let head = std::io::Cursor::new(magic[..n].to_vec());
    let stream = head.chain(file);
    Ok(if magic[..n] == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(stream))
    } else {
        Box::new(stream)
    })
}

/// Fill `buf` as far as the stream allows; the number of bytes read.
fn read_up_to(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Read an IDX file from `reader`: its dimensions and its data (exactly the bytes the header
/// declares). Memory is bounded by the bytes actually present, whatever the header claims, and
/// a header whose dimensions overflow, are zero, or promise more data than there is, is an
/// error naming `path`.
pub fn read_idx(reader: &mut dyn Read, path: &Path) -> Result<(Vec<usize>, Vec<u8>)> {
    let bad = |what: String| Error::corrupt(path, format!("not a valid IDX file ({what})"));
    let io = |e: std::io::Error| Error::io(path, e);
    let mut magic = [0u8; 4];
    if read_up_to(reader, &mut magic).map_err(io)? < 4 || magic[0] != 0 || magic[1] != 0 {
        return Err(bad("bad magic number".into()));
    }
    if magic[2] != 0x08 {
        return Err(bad(format!(
            "data type 0x{:02x}; only unsigned-byte (0x08) IDX data is supported",
            magic[2]
        )));
    }
    let ndims = magic[3] as usize;
    if ndims == 0 {
        return Err(bad("no dimensions".into()));
    }
    let mut raw = vec![0u8; 4 * ndims];
    if read_up_to(reader, &mut raw).map_err(io)? < raw.len() {
        return Err(bad("truncated header".into()));
    }
    let dims: Vec<usize> = raw
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let size = dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let mut data = Vec::new();
    reader
        .take(size as u64)
        .read_to_end(&mut data)
        .map_err(io)?;
    if data.len() < size {
        return Err(bad(format!(
            "truncated: dimensions {dims:?} need {size} data bytes, the file has {}",
            data.len()
        )));
    }
    Ok((dims, data))
}

/// The labels file paired with an images file, by the MNIST naming convention.
fn labels_path(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let labels = name
        .replace("images-idx3", "labels-idx1")
        .replace("images-idx4", "labels-idx1");
    if labels == name {
        return None;
    }
    let path = images.with_file_name(labels);
    path.exists().then_some(path)
}

impl IdxReader {
    /// Open an IDX image file and, if present, its labels file.
    pub fn open(path: &Path) -> Result<Self> {
        let (dims, pixels) = read_idx(&mut *open_maybe_gz(path)?, path)?;
        let shape = match dims[..] {
            [_, h, w] if h > 0 && w > 0 => [h, w, 1],
            [_, h, w, c] if h > 0 && w > 0 && (c == 1 || c == 3) => [h, w, c],
            _ => {
                return Err(Error::corrupt(path, format!("IDX dimensions {dims:?} are not N x H x W or N x H x W x C (H, W > 0; C = 1 or 3)")))
            }
        };
        // With N = 0 the header's total size is 0 whatever H x W x C is, so the row size is
        // checked on its own.
        if shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .is_none_or(|n| n > isize::MAX as usize)
        {
            return Err(Error::corrupt(
                path,
                format!("IDX image dimensions {dims:?} overflow"),
            ));
        }
        let n = dims[0];
        let labels = match labels_path(path) {
            Some(lp) => {
                let (ldims, labels) = read_idx(&mut *open_maybe_gz(&lp)?, &lp)?;
                if ldims != [n] {
                    return Err(Error::corrupt(
                        lp,
                        format!(
                            "labels of shape {ldims:?} for {n} images in {}",
                            path.display()
                        ),
                    ));
                }
                Some(labels)
            }
            None => None,
        };
        let lower = path.to_string_lossy().to_lowercase();
        let classes = (labels.is_some() && lower.contains("fashion")).then(|| {
            FASHION_MNIST_CLASSES
                .iter()
                .map(|s| s.to_string())
                .collect()
        });
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().trim_end_matches(".gz").to_string())
            .unwrap_or_default();
        Ok(IdxReader {
            name,
            shape,
            pixels: Buffer::from_vec(pixels),
            labels,
            classes,
        })
    }
}

impl RowReader for IdxReader {
    fn kind(&self) -> &'static str {
        "idx"
    }
    fn len(&self) -> usize {
        self.pixels.len() / self.shape.iter().product::<usize>()
    }
    fn pixel_shape(&self) -> Option<[usize; 3]> {
        Some(self.shape)
    }
    fn class_names(&self) -> Option<Vec<String>> {
        self.classes.clone()
    }
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        let size = self.shape.iter().product::<usize>();
        Ok(RawRow {
            id: format!("{}:{index}", self.name),
            label: self.labels.as_ref().map(|l| l[index] as i64),
            payload: Payload::Pixels(self.pixels.slice_with_length(index * size, size)),
        })
    }
}

/// `idx`: an IDX image file of the MNIST family (gzipped or not), with labels from the sibling
/// `...-labels-idx1-ubyte` file. Detected from a name containing `-ubyte` or `idx3`, or ending
/// in `.idx`.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct IdxFormat {}

impl FormatConfig for IdxFormat {
    const NAME: &'static str = "idx";
    fn sniff(input: &Probe<'_>) -> Result<Option<u8>> {
        let name = input.file_name();
        let idx = name.contains("-ubyte") || name.ends_with(".idx") || name.contains("idx3");
        Ok((input.is_file() && idx).then_some(30))
    }
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>> {
        Ok(Box::new(IdxReader::open(Path::new(input))?))
    }
}

crate::register_format!(IdxFormat);
