//! Reading and writing featleak's own files (JSON manifests, binary blobs, PNG pictures) with
//! errors that name the file. Every write is atomic (see [`crate::atomic`]) and creates the
//! file's folder.

use crate::atomic::write_atomic;
use image::RgbImage;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Why a file could not be read or written; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The system refused.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        /// What was being done (read, write, create).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A JSON file did not hold what was expected.
    #[error("{}: unexpected content ({source})", .path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's reason.
        source: serde_json::Error,
    },
    /// A picture could not be encoded.
    #[error("cannot encode {}: {source}", .path.display())]
    Encode {
        /// The file it was for.
        path: PathBuf,
        /// The encoder's reason.
        source: image::ImageError,
    },
}

impl FileError {
    /// An I/O error on `path` while doing `action`, for `map_err`.
    pub fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io {
            action,
            path,
            source,
        }
    }
}

fn create_parent(path: &Path) -> Result<(), FileError> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).map_err(FileError::io("create", parent))
        }
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    create_parent(path)?;
    write_atomic(path, |f| f.write_all(bytes)).map_err(FileError::io("write", path))
}

/// Writes `value` as pretty JSON (with a final newline) to `path` atomically.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), FileError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|source| FileError::Json {
        path: path.to_path_buf(),
        source,
    })?;
    bytes.push(b'\n');
    write_bytes(path, &bytes)
}

/// Reads a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, FileError> {
    let text = std::fs::read_to_string(path).map_err(FileError::io("read", path))?;
    serde_json::from_str(&text).map_err(|source| FileError::Json {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `image` as a PNG file atomically.
pub fn save_png(path: &Path, image: &RgbImage) -> Result<(), FileError> {
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|source| FileError::Encode {
            path: path.to_path_buf(),
            source,
        })?;
    write_bytes(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_create_folders_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/c.json");
        write_json(&path, &serde_json::json!({"x": 1})).unwrap();
        let v: serde_json::Value = read_json(&path).unwrap();
        assert_eq!(v["x"], 1);
        std::fs::write(&path, "{").unwrap();
        let e = read_json::<serde_json::Value>(&path)
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.json: unexpected content"), "{e}");
        let e = read_json::<serde_json::Value>(&dir.path().join("none.json"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot read ") && e.contains("none.json"),
            "{e}"
        );

        let png = dir.path().join("p/q.png");
        save_png(&png, &RgbImage::new(3, 2)).unwrap();
        assert_eq!(image::open(&png).unwrap().width(), 3);
    }
}
