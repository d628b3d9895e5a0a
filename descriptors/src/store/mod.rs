//! Feature stores: the features of many images in one place, in one of three formats chosen by
//! the path ([`Format::of`]): a folder of featleak `.npz` files (the default), an hloc
//! `features.h5` (`*.h5`) or a COLMAP `database.db` (`*.db`). `docs/FORMATS.md` describes the
//! layouts and conventions.
//!
//! Images are named by their path relative to the images folder, with `/` separators
//! (`a/one.png`), as hloc and COLMAP name them. A store holds the features of one extractor, whose
//! identity featleak writes once per store (`manifest.json`, the `.h5` root attribute
//! `featleak_extractor`, the `.db` table `featleak_extractor`); files written by hloc or COLMAP
//! carry none, and their features read with the extractor name `"unknown"`.

pub mod colmap;
pub mod hloc;
pub mod npz_folder;

use crate::error::FeatureFileError;
use crate::features::{ExtractorInfo, FeatureSet};
use std::path::{Path, PathBuf};

/// The format of a feature store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A folder of `.npz` feature files mirroring the image tree (featleak's own).
    NpzFolder,
    /// An hloc `features.h5`.
    Hloc,
    /// A COLMAP `database.db`.
    Colmap,
}

impl Format {
    /// The format of the store at `path`: `*.h5` is hloc, `*.db` COLMAP, a folder (or a new path
    /// without extension) a folder of `.npz`. Any other existing file, or a new path with another
    /// extension, is refused rather than guessed.
    pub fn of(path: &Path) -> Result<Self, FeatureFileError> {
        match path.extension().and_then(|e| e.to_str()) {
            Some("h5") => Ok(Self::Hloc),
            Some("db") => Ok(Self::Colmap),
            _ if path.is_dir() => Ok(Self::NpzFolder),
            None if !path.exists() => Ok(Self::NpzFolder),
            Some(ext) if !path.exists() => Err(store_error(
                path,
                format!(
                    "unknown extension '.{ext}': give FILE.h5 (hloc), FILE.db (COLMAP) or a \
                     folder without extension (.npz files)"
                ),
            )),
            _ => Err(store_error(
                path,
                "is a file but neither .h5 (hloc) nor .db (COLMAP); give one of those or a \
                 folder of .npz files",
            )),
        }
    }

    /// "npz folder", "hloc .h5" or "COLMAP .db".
    pub fn name(self) -> &'static str {
        match self {
            Self::NpzFolder => "npz folder",
            Self::Hloc => "hloc .h5",
            Self::Colmap => "COLMAP .db",
        }
    }
}

/// Reads the features of the images of a store.
pub trait FeatureReader {
    /// The store.
    fn path(&self) -> &Path;
    /// The names of its images, sorted.
    fn names(&self) -> Result<Vec<String>, FeatureFileError>;
    /// The features of image `name`, checked as [`crate::read_features`] checks a `.npz`.
    fn read(&self, name: &str) -> Result<FeatureSet, FeatureFileError>;
}

/// Writes the features of images into a new store; nothing is in place before [`Self::finish`].
pub trait FeatureWriter {
    /// The store.
    fn path(&self) -> &Path;
    /// Adds the features of image `name`; every image of a store must come from one extractor.
    fn write(&mut self, name: &str, features: &FeatureSet) -> Result<(), FeatureFileError>;
    /// Completes the store and moves it into place.
    fn finish(self: Box<Self>) -> Result<(), FeatureFileError>;
}

/// Opens the existing store at `path` for reading.
pub fn open(path: &Path) -> Result<Box<dyn FeatureReader>, FeatureFileError> {
    if !path.exists() {
        return Err(store_error(path, "does not exist"));
    }
    Ok(match Format::of(path)? {
        Format::NpzFolder => Box::new(npz_folder::NpzFolderReader::open(path)?),
        Format::Hloc => Box::new(hloc::HlocReader::open(path)?),
        Format::Colmap => Box::new(colmap::ColmapReader::open(path)?),
    })
}

/// Starts a new store at `path`. An existing store featleak wrote there is replaced when the
/// new one is finished; anything else there (files of other tools, an `.h5` or `.db` featleak
/// did not write) is refused.
pub fn create(path: &Path) -> Result<Box<dyn FeatureWriter>, FeatureFileError> {
    Ok(match Format::of(path)? {
        Format::NpzFolder => Box::new(npz_folder::NpzFolderWriter::create(path)?),
        Format::Hloc => Box::new(hloc::HlocWriter::create(path)?),
        Format::Colmap => Box::new(colmap::ColmapWriter::create(path)?),
    })
}

/// Refuses `path` as a destination the way [`create`] would, without creating anything.
pub fn check_destination(path: &Path) -> Result<(), FeatureFileError> {
    match Format::of(path)? {
        Format::NpzFolder => npz_folder::NpzFolderWriter::check_destination(path).map(|_| ()),
        Format::Hloc => hloc::HlocWriter::check_destination(path),
        Format::Colmap => colmap::ColmapWriter::check_destination(path),
    }
}

/// Copies every image of the store `from` into a new store `to` (see [`create`]); returns the
/// number of images.
pub fn convert(from: &Path, to: &Path) -> Result<usize, FeatureFileError> {
    if let (Ok(a), Ok(b)) = (from.canonicalize(), to.canonicalize())
        && a == b
    {
        return Err(store_error(
            to,
            "is the source store; choose another destination",
        ));
    }
    let reader = open(from)?;
    let names = reader.names()?;
    let mut writer = create(to)?;
    for name in &names {
        writer.write(name, &reader.read(name)?)?;
    }
    writer.finish()?;
    Ok(names.len())
}

/// The extractor of features from files that do not record one.
pub fn unknown_extractor() -> ExtractorInfo {
    ExtractorInfo {
        name: "unknown".into(),
        config: serde_json::Value::Null,
    }
}

pub(crate) fn store_error(path: &Path, problem: impl Into<String>) -> FeatureFileError {
    FeatureFileError::Store {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// The problem `problem` with image `name` of the store at `path`.
pub(crate) fn image_error(
    path: &Path,
    name: &str,
    problem: impl std::fmt::Display,
) -> FeatureFileError {
    store_error(path, format!("image '{name}': {problem}"))
}

/// Refuses image names that are not relative `/`-separated paths (empty, absolute, with empty,
/// `.` or `..` components).
pub(crate) fn check_name(path: &Path, name: &str) -> Result<(), FeatureFileError> {
    let bad = name.is_empty()
        || name.contains('\0')
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..");
    if bad {
        return Err(store_error(
            path,
            format!("image name '{name}' is not a relative path like 'a/b.png'"),
        ));
    }
    Ok(())
}

/// Remembers the one extractor of a store being written.
#[derive(Default)]
pub(crate) struct OneExtractor(Option<ExtractorInfo>);

impl OneExtractor {
    /// Checks `info` against the extractor of the images written before; true for the first.
    pub(crate) fn check(
        &mut self,
        path: &Path,
        name: &str,
        info: &ExtractorInfo,
    ) -> Result<bool, FeatureFileError> {
        match &self.0 {
            None => {
                self.0 = Some(info.clone());
                Ok(true)
            }
            Some(first) if first == info => Ok(false),
            Some(first) => Err(image_error(
                path,
                name,
                format!(
                    "features of {} in a store of {} features; a store holds one extractor's",
                    info.name, first.name
                ),
            )),
        }
    }

    /// The extractor, `"unknown"` when nothing was written.
    pub(crate) fn info(&self) -> ExtractorInfo {
        self.0.clone().unwrap_or_else(unknown_extractor)
    }
}

/// Most elements a store's arrays may claim for one image: what [`crate::npz::MAX_EXPANSION`]
/// allows a file of `file_len` bytes.
pub(crate) fn most_elements(file_len: u64) -> u64 {
    crate::npz::MAX_EXPANSION
        .saturating_mul(file_len)
        .saturating_add(crate::npz::EXPANSION_SLACK)
}

/// `path` with `.partial` appended: where a single-file store is written before it is moved
/// into place.
pub(crate) fn partial_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// Moves the finished `partial` file to `path`.
pub(crate) fn move_into_place(partial: &Path, path: &Path) -> Result<(), FeatureFileError> {
    std::fs::rename(partial, path).map_err(|source| FeatureFileError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// The image size (height, width) from a (width, height) pair of a file, refused unless both
/// are positive and fit in `u32`.
pub(crate) fn image_size_from_wh(w: i64, h: i64) -> Result<(u32, u32), String> {
    let side = |v: i64| u32::try_from(v).ok().filter(|&v| v > 0);
    match (side(h), side(w)) {
        (Some(h), Some(w)) => Ok((h, w)),
        _ => Err(format!("image size {w}×{h} is not two positive sides")),
    }
}
