//! featleak's default store: a folder of `.npz` feature files ([`crate::npz`]) mirroring the
//! image tree, with the `manifest.json` of [`crate::folder`].
//!
//! An image's name comes from the manifest's `images` list (`image` ↔ `features`) when it has
//! one, so `a/one.npz` reads as `a/one.png`; a file the manifest does not list is named by its
//! path without `.npz`. Written folders get a manifest (command `convert`) naming every image.

use super::{OneExtractor, check_name, image_error, store_error};
use crate::error::FeatureFileError;
use crate::features::FeatureSet;
use crate::folder::{FolderManifest, ImageRecord, MANIFEST};
use crate::{read_features, write_features};
use featleak_datasets::atomic::write_atomic;
use featleak_datasets::find_files;
use featleak_datasets::manifest::{Tool, unix_time};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// The command recorded in the manifest of a folder written by [`NpzFolderWriter`].
pub const COMMAND: &str = "convert";

/// The part of a features folder's manifest that names its images.
#[derive(Deserialize)]
struct ManifestImages {
    tool: Tool,
    images: Vec<ImageRecord>,
}

/// Reads `folder/manifest.json` when it is one of featleak's; `None` when there is none.
fn featleak_manifest(folder: &Path) -> Result<Option<ManifestImages>, FeatureFileError> {
    let path = folder.join(MANIFEST);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read(&path).map_err(|source| FeatureFileError::Io {
        path: path.clone(),
        source,
    })?;
    match serde_json::from_slice::<ManifestImages>(&text) {
        Ok(m) if m.tool.name == Tool::current().name => Ok(Some(m)),
        _ => Ok(None),
    }
}

/// A folder of `.npz` files opened for reading.
pub struct NpzFolderReader {
    root: PathBuf,
    files: BTreeMap<String, PathBuf>,
}

impl NpzFolderReader {
    /// Lists the `.npz` files below `root` (hidden folders skipped).
    pub fn open(root: &Path) -> Result<Self, FeatureFileError> {
        let found =
            find_files(root, |p| p.extension().is_some_and(|e| e == "npz")).map_err(|source| {
                FeatureFileError::Io {
                    path: root.to_path_buf(),
                    source,
                }
            })?;
        if found.is_empty() {
            return Err(store_error(root, "holds no .npz feature files"));
        }
        let listed: HashMap<String, String> = featleak_manifest(root)?
            .map(|m| {
                m.images
                    .into_iter()
                    .map(|r| (r.features, r.image))
                    .collect()
            })
            .unwrap_or_default();
        let mut files = BTreeMap::new();
        for file in found {
            let rel = file.strip_prefix(root).expect("found below root");
            let rel = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/");
            let name = listed
                .get(&rel)
                .cloned()
                .unwrap_or_else(|| rel.strip_suffix(".npz").unwrap_or(&rel).to_string());
            if let Some(other) = files.insert(name.clone(), file.clone()) {
                return Err(store_error(
                    root,
                    format!(
                        "{} and {} both hold image '{name}'",
                        other.display(),
                        file.display()
                    ),
                ));
            }
        }
        Ok(Self {
            root: root.to_path_buf(),
            files,
        })
    }
}

impl super::FeatureReader for NpzFolderReader {
    fn path(&self) -> &Path {
        &self.root
    }

    fn names(&self) -> Result<Vec<String>, FeatureFileError> {
        Ok(self.files.keys().cloned().collect())
    }

    fn read(&self, name: &str) -> Result<FeatureSet, FeatureFileError> {
        let file = self
            .files
            .get(name)
            .ok_or_else(|| image_error(&self.root, name, "not in this folder"))?;
        read_features(file)
    }
}

/// A new folder of `.npz` files: `a/one.png` is written to `a/one.npz`.
pub struct NpzFolderWriter {
    root: PathBuf,
    records: Vec<ImageRecord>,
    written: HashMap<String, String>,
    extractor: OneExtractor,
}

impl NpzFolderWriter {
    /// Starts writing into `root`, which must be new, empty, or a features folder featleak wrote
    /// (a `manifest.json` of featleak's and `.npz` files only; it is emptied first).
    pub fn create(root: &Path) -> Result<Self, FeatureFileError> {
        let io = |source| FeatureFileError::Io {
            path: root.to_path_buf(),
            source,
        };
        if Self::check_destination(root)? {
            std::fs::remove_dir_all(root).map_err(io)?;
        }
        std::fs::create_dir_all(root).map_err(io)?;
        Ok(Self {
            root: root.to_path_buf(),
            records: Vec::new(),
            written: HashMap::new(),
            extractor: OneExtractor::default(),
        })
    }

    /// Refuses `root` when it holds files featleak did not write; true when it holds a features
    /// folder to replace.
    pub fn check_destination(root: &Path) -> Result<bool, FeatureFileError> {
        let io = |source| FeatureFileError::Io {
            path: root.to_path_buf(),
            source,
        };
        if !root.is_dir() || std::fs::read_dir(root).map_err(io)?.next().is_none() {
            return Ok(false);
        }
        let foreign = if featleak_manifest(root)?.is_none() {
            Some(format!("no {MANIFEST} of featleak's"))
        } else {
            walkdir::WalkDir::new(root)
                .into_iter()
                .filter_map(Result::ok)
                .find(|e| {
                    e.file_type().is_file()
                        && e.path() != root.join(MANIFEST)
                        && e.path().extension().is_none_or(|x| x != "npz")
                })
                .map(|e| e.path().display().to_string())
        };
        if let Some(file) = foreign {
            return Err(store_error(
                root,
                format!(
                    "holds files featleak did not write ({file}); choose a new or empty \
                     destination"
                ),
            ));
        }
        Ok(true)
    }
}

impl super::FeatureWriter for NpzFolderWriter {
    fn path(&self) -> &Path {
        &self.root
    }

    fn write(&mut self, name: &str, features: &FeatureSet) -> Result<(), FeatureFileError> {
        check_name(&self.root, name)?;
        self.extractor
            .check(&self.root, name, &features.extractor)?;
        let rel = Path::new(name)
            .with_extension("npz")
            .to_string_lossy()
            .into_owned();
        if let Some(other) = self.written.insert(rel.clone(), name.to_string()) {
            return Err(image_error(
                &self.root,
                name,
                format!("'{other}' is also written to {rel}; rename one of them"),
            ));
        }
        let file = self.root.join(&rel);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|source| FeatureFileError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        write_features(&file, features)?;
        self.records.push(ImageRecord {
            image: name.to_string(),
            features: rel,
            keypoints: features.len(),
        });
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<(), FeatureFileError> {
        let manifest = FolderManifest {
            tool: Tool::current(),
            command: COMMAND.into(),
            created_unix: unix_time(),
            seed: 0,
            threads: 1,
            images_root: String::new(),
            extractor: self.extractor.info(),
            shard: None,
            images: self.records,
            failures: Vec::new(),
        };
        let path = self.root.join(MANIFEST);
        let bytes = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        write_atomic(&path, |file| std::io::Write::write_all(file, &bytes))
            .map_err(|source| FeatureFileError::Io { path, source })
    }
}
