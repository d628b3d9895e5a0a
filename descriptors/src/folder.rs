//! A folder of images to a folder of `.npz` feature files mirroring its tree, with
//! `manifest.json` (extractor, per-image keypoint counts, failures). A rerun with the same
//! extractor reuses the features an interrupted run already wrote. With a [`Shard`] only part of
//! the sorted image list is extracted; [`crate::merge`] joins the parts.

use crate::{DescriptorError, Extractor, ExtractorConfig, ExtractorInfo, extract_file};
use crate::{read_features, write_features};
use burn::prelude::Device;
use featleak_datasets::FileError;
use featleak_datasets::files::{read_json, write_json};
use featleak_datasets::find_images;
use featleak_datasets::manifest::{Tool, unix_time};
use featleak_datasets::shard::{self, Shard};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// What to extract, from where, to where.
#[derive(Clone, Debug)]
pub struct ExtractFolder {
    /// The extractor.
    pub extractor: ExtractorConfig,
    /// Folder of images, searched recursively.
    pub images: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// Worker threads.
    pub threads: usize,
    /// Seed recorded in the manifest (extraction itself is deterministic).
    pub seed: u64,
    /// Write feature files for images with no keypoints instead of reporting them as failures.
    pub allow_empty: bool,
    /// Recompute every image even when the output folder already holds its features.
    pub overwrite: bool,
    /// Extract only this part of the sorted image list (`None`: all of it).
    pub shard: Option<Shard>,
    /// Where the learned descriptors' networks run ([`crate::device`]); not part of the
    /// features' identity, so a run resumes on another device.
    pub device: Device,
}

/// Most worker threads an extraction starts.
pub const MAX_THREADS: usize = 256;

/// One image of a run.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ImageRecord {
    /// The image, relative to the images folder.
    pub image: String,
    /// Its feature file, relative to the output folder.
    pub features: String,
    /// Keypoints found.
    pub keypoints: usize,
}

/// One image that failed, with the reason.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Failure {
    /// The image, relative to the images folder.
    pub image: String,
    /// Why.
    pub error: String,
}

/// `manifest.json` of a features folder.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct FolderManifest {
    /// The tool that wrote it.
    pub tool: Tool,
    /// `"extract"`.
    pub command: String,
    /// When the run ended (seconds since the Unix epoch).
    pub created_unix: u64,
    /// The seed given.
    pub seed: u64,
    /// Worker threads used.
    pub threads: usize,
    /// The images folder, as given.
    pub images_root: String,
    /// The extractor.
    pub extractor: ExtractorInfo,
    /// The part of the image list this folder holds; absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// Images with features, in the order of the sorted image list.
    pub images: Vec<ImageRecord>,
    /// Images without, in the same order.
    pub failures: Vec<Failure>,
}

/// The command recorded in a features folder's manifest.
pub const COMMAND: &str = "extract";

/// A features folder's manifest file name.
pub const MANIFEST: &str = "manifest.json";

/// What an earlier run left in the output folder (only the fields needed to resume).
#[derive(Deserialize)]
struct PreviousManifest {
    extractor: ExtractorInfo,
    #[serde(default)]
    shard: Option<Shard>,
}

/// Outcome of extracting a folder.
#[derive(Clone, Debug)]
pub struct Summary {
    /// Images with features.
    pub images: Vec<ImageRecord>,
    /// Images without.
    pub failures: Vec<Failure>,
    /// Images whose features an earlier run had written.
    pub reused: usize,
}

/// Hears how extraction goes; called from worker threads.
pub trait FolderObserver: Sync {
    /// `total` images are about to be extracted.
    fn start(&self, _total: usize) {}
    /// One image is done.
    fn done(&self) {}
    /// One image failed (the reason names it).
    fn failed(&self, _reason: &str) {}
}

impl FolderObserver for () {}

fn folder_error(folder: &Path, problem: String) -> DescriptorError {
    DescriptorError::Folder {
        folder: folder.to_path_buf(),
        problem,
    }
}

/// The `.npz` path of every image, mirroring the tree; two images mapping to one file is an error.
fn output_paths(
    root: &Path,
    images: &[PathBuf],
    out: &Path,
) -> Result<Vec<PathBuf>, DescriptorError> {
    let mut seen: HashMap<PathBuf, &Path> = HashMap::new();
    let mut outs = Vec::with_capacity(images.len());
    for img in images {
        let rel = img
            .strip_prefix(root)
            .expect("found below root")
            .with_extension("npz");
        if let Some(other) = seen.insert(rel.clone(), img) {
            return Err(folder_error(
                out,
                format!(
                    "{} and {} would both be written to {}; rename one of them",
                    other.display(),
                    img.display(),
                    rel.display()
                ),
            ));
        }
        outs.push(out.join(rel));
    }
    Ok(outs)
}

/// Extracts every image below `job.images` into `job.out`.
pub fn extract_folder(
    job: &ExtractFolder,
    observer: &dyn FolderObserver,
) -> Result<Summary, DescriptorError> {
    let config = job.extractor.build_on(&job.device)?;
    let info = config.info();
    let images = find_images(&job.images).map_err(FileError::io("list images in", &job.images))?;
    if images.is_empty() {
        return Err(DescriptorError::NoImages(job.images.clone()));
    }
    let outs = output_paths(&job.images, &images, &job.out)?;
    let (images, outs): (Vec<PathBuf>, Vec<PathBuf>) =
        shard::select(job.shard, images.into_iter().zip(outs))
            .into_iter()
            .map(|(_, pair)| pair)
            .unzip();
    std::fs::create_dir_all(&job.out).map_err(FileError::io("create output folder", &job.out))?;
    let manifest_path = job.out.join(MANIFEST);
    let resume = !job.overwrite && manifest_path.exists();
    if resume {
        let previous: PreviousManifest = read_json(&manifest_path)?;
        if previous.extractor != info {
            return Err(folder_error(
                &job.out,
                format!(
                    "holds features of another extractor ({}; this run: {}); use another --out or --overwrite",
                    previous.extractor.name,
                    differing_settings(&previous.extractor, &info)
                ),
            ));
        }
        if previous.shard != job.shard {
            let name = |s: Option<Shard>| {
                s.map_or("the whole image list".into(), |s| format!("shard {s}"))
            };
            return Err(folder_error(
                &job.out,
                format!(
                    "holds features of {} (this run: {}); use another --out or --overwrite",
                    name(previous.shard),
                    name(job.shard)
                ),
            ));
        }
    }
    // Fail early, before any work, when the folder is not writable.
    let probe = job.out.join(".featleak-write-test");
    featleak_datasets::files::write_bytes(&probe, b"")?;
    std::fs::remove_file(&probe).ok();

    if job.threads > MAX_THREADS {
        return Err(folder_error(
            &job.out,
            format!(
                "--threads {} is more than {MAX_THREADS}; give at most a few per core",
                job.threads
            ),
        ));
    }
    let threads = job.threads.max(1);
    if threads > 1 {
        // One image per worker; OpenCV's own threads would only compete with ours.
        crate::cv::set_opencv_threads(1)?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| folder_error(&job.out, format!("cannot start {threads} threads: {e}")))?;
    observer.start(images.len());
    let results: Vec<(Result<usize, String>, bool)> = pool.install(|| {
        images
            .par_iter()
            .zip(&outs)
            .map(|(img, out)| {
                let reused = resume && out.exists();
                let r = if reused {
                    read_features(out)
                        .map(|f| f.len())
                        .map_err(|e| e.to_string())
                } else {
                    extract_one(&config, img, out, job.allow_empty).map_err(|e| e.to_string())
                };
                if let Err(e) = &r {
                    observer.failed(e);
                }
                observer.done();
                (r, reused)
            })
            .collect()
    });

    let rel = |p: &Path, root: &Path| p.strip_prefix(root).unwrap_or(p).display().to_string();
    let mut summary = Summary {
        images: Vec::new(),
        failures: Vec::new(),
        reused: 0,
    };
    for ((img, out), (r, reused)) in images.iter().zip(&outs).zip(results) {
        match r {
            Ok(keypoints) => {
                summary.reused += reused as usize;
                summary.images.push(ImageRecord {
                    image: rel(img, &job.images),
                    features: rel(out, &job.out),
                    keypoints,
                })
            }
            Err(error) => summary.failures.push(Failure {
                image: rel(img, &job.images),
                error,
            }),
        }
    }
    let manifest = FolderManifest {
        tool: Tool::current(),
        command: COMMAND.into(),
        created_unix: unix_time(),
        seed: job.seed,
        threads,
        images_root: job.images.display().to_string(),
        extractor: info,
        shard: job.shard,
        images: summary.images.clone(),
        failures: summary.failures.clone(),
    };
    write_json(&manifest_path, &manifest)?;
    Ok(summary)
}

/// `ours`' name, followed by the settings whose values differ from `theirs` when the names are
/// the same (`sift+dog with gray = imread-grayscale, was cvtcolor`).
fn differing_settings(theirs: &ExtractorInfo, ours: &ExtractorInfo) -> String {
    if theirs.name != ours.name {
        return ours.name.clone();
    }
    let none = serde_json::Value::Null;
    let keys: std::collections::BTreeSet<&String> = [&theirs.config, &ours.config]
        .into_iter()
        .filter_map(|c| c.as_object())
        .flat_map(|o| o.keys())
        .collect();
    let differing: Vec<String> = keys
        .into_iter()
        .filter_map(|k| {
            let (was, now) = (
                theirs.config.get(k).unwrap_or(&none),
                ours.config.get(k).unwrap_or(&none),
            );
            (was != now).then(|| format!("{k} = {now}, was {was}"))
        })
        .collect();
    format!("{} with {}", ours.name, differing.join(", "))
}

/// Extracts one image and writes its feature file; the error names the image.
fn extract_one(
    config: &crate::FeatureExtractor,
    img: &Path,
    out: &Path,
    allow_empty: bool,
) -> Result<usize, DescriptorError> {
    let features = extract_file(config, img)?;
    if features.is_empty() && !allow_empty {
        return Err(DescriptorError::NoKeypoints {
            path: img.to_path_buf(),
        });
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(FileError::io("create", parent))?;
    }
    write_features(out, &features)?;
    Ok(features.len())
}
