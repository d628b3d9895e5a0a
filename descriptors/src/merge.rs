//! Joins the shards of one `extract` run (folders written with `--shard K/N`, see
//! [`featleak_datasets::shard`]) into the folder one unsharded run writes: every `.npz` file,
//! and one `manifest.json` whose `images` and `failures` are the shards' in the order of the
//! sorted image list.
//!
//! The shards must come from one run: the same tool version, extractor, seed and images folder
//! (as given), and their `K` must cover `0..N` exactly once. Two fields differ per process and
//! are not compared: the merged `created_unix` is the latest of the shards' (when the last one
//! finished), and `threads` is shard 0's.

use crate::DescriptorError;
use crate::folder::{COMMAND, FolderManifest, MANIFEST};
use featleak_datasets::FileError;
use featleak_datasets::files::{read_json, write_bytes, write_json};
use featleak_datasets::shard::{ShardError, check_complete, prepare_out};
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Merges the feature folders `shards` into `out` (new or empty); returns the merged manifest.
pub fn merge_feature_shards(
    shards: &[PathBuf],
    out: &Path,
) -> Result<FolderManifest, DescriptorError> {
    let manifests = shards
        .iter()
        .map(|dir| {
            let manifest: FolderManifest = read_json(&dir.join(MANIFEST))?;
            if manifest.command != COMMAND {
                return Err(ShardError::Merge(format!(
                    "{} was written by `{}`, not by `{COMMAND}`",
                    dir.display(),
                    manifest.command
                ))
                .into());
            }
            Ok((dir.as_path(), manifest))
        })
        .collect::<Result<Vec<_>, DescriptorError>>()?;
    check_complete(manifests.iter().map(|(dir, m)| (m.shard, *dir)))?;
    let (first_dir, first) = &manifests[0];
    for (dir, m) in &manifests[1..] {
        let differs = [
            ("featleak version", m.tool != first.tool),
            ("extractor", m.extractor != first.extractor),
            ("seed", m.seed != first.seed),
            ("images folder", m.images_root != first.images_root),
        ]
        .into_iter()
        .filter(|(_, differs)| *differs)
        .map(|(what, _)| what)
        .collect::<Vec<_>>();
        if !differs.is_empty() {
            return Err(ShardError::Merge(format!(
                "{} and {} are shards of different runs ({} differ)",
                first_dir.display(),
                dir.display(),
                differs.join(", ")
            ))
            .into());
        }
    }
    prepare_out(out)?;
    let mut seen = HashSet::new();
    for (dir, m) in &manifests {
        for record in &m.images {
            if !seen.insert(&record.features) {
                return Err(ShardError::Merge(format!(
                    "{} is in two shards (again in {})",
                    record.features,
                    dir.display()
                ))
                .into());
            }
            let from = dir.join(&record.features);
            let bytes = std::fs::read(&from).map_err(FileError::io("read", &from))?;
            write_bytes(&out.join(&record.features), &bytes)?;
        }
    }
    let shard0 = manifests
        .iter()
        .find(|(_, m)| m.shard.is_some_and(|s| s.index == 0))
        .map(|(_, m)| m)
        .expect("a complete set has shard 0");
    let mut images: Vec<_> = manifests
        .iter()
        .flat_map(|(_, m)| m.images.clone())
        .collect();
    let mut failures: Vec<_> = manifests
        .iter()
        .flat_map(|(_, m)| m.failures.clone())
        .collect();
    // The order of `find_images`: sorted by path, component by component.
    images.sort_by(|a, b| Path::new(&a.image).cmp(Path::new(&b.image)));
    failures.sort_by(|a, b| Path::new(&a.image).cmp(Path::new(&b.image)));
    let merged = FolderManifest {
        created_unix: manifests
            .iter()
            .map(|(_, m)| m.created_unix)
            .max()
            .unwrap_or(0),
        threads: shard0.threads,
        shard: None,
        images,
        failures,
        ..first.clone()
    };
    write_json(&out.join(MANIFEST), &merged)?;
    Ok(merged)
}
