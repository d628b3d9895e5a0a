//! `featleak extract`: a folder of images to a folder of `.npz` feature files.

use crate::manifest::{Tool, unix_time};
use crate::progress;
use anyhow::{Context, bail};
use clap::Args;
use featleak_datasets::files::write_json;
use featleak_datasets::{IMAGE_EXTENSIONS, find_images};
use featleak_descriptors::{
    Extractor, ExtractorConfig, ExtractorInfo, FeatureExtractor, extract_file, read_features,
    write_features,
};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Clone, Debug)]
pub struct ExtractArgs {
    /// Descriptor: sift, freak or sosnet (sosnet uses featleak's bundled weights unless --weights).

    #[arg(long, default_value = "sift")]
    pub descriptor: String,
    /// Keypoint detector: dog (OpenCV SIFT's), harris or fast.
    #[arg(long, default_value = "dog")]
    pub detector: String,
    /// Keep at most this many keypoints per image, strongest first (0: all).
    #[arg(long, default_value_t = featleak_descriptors::extractor::DEFAULT_MAX_KEYPOINTS)]
    pub max_keypoints: usize,
    /// Apply RootSIFT to SIFT descriptors.
    #[arg(long)]
    pub root_sift: bool,
    /// SOSNet weights: a SOSNet32x32 state_dict (PyTorch .pth such as the official
    /// sosnet_32x32_liberty.pth, or .safetensors from `featleak train-descriptor`); default: the
    /// bundled weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Folder of images, searched recursively (jpg, jpeg, png, ppm, pgm, bmp, webp).
    #[arg(long)]
    pub images: PathBuf,
    /// Output folder: mirrors the image tree with one .npz per image, plus manifest.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed recorded in the manifest (extraction itself is deterministic).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Write feature files for images with no keypoints instead of reporting them as failures.
    #[arg(long)]
    pub allow_empty: bool,
    /// Recompute every image even when the output folder already holds its features.
    #[arg(long)]
    pub overwrite: bool,
}

/// One image of a run.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct ImageRecord {
    pub image: String,
    pub features: String,
    pub keypoints: usize,
}

/// One image that failed, with the reason.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Failure {
    pub image: String,
    pub error: String,
}

/// `manifest.json` of a features folder.
#[derive(Serialize)]
struct Manifest<'a> {
    tool: crate::manifest::Tool,
    command: &'static str,
    created_unix: u64,
    seed: u64,
    threads: usize,
    images_root: String,
    extractor: ExtractorInfo,
    images: &'a [ImageRecord],
    failures: &'a [Failure],
}

/// What an earlier run left in the output folder (only the fields needed to resume).
#[derive(Deserialize)]
struct PreviousManifest {
    extractor: ExtractorInfo,
}

/// Outcome of extracting a folder.
pub struct Summary {
    pub images: Vec<ImageRecord>,
    pub failures: Vec<Failure>,
    pub reused: usize,
}

impl ExtractArgs {
    fn extractor(&self) -> anyhow::Result<ExtractorConfig> {
        let mut config = ExtractorConfig::named(&self.descriptor, &self.detector)?;
        config.max_keypoints = self.max_keypoints;
        if self.root_sift {
            match &mut config.descriptor {
                featleak_descriptors::DescriptorConfig::Sift(s) => s.root_sift = true,
                other => bail!(
                    "--root-sift applies to sift descriptors, not {}",
                    other.name()
                ),
            }
        }
        if let Some(w) = &self.weights {
            match &mut config.descriptor {
                featleak_descriptors::DescriptorConfig::Sosnet(s) => s.weights = Some(w.clone()),
                other => bail!(
                    "--weights applies to sosnet descriptors, not {}",
                    other.name()
                ),
            }
        }
        Ok(config)
    }
}

pub fn run(args: &ExtractArgs) -> anyhow::Result<ExitCode> {
    let summary = extract_folder(args)?;
    let total: usize = summary.images.iter().map(|r| r.keypoints).sum();
    let n = summary.images.len();
    println!(
        "extracted {n} image(s) into {} ({} reused from an earlier run), {:.0} keypoints per image on average; {} failed",
        args.out.display(),
        summary.reused,
        total as f64 / n.max(1) as f64,
        summary.failures.len()
    );
    if summary.failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} image(s) failed (listed above and in {}/manifest.json)",
            summary.failures.len(),
            args.out.display()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// The `.npz` path of every image, mirroring the tree; two images mapping to one file is an error.
fn output_paths(root: &Path, images: &[PathBuf], out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut seen: HashMap<PathBuf, &Path> = HashMap::new();
    let mut outs = Vec::with_capacity(images.len());
    for img in images {
        let rel = img
            .strip_prefix(root)
            .expect("found below root")
            .with_extension("npz");
        if let Some(other) = seen.insert(rel.clone(), img) {
            bail!(
                "{} and {} would both be written to {}; rename one of them",
                other.display(),
                img.display(),
                rel.display()
            );
        }
        outs.push(out.join(rel));
    }
    Ok(outs)
}

/// Extracts every image below `args.images` into `args.out`, reusing features an interrupted run
/// with the same extractor already wrote.
pub fn extract_folder(args: &ExtractArgs) -> anyhow::Result<Summary> {
    let config = args.extractor()?.build()?;
    let info = config.info();
    let images = find_images(&args.images)
        .with_context(|| format!("cannot list images in {}", args.images.display()))?;
    if images.is_empty() {
        bail!(
            "no images found in {} (looked for {})",
            args.images.display(),
            IMAGE_EXTENSIONS.join(", ")
        );
    }
    let outs = output_paths(&args.images, &images, &args.out)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let manifest_path = args.out.join("manifest.json");
    let resume = !args.overwrite && manifest_path.exists();
    if resume {
        let text = std::fs::read_to_string(&manifest_path)
            .with_context(|| format!("cannot read {}", manifest_path.display()))?;
        let previous: PreviousManifest = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a featleak extract manifest",
                manifest_path.display()
            )
        })?;
        if previous.extractor != info {
            bail!(
                "{} holds features of another extractor ({}; this run: {}); use another --out or --overwrite",
                args.out.display(),
                previous.extractor.name,
                info.name
            );
        }
    }
    // Fail early, before any work, when the folder is not writable.
    featleak_datasets::atomic::write_bytes_atomic(&args.out.join(".featleak-write-test"), b"")
        .with_context(|| format!("output folder {} is not writable", args.out.display()))?;
    std::fs::remove_file(args.out.join(".featleak-write-test")).ok();

    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    if threads > 1 {
        // One image per worker; OpenCV's own threads would only compete with ours.
        featleak_descriptors::cv::set_opencv_threads(1)?;
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let bar = progress::bar(images.len() as u64, "extract");
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
                    extract_one(&config, img, out, args.allow_empty).map_err(|e| format!("{e:#}"))
                };
                if let Err(e) = &r {
                    bar.suspend(|| eprintln!("skipped {e}"));
                }
                bar.inc(1);
                (r, reused)
            })
            .collect()
    });
    bar.finish_and_clear();

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
                    image: rel(img, &args.images),
                    features: rel(out, &args.out),
                    keypoints,
                })
            }
            Err(error) => summary.failures.push(Failure {
                image: rel(img, &args.images),
                error,
            }),
        }
    }
    let manifest = Manifest {
        tool: Tool::current(),
        command: "extract",
        created_unix: unix_time(),
        seed: args.seed,
        threads,
        images_root: args.images.display().to_string(),
        extractor: info,
        images: &summary.images,
        failures: &summary.failures,
    };
    write_json(&manifest_path, &manifest)?;
    Ok(summary)
}

/// Extracts one image and writes its feature file; the error names the image.
fn extract_one(
    config: &FeatureExtractor,
    img: &Path,
    out: &Path,
    allow_empty: bool,
) -> anyhow::Result<usize> {
    let features = extract_file(config, img)?;
    if features.is_empty() && !allow_empty {
        bail!(
            "{}: no keypoints detected (pass --allow-empty to keep such images)",
            img.display()
        );
    }
    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("{}: cannot create {}", img.display(), parent.display()))?;
    }
    write_features(out, &features).with_context(|| img.display().to_string())?;
    Ok(features.len())
}
