//! Creating output folders with an error that says what is in the way.

use std::path::Path;

use crate::{Error, Result};

/// `std::fs::create_dir_all(path)`, whose failure names the path and, when a file sits where a
/// folder is needed (`--out notes.txt/run`), that file: the OS says only "File exists" or "Not
/// a directory".
pub fn create_dir_all(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| {
        let blocker = path
            .ancestors()
            .find(|a| a.exists() && !a.is_dir())
            .map(Path::to_path_buf);
        match blocker {
            Some(file) => Error::conflict(
                path,
                format!(
                    "cannot create this folder: {} is a file, not a folder",
                    file.display()
                ),
            ),
            None => Error::io(path, e),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_the_way_is_named() {
        let tmp = std::env::temp_dir().join(format!("ldae-folders-{}", std::process::id()));
        std::fs::create_dir_all(&tmp).unwrap();
        let file = tmp.join("notes.txt");
        std::fs::write(&file, b"x").unwrap();
        for target in [file.join("run"), file.clone(), file.join("a/b")] {
            let err = create_dir_all(&target).unwrap_err().to_string();
            assert!(
                err.contains(&format!("{} is a file", file.display())),
                "{err}"
            );
        }
        create_dir_all(&tmp.join("x/y")).unwrap();
        assert!(tmp.join("x/y").is_dir());
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
