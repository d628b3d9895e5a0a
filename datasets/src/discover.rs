//! Recursive discovery of image files.

use std::path::{Path, PathBuf};

/// File extensions (lower case) recognised as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "ppm", "pgm", "bmp", "webp"];

/// True when `path` has an image extension (case-insensitive).
pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// All image files below `root`, recursively, sorted by path so every run sees the same order.
/// Hidden files and folders (names starting with '.') are skipped.
pub fn find_images(root: &Path) -> std::io::Result<Vec<PathBuf>> {
    find_files(root, is_image_path)
}

/// The name featleak gives an image (or feature file) below `root`: its path relative to `root`
/// without extension (`sub/img`), the key of run image lists, outputs and caches.
pub fn image_name(path: &Path, root: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .with_extension("")
        .to_string_lossy()
        .into_owned()
}

/// [`find_images`] with each image's [`image_name`].
pub fn find_named_images(root: &Path) -> std::io::Result<Vec<(PathBuf, String)>> {
    Ok(find_images(root)?
        .into_iter()
        .map(|p| {
            let name = image_name(&p, root);
            (p, name)
        })
        .collect())
}

/// All files below `root` accepted by `keep`, recursively, sorted, hidden entries skipped.
pub fn find_files(root: &Path, keep: impl Fn(&Path) -> bool) -> std::io::Result<Vec<PathBuf>> {
    if !root.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} is not a folder", root.display()),
        ));
    }
    let mut out = Vec::new();
    let walker = walkdir::WalkDir::new(root)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| e.depth() == 0 || !e.file_name().to_string_lossy().starts_with('.'));
    for entry in walker {
        let entry = entry.map_err(std::io::Error::other)?;
        if entry.file_type().is_file() && keep(entry.path()) {
            out.push(entry.into_path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_images_sorted_and_skips_others() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        for f in [
            "b/c/z.PNG",
            "a.jpg",
            "b/x.webp",
            "notes.txt",
            ".hidden/h.png",
            "b/y.pgm",
        ] {
            std::fs::write(root.join(f), b"").unwrap();
        }
        let found: Vec<String> = find_images(root)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(found, ["a.jpg", "b/c/z.PNG", "b/x.webp", "b/y.pgm"]);
    }

    #[test]
    fn missing_folder_is_an_error() {
        let err = find_images(Path::new("/definitely/not/here")).unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"));
    }
}
