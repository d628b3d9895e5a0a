//! `featleak extract`: a folder of images to a folder of `.npz` feature files, or to an hloc
//! `.h5` or COLMAP `.db` (extracted into a folder `<out>.extract` first, then converted).

use crate::choices;
use crate::progress;
use anyhow::bail;
use clap::Args;
use featleak_datasets::GrayConversion;
use featleak_descriptors::folder::{self, ExtractFolder, FolderObserver, Summary};
use featleak_descriptors::store::{self, Format};
use featleak_descriptors::{ComputeDevice, ExtractorConfig};
use indicatif::ProgressBar;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Clone, Debug)]
pub struct ExtractArgs {
    /// Descriptor: sift, freak, sosnet, xfeat, disk or aliked (the learned ones use the bundled
    /// weights unless --weights).
    #[arg(long, default_value = "sift", value_parser = choices::descriptor())]
    pub descriptor: String,
    /// Keypoint detector: dog (OpenCV SIFT's), harris, fast, xfeat, disk or aliked (the learned
    /// extractors' keypoints; the only one, and the default, for their own descriptor). Default:
    /// dog.
    #[arg(long, value_parser = choices::detector())]
    pub detector: Option<String>,
    /// Keep at most this many keypoints per image, strongest first (0: all).
    #[arg(long, default_value_t = featleak_descriptors::extractor::DEFAULT_MAX_KEYPOINTS)]
    pub max_keypoints: usize,
    /// How each image becomes grey: cvtcolor (decode to RGB, then OpenCV's cvtColor),
    /// imread-grayscale (OpenCV's IMREAD_GRAYSCALE on the file, as hloc reads images) or pil
    /// (decode to RGB, then Pillow's convert('L')). Recorded in the manifest's extractor config.
    #[arg(long, default_value = "cvtcolor", value_parser = choices::gray())]
    pub gray: String,
    /// Apply RootSIFT to SIFT descriptors.
    #[arg(long)]
    pub root_sift: bool,
    /// Weights of a learned descriptor: for sosnet a SOSNet32x32 state_dict (PyTorch .pth such as
    /// the official sosnet_32x32_liberty.pth, or .safetensors from `featleak train-descriptor`),
    /// for xfeat an XFeatModel state_dict (the official xfeat.pt), for disk a DISK state_dict (the
    /// official depth-save.pth), for aliked an ALIKED-N16 state_dict (the official
    /// aliked-n16.pth); default: the bundled weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Folder of images, searched recursively (jpg, jpeg, png, ppm, pgm, bmp, webp).
    #[arg(long)]
    pub images: PathBuf,
    /// Output folder: mirrors the image tree with one .npz per image, plus manifest.json. Or
    /// FILE.h5 (hloc features.h5) or FILE.db (COLMAP database.db): extracted into the folder
    /// FILE.h5.extract (kept when an image failed, resumable), then converted.
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
    #[command(flatten)]
    pub shard: crate::merge::ShardArg,
    /// Where the learned descriptors' networks run (sosnet, xfeat, disk, aliked): cpu, or wgpu
    /// (a GPU; needs a build with `--features wgpu`). SIFT and FREAK run on the CPU.
    #[arg(long, default_value_t = ComputeDevice::Cpu)]
    pub device: ComputeDevice,
}

impl ExtractArgs {
    fn extractor(&self) -> anyhow::Result<ExtractorConfig> {
        let mut config = ExtractorConfig::named_or_dog(&self.descriptor, self.detector.as_deref())?;
        config.max_keypoints = self.max_keypoints;
        config.gray = GrayConversion::parse(&self.gray).map_err(anyhow::Error::msg)?;
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
            config.descriptor.set_weights(w.clone())?;
        }
        Ok(config)
    }
}

/// The folder an `.h5` or `.db` output is extracted into before it is converted.
fn staging_folder(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".extract");
    PathBuf::from(name)
}

pub fn run(args: &ExtractArgs) -> anyhow::Result<ExitCode> {
    if Format::of(&args.out)? != Format::NpzFolder {
        return extract_to_file(args);
    }
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

/// `extract --out FILE.h5|FILE.db`: extracts into the staging folder, converts it, and removes
/// it unless an image failed (its manifest lists the failures).
fn extract_to_file(args: &ExtractArgs) -> anyhow::Result<ExitCode> {
    if args.shard.resolve()?.is_some() {
        bail!(
            "--shard writes folders: extract the shards into folders, `featleak merge` them, then \
             `featleak convert` the merged folder to {}",
            args.out.display()
        );
    }
    store::check_destination(&args.out)?;
    let staging = staging_folder(&args.out);
    let summary = extract_folder(&ExtractArgs {
        out: staging.clone(),
        ..args.clone()
    })?;
    let n = store::convert(&staging, &args.out)?;
    println!(
        "extracted {n} image(s) into {} ({} reused from an earlier run); {} failed",
        args.out.display(),
        summary.reused,
        summary.failures.len()
    );
    if summary.failures.is_empty() {
        std::fs::remove_dir_all(&staging)?;
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} image(s) failed (listed above and in {}/manifest.json)",
            summary.failures.len(),
            staging.display()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// Progress bar and failure lines of `extract`.
pub(crate) struct Bar(pub(crate) ProgressBar);

impl FolderObserver for Bar {
    fn start(&self, total: usize) {
        self.0.reset();
        self.0.set_length(total as u64);
    }
    fn done(&self) {
        self.0.inc(1);
    }
    fn failed(&self, reason: &str) {
        self.0.suspend(|| eprintln!("skipped {reason}"));
    }
}

/// Extracts every image below `args.images` into `args.out`, reusing features an interrupted run
/// with the same extractor already wrote.
pub fn extract_folder(args: &ExtractArgs) -> anyhow::Result<Summary> {
    let (device, description) = args.device.open()?;
    if args.device != ComputeDevice::Cpu {
        println!("device: {description}");
    }
    let job = ExtractFolder {
        extractor: args.extractor()?,
        images: args.images.clone(),
        out: args.out.clone(),
        threads: args
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
        seed: args.seed,
        allow_empty: args.allow_empty,
        overwrite: args.overwrite,
        shard: args.shard.resolve()?,
        device,
    };
    let bar = Bar(progress::bar(0, "extract"));
    let summary = folder::extract_folder(&job, &bar);
    bar.0.finish_and_clear();
    Ok(summary?)
}
