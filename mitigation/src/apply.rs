//! `featleak mitigate apply`: mitigated copies of features (a folder of `.npz` files, an hloc
//! `.h5` or a COLMAP `.db`) as a folder of `.npz` files (only the revealed keypoints of each,
//! and/or their descriptors defended), with `manifest.json`.
//!
//! A lifted file (`lift-random`, `lift-adversarial`) stores each subspace's point nearest the
//! origin as its descriptors and the subspaces' orthonormal bases beside it, in
//! `NAME.subspaces.npy` (N×m×D float32).

use crate::defences::Defence;
use crate::sweep::item_seed;
use crate::{Hints, MitigationError, Strategy};
use featleak_datasets::files::{write_bytes, write_json};
use featleak_datasets::find_files;
use featleak_datasets::manifest::{Tool, unix_time};
use featleak_descriptors::store::{self, Format};
use featleak_descriptors::{FeatureSet, read_features, write_features};
use ndarray_npy::WriteNpyExt;
use rayon::prelude::*;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// What to mitigate, how, and where to.
#[derive(Clone, Debug)]
pub struct ApplyConfig {
    /// The keypoint subset (not `leakage`: it needs the attacker and the images, see the
    /// sweep); `None` reveals every keypoint.
    pub strategy: Option<Strategy>,
    /// Fraction of each file's keypoints revealed (0–1) by `strategy`.
    pub keep: f32,
    /// The descriptor-level defence applied to the revealed keypoints, fitted on every input
    /// file (the defender's own features).
    pub defence: Option<Defence>,
    /// The features: a folder of `.npz` files (searched recursively), an hloc `.h5` or a COLMAP
    /// `.db`.
    pub features: PathBuf,
    /// Output folder (mirrors the input tree); never the input folder.
    pub out: PathBuf,
    /// Seed of the random choices (each file's seed also depends on its relative path).
    pub seed: u64,
}

/// One mitigated file.
#[derive(Clone, Debug, Serialize)]
pub struct FileRecord {
    /// The file, relative to the input folder.
    pub features: String,
    /// Its keypoints.
    pub keypoints: usize,
    /// Those revealed.
    pub revealed: usize,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: Tool,
    command: &'static str,
    created_unix: u64,
    seed: u64,
    strategy: Option<Strategy>,
    keep: f32,
    defence: Option<Defence>,
    source: String,
    files: &'a [FileRecord],
}

/// Every image's features in the input: a folder of `.npz` files (searched recursively), an
/// hloc `.h5` or a COLMAP `.db`; each with where it came from (for messages) and its `.npz`
/// path relative to the output folder.
#[allow(clippy::type_complexity)]
fn read_input(
    features: &Path,
) -> Result<(Vec<(PathBuf, PathBuf)>, Vec<FeatureSet>), MitigationError> {
    if Format::of(features)? != Format::NpzFolder {
        let reader = store::open(features)?;
        let names = reader.names()?;
        if names.is_empty() {
            return Err(MitigationError::Folder {
                folder: features.to_path_buf(),
                problem: "holds no images".into(),
            });
        }
        let all = names
            .iter()
            .map(|n| reader.read(n))
            .collect::<Result<Vec<_>, _>>()?;
        let files = names
            .iter()
            .map(|n| (features.join(n), Path::new(n).with_extension("npz")))
            .collect();
        return Ok((files, all));
    }
    let files = find_files(features, |p| p.extension().is_some_and(|e| e == "npz")).map_err(
        featleak_datasets::FileError::io("list feature files in", features),
    )?;
    if files.is_empty() {
        return Err(MitigationError::Folder {
            folder: features.to_path_buf(),
            problem: "no .npz feature files".into(),
        });
    }
    let all = files
        .par_iter()
        .map(|file| read_features(file).map_err(MitigationError::from))
        .collect::<Result<Vec<FeatureSet>, _>>()?;
    let files = files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(features).expect("below root").to_path_buf();
            (f, rel)
        })
        .collect();
    Ok((files, all))
}

/// Writes the mitigated copies and `manifest.json`; returns one record per file.
pub fn apply_folder(job: &ApplyConfig) -> Result<Vec<FileRecord>, MitigationError> {
    let invalid = |problem: String| MitigationError::Config {
        file: None,
        problem,
    };
    if job.strategy.is_none() && job.defence.is_none() {
        return Err(invalid(
            "nothing to apply: give a keypoint subset (--strategy, --keep), a defence \
             (--defence, --strength), or both"
                .into(),
        ));
    }
    if job.strategy.is_some_and(|s| s.needs_leakage()) {
        return Err(invalid(
            "the leakage strategy ranks keypoints with the attacker on the images themselves; \
             use `featleak mitigate sweep`"
                .into(),
        ));
    }
    if !(0.0..=1.0).contains(&job.keep) {
        return Err(invalid(format!(
            "--keep must be between 0 and 1 (got {})",
            job.keep
        )));
    }
    let same = |a: &PathBuf, b: &PathBuf| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same(&job.features, &job.out) {
        return Err(MitigationError::Folder {
            folder: job.out.clone(),
            problem: "is the input folder: mitigated copies would overwrite the features; \
                      choose another --out"
                .into(),
        });
    }
    if Format::of(&job.out)? != Format::NpzFolder {
        return Err(MitigationError::Folder {
            folder: job.out.clone(),
            problem: "mitigate apply writes a folder of .npz files; give a folder as --out and \
                      `featleak convert` it to .h5 or .db"
                .into(),
        });
    }
    let (files, all) = read_input(&job.features)?;
    let fitted = match job.defence {
        Some(d) => Some(d.fit(&all.iter().collect::<Vec<_>>(), job.seed)?),
        None => None,
    };
    let records = files
        .par_iter()
        .zip(&all)
        .map(|((file, rel), features)| {
            let seed = item_seed(job.seed, &rel.to_string_lossy());
            let in_file =
                |e: MitigationError| MitigationError::Defence(format!("{}: {e}", file.display()));
            let revealed = match job.strategy {
                Some(s) => s
                    .apply(features, job.keep, Hints::seed(seed))
                    .map_err(|e| MitigationError::Strategy(format!("{}: {e}", file.display())))?,
                None => features.clone(),
            };
            let out = job.out.join(rel);
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(featleak_datasets::FileError::io("create", parent))?;
            }
            match &fitted {
                Some(f) => {
                    let defended = f.apply(&revealed, seed).map_err(in_file)?;
                    write_features(&out, &defended.features)?;
                    if let Some(s) = &defended.subspaces {
                        let npy = out.with_extension("subspaces.npy");
                        let mut bytes = Vec::new();
                        s.bases
                            .write_npy(&mut bytes)
                            .map_err(|e| in_file(MitigationError::Defence(e.to_string())))?;
                        write_bytes(&npy, &bytes)?;
                    }
                }
                None => write_features(&out, &revealed)?,
            }
            Ok(FileRecord {
                features: rel.display().to_string(),
                keypoints: features.len(),
                revealed: revealed.len(),
            })
        })
        .collect::<Result<Vec<_>, MitigationError>>()?;
    let manifest = Manifest {
        tool: Tool::current(),
        command: "mitigate apply",
        created_unix: unix_time(),
        seed: job.seed,
        strategy: job.strategy,
        keep: job.keep,
        defence: job.defence,
        source: job.features.display().to_string(),
        files: &records,
    };
    write_json(&job.out.join("manifest.json"), &manifest)?;
    Ok(records)
}
