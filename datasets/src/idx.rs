//! IDX files (MNIST, Fashion-MNIST), gzipped or not: `N x H x W` or `N x H x W x C` unsigned
//! bytes, with labels from the sibling `...-labels-idx1-ubyte[.gz]` file when it exists.

use std::io::Read;
use std::path::{Path, PathBuf};

use ldae_pipeline::{Error, Rejection, Result};

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
    pixels: Vec<u8>,
    labels: Option<Vec<u8>>,
    classes: Option<Vec<String>>,
}

fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| Error::io(path, e))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse an IDX header: returns the dimensions and the offset of the data.
fn parse_header(bytes: &[u8], path: &Path) -> Result<(Vec<usize>, usize)> {
    let bad = |what: &str| Error::msg(format!("{}: not an IDX file ({what})", path.display()));
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad("bad magic number"));
    }
    if bytes[2] != 0x08 {
        return Err(bad("only unsigned-byte IDX data is supported"));
    }
    let ndims = bytes[3] as usize;
    let offset = 4 + 4 * ndims;
    if bytes.len() < offset {
        return Err(bad("truncated header"));
    }
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let need = offset + dims.iter().product::<usize>();
    if bytes.len() < need {
        return Err(bad(&format!(
            "truncated: {} bytes, header needs {need}",
            bytes.len()
        )));
    }
    Ok((dims, offset))
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
        let bytes = read_maybe_gz(path)?;
        let (dims, offset) = parse_header(&bytes, path)?;
        let shape = match dims[..] {
            [_, h, w] => [h, w, 1],
            [_, h, w, c] if c == 1 || c == 3 => [h, w, c],
            _ => {
                return Err(Error::msg(format!(
                    "{}: IDX dimensions {dims:?} are not N x H x W or N x H x W x C (C = 1 or 3)",
                    path.display()
                )))
            }
        };
        let n = dims[0];
        let pixels = bytes[offset..offset + dims.iter().product::<usize>()].to_vec();
        let labels = match labels_path(path) {
            Some(lp) => {
                let lb = read_maybe_gz(&lp)?;
                let (ldims, loff) = parse_header(&lb, &lp)?;
                if ldims != [n] {
                    return Err(Error::msg(format!(
                        "{}: {ldims:?} labels for {n} images",
                        lp.display()
                    )));
                }
                Some(lb[loff..loff + n].to_vec())
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
            pixels,
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
            payload: Payload::Pixels(self.pixels[index * size..(index + 1) * size].to_vec()),
        })
    }
}
