//! Image folders: `root/<class>/**/*.jpg|jpeg|png` (labels from the sorted class names) or a flat
//! folder of images (no labels).
//!
//! Links are followed, but no directory is read twice (directories are recognised by device
//! and inode), so a `self -> .` link neither loops nor duplicates rows. Only regular files are
//! read; anything else named like an image (a FIFO, a socket, a dangling link) is a rejected row.
//! Ids are relative paths, escaped losslessly when a name is not UTF-8
//! ([`crate::file_access::path_id`]); the file itself is read by its real OS path.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use ldae_pipeline::{Error, Rejection, Result};

use crate::file_access::{path_id, read_regular_file, ReadAhead, MAX_ENCODED_BYTES};
use crate::format::{FormatConfig, Probe};
use crate::indexed::{Payload, RawRow, RowReader};

/// File extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// One image file: where it is, its id and its label.
struct ImageFile {
    path: PathBuf,
    id: String,
    label: Option<i64>,
}

/// Reads the image files of a folder.
pub struct FolderReader {
    files: Vec<ImageFile>,
    classes: Option<Vec<String>>,
    /// Buffers of rows already copied into a batch, to read the next files into: one
    /// allocation per file of varying size left mimalloc a partly used 4 MiB page per size
    /// class, and the 224 px encode touched 30 MB more fresh memory than with these.
    spare: Vec<Vec<u8>>,
    /// The capacity of `spare`, in bytes.
    spare_bytes: usize,
    /// Files read ahead by `prefetch`, until `read` takes them.
    ready: ReadAhead<std::result::Result<Vec<u8>, String>>,
}

/// At most this many bytes of spare read buffers are kept (a batch's worth, usually).
const MAX_SPARE_BYTES: usize = 32 << 20;

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

/// Walks a folder tree, reading each directory once.
struct Walk {
    root: PathBuf,
    /// (device, inode) of every directory read so far.
    seen: HashSet<(u64, u64)>,
}

impl Walk {
    /// Whether `dir` (already known to be a directory) is new; remembers it.
    fn first_visit(&mut self, dir: &Path, meta: &std::fs::Metadata) -> bool {
        if self.seen.insert((meta.dev(), meta.ino())) {
            return true;
        }
        tracing::warn!(
            "{}: skipped, the same directory was already read through another path (a link)",
            dir.display()
        );
        false
    }

    /// The entries of `dir`, sorted by name, each with its metadata (links followed) unless it
    /// is a plain file: `None` for those, and when reading it fails (a dangling link, a link
    /// loop). The listing tells plain files apart without a `stat` per file, which on a
    /// network file system is a round trip each (21 minutes for ImageNet's 1.28 million
    /// files at a millisecond each); a file is checked when it is read.
    fn entries(&self, dir: &Path) -> Result<Vec<(PathBuf, Option<std::fs::Metadata>)>> {
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
            let entry = entry.map_err(|e| Error::io(dir, e))?;
            let plain_file = entry.file_type().is_ok_and(|t| t.is_file());
            paths.push((entry.path(), plain_file));
        }
        paths.sort();
        Ok(paths
            .into_iter()
            .map(|(p, plain_file)| {
                let meta = (!plain_file).then(|| std::fs::metadata(&p).ok()).flatten();
                (p, meta)
            })
            .collect())
    }

    /// The images below the directory `dir`, unless it was read already.
    fn enter(
        &mut self,
        dir: &Path,
        meta: &std::fs::Metadata,
        label: Option<i64>,
        out: &mut Vec<ImageFile>,
    ) -> Result<()> {
        if self.first_visit(dir, meta) {
            self.images(dir, label, out)?;
        }
        Ok(())
    }

    /// Image files below `dir` (recursively), in sorted path order. Entries whose metadata
    /// cannot be read are kept when their name looks like an image, so they are reported as
    /// rejected rows rather than silently skipped.
    fn images(&mut self, dir: &Path, label: Option<i64>, out: &mut Vec<ImageFile>) -> Result<()> {
        let entries = self.entries(dir)?;
        self.images_of(entries, label, out)
    }

    /// [`Walk::images`] of entries already listed by [`Walk::entries`].
    fn images_of(
        &mut self,
        entries: Vec<(PathBuf, Option<std::fs::Metadata>)>,
        label: Option<i64>,
        out: &mut Vec<ImageFile>,
    ) -> Result<()> {
        for (path, meta) in entries {
            match meta {
                Some(m) if m.is_dir() => self.enter(&path, &m, label, out)?,
                _ if is_image(&path) => {
                    let id = path_id(path.strip_prefix(&self.root).unwrap_or(&path));
                    out.push(ImageFile { path, id, label });
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl FolderReader {
    /// List `root`. If it has sub-folders, each is a class (sorted by name, label = position)
    /// and images directly in `root` are an error; otherwise it is a flat, unlabeled folder.
    pub fn open(root: &Path) -> Result<Self> {
        let root_meta = std::fs::metadata(root).map_err(|e| Error::io(root, e))?;
        let mut walk = Walk {
            root: root.to_path_buf(),
            seen: HashSet::new(),
        };
        walk.first_visit(root, &root_meta);
        let entries = walk.entries(root)?;
        // Sub-folders other than links back to the root itself (`self -> .`).
        let is_class_dir = |m: &Option<std::fs::Metadata>| {
            m.as_ref().is_some_and(|m| {
                m.is_dir() && (m.dev(), m.ino()) != (root_meta.dev(), root_meta.ino())
            })
        };
        let (files, classes) = if !entries.iter().any(|(_, m)| is_class_dir(m)) {
            // A flat folder: its listing above is the walk's first level (not read again).
            let mut files = Vec::new();
            walk.images_of(entries, None, &mut files)?;
            (files, None)
        } else {
            let loose: Vec<&PathBuf> = entries
                .iter()
                .filter(|(p, m)| !m.as_ref().is_some_and(|m| m.is_dir()) && is_image(p))
                .map(|(p, _)| p)
                .collect();
            if !loose.is_empty() {
                return Err(Error::corrupt(root, format!("has class folders and also {} loose image(s) such as {}; move them into a class folder", loose.len(), loose[0].display())));
            }
            let mut files = Vec::new();
            let mut names = Vec::new();
            for (path, meta) in entries.iter().filter(|(_, m)| is_class_dir(m)) {
                // A class folder that is a link to another class folder is one class, read once.
                let Some(meta) = meta else { continue };
                if !walk.first_visit(path, meta) {
                    continue;
                }
                let label = names.len() as i64;
                walk.images(path, Some(label), &mut files)?;
                names.push(path_id(Path::new(path.file_name().unwrap_or_default())));
            }
            (files, Some(names))
        };
        if files.is_empty() {
            return Err(Error::corrupt(
                root,
                "no image files (.jpg, .jpeg, .png) found",
            ));
        }
        Ok(FolderReader {
            files,
            classes,
            spare: Vec::new(),
            spare_bytes: 0,
            ready: ReadAhead::default(),
        })
    }

    /// A buffer of an earlier row to read a file into (or a new one).
    fn spare_buffer(&mut self) -> Vec<u8> {
        let buffer = self.spare.pop().unwrap_or_default();
        self.spare_bytes -= buffer.capacity();
        buffer
    }
}

impl RowReader for FolderReader {
    fn kind(&self) -> &'static str {
        "folder"
    }
    fn len(&self) -> usize {
        self.files.len()
    }
    fn pixel_shape(&self) -> Option<[usize; 3]> {
        None
    }
    fn class_names(&self) -> Option<Vec<String>> {
        self.classes.clone()
    }
    /// Once a file of the next batch is not read yet, reads it with the next ones at once
    /// ([`ReadAhead`]), several threads each reading a run of them, when files are slow to
    /// read: a storage with latency (a network file system, a cold disk) then keeps many reads
    /// in flight, where one at a time waited for each.
    fn prefetch(&mut self, upcoming: &[usize], next: usize) {
        let wanted = self.ready.wanted(upcoming, next, |_| true);
        let buffers: Vec<Vec<u8>> = wanted.iter().map(|_| self.spare_buffer()).collect();
        let files = wanted
            .iter()
            .zip(buffers)
            .map(|(&index, buffer)| (index, (self.files[index].path.as_path(), buffer)))
            .collect();
        let read = |(path, buffer)| read_regular_file(path, MAX_ENCODED_BYTES, buffer);
        self.ready.read(files, read);
    }
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        let read = match self.ready.take(index) {
            Some(read) => read,
            None => {
                let buffer = self.spare_buffer();
                read_regular_file(&self.files[index].path, MAX_ENCODED_BYTES, buffer)
            }
        };
        let file = &self.files[index];
        match read {
            Ok(bytes) => Ok(RawRow {
                id: file.id.clone(),
                label: file.label,
                payload: Payload::Encoded(bytes),
            }),
            Err(e) => Err(Rejection {
                id: file.id.clone(),
                message: format!("read {}: {e}", file.path.display()),
            }),
        }
    }
    fn recycle(&mut self, bytes: Vec<u8>) {
        if self.spare_bytes + bytes.capacity() <= MAX_SPARE_BYTES {
            self.spare_bytes += bytes.capacity();
            self.spare.push(bytes);
        }
    }
}

/// `folder`: image files (`.jpg`, `.jpeg`, `.png`) in class folders (`root/<class>/**`, labels
/// from the sorted class names) or in one flat folder (no labels). Detected for any folder no
/// other format claims.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct FolderFormat {}

impl FormatConfig for FolderFormat {
    const NAME: &'static str = "folder";
    fn sniff(input: &Probe<'_>) -> Result<Option<u8>> {
        Ok(input.is_dir().then_some(1))
    }
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>> {
        Ok(Box::new(FolderReader::open(Path::new(input))?))
    }
}

crate::register_format!(FolderFormat);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_read_ahead_at_once_are_the_files_read_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        for class in ["a", "b"] {
            std::fs::create_dir(dir.path().join(class)).unwrap();
            for i in 0..50 {
                let bytes = format!("{class}{i}").repeat(i + 1);
                std::fs::write(dir.path().join(class).join(format!("{i:02}.jpg")), bytes).unwrap();
            }
        }
        std::fs::write(dir.path().join("a/zz.jpg"), vec![0u8; 0]).unwrap();
        let mut reader = FolderReader::open(dir.path()).unwrap();
        let order: Vec<usize> = (0..reader.len()).rev().collect();
        let mut ahead = FolderReader::open(dir.path()).unwrap();
        for (at, &index) in order.iter().enumerate() {
            // Batches of 3: the first prefetch reads 64 files at once.
            if at % 3 == 0 {
                ahead.prefetch(&order[at..], 3);
                assert!(ahead.ready.len() >= 3.min(order.len() - at));
            }
            let (one, read_ahead) = (reader.read(index).unwrap(), ahead.read(index).unwrap());
            assert_eq!(one.id, read_ahead.id);
            assert_eq!(one.label, read_ahead.label);
            match (one.payload, read_ahead.payload) {
                (Payload::Encoded(a), Payload::Encoded(b)) => assert_eq!(a, b, "row {index}"),
                _ => panic!("row {index} is not encoded bytes"),
            }
        }
        assert!(ahead.ready.is_empty(), "every file read ahead was read");
    }
}
