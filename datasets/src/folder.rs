//! Image folders: `root/<class>/**/*.jpg|jpeg|png` (labels from the sorted class names) or a flat
//! folder of images (no labels).

use std::path::{Path, PathBuf};

use ldae_pipeline::{Error, Rejection, Result};

use crate::indexed::{Payload, RawRow, RowReader};

/// File extensions read as images (case-insensitive).
pub const IMAGE_EXTENSIONS: [&str; 3] = ["jpg", "jpeg", "png"];

/// Reads the image files of a folder.
pub struct FolderReader {
    root: PathBuf,
    files: Vec<(String, Option<i64>)>,
    classes: Option<Vec<String>>,
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .map(|e| IMAGE_EXTENSIONS.iter().any(|x| x.eq_ignore_ascii_case(e)))
        .unwrap_or(false)
}

/// Image files below `dir` (recursively), as sorted paths relative to `root`. Entries whose
/// metadata cannot be read (e.g. dangling links) are kept if their name looks like an image, so
/// they are reported as rejected rows rather than silently skipped.
fn list_images(root: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        paths.push(entry.map_err(|e| Error::io(dir, e))?.path());
    }
    paths.sort();
    for path in paths {
        if path.is_dir() {
            list_images(root, &path, out)?;
        } else if is_image(&path) {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            out.push(rel.to_string_lossy().replace('\\', "/"));
        }
    }
    Ok(())
}

impl FolderReader {
    /// List `root`. If it has sub-folders, each is a class (sorted by name, label = position)
    /// and images directly in `root` are an error; otherwise it is a flat, unlabeled folder.
    pub fn open(root: &Path) -> Result<Self> {
        let entries = std::fs::read_dir(root).map_err(|e| Error::io(root, e))?;
        let mut dirs = Vec::new();
        let mut loose = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(root, e))?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if is_image(&path) {
                loose.push(path);
            }
        }
        dirs.sort();
        let (files, classes) = if dirs.is_empty() {
            let mut files = Vec::new();
            list_images(root, root, &mut files)?;
            (files.into_iter().map(|f| (f, None)).collect(), None)
        } else {
            if !loose.is_empty() {
                return Err(Error::msg(format!(
                    "{}: has class folders and also {} loose image(s) such as {}; move them into a class folder",
                    root.display(),
                    loose.len(),
                    loose[0].display()
                )));
            }
            let mut files = Vec::new();
            let mut names = Vec::new();
            for (label, dir) in dirs.iter().enumerate() {
                let mut class_files = Vec::new();
                list_images(root, dir, &mut class_files)?;
                files.extend(class_files.into_iter().map(|f| (f, Some(label as i64))));
                names.push(
                    dir.file_name()
                        .map(|n| n.to_string_lossy().to_string())
                        .unwrap_or_default(),
                );
            }
            (files, Some(names))
        };
        if files.is_empty() {
            return Err(Error::msg(format!(
                "{}: no image files (.jpg, .jpeg, .png) found",
                root.display()
            )));
        }
        Ok(FolderReader {
            root: root.to_path_buf(),
            files,
            classes,
        })
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
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        let (id, label) = &self.files[index];
        match std::fs::read(self.root.join(id)) {
            Ok(bytes) => Ok(RawRow {
                id: id.clone(),
                label: *label,
                payload: Payload::Encoded(bytes),
            }),
            Err(e) => Err(Rejection {
                id: id.clone(),
                message: format!("read {}: {e}", self.root.join(id).display()),
            }),
        }
    }
}
