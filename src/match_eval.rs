//! `featleak match-eval`: matching accuracy of descriptors on homography pairs.

use crate::choices;
use crate::progress;
use clap::Args;
use featleak_datasets::GrayConversion;
use featleak_descriptors::{DescriptorConfig, ExtractorConfig};
use featleak_eval::MatchConfig;
use featleak_eval::match_eval::{self, MatchEval};
use featleak_eval::table::Table;
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

#[derive(Args, Clone, Debug)]
pub struct MatchEvalArgs {
    /// Descriptors to compare, comma separated: sift, freak, sosnet, xfeat, disk, aliked.
    #[arg(long, value_delimiter = ',', default_value = "sift", value_parser = choices::descriptor())]
    pub descriptor: Vec<String>,
    /// Keypoint detector: dog, harris, fast, xfeat, disk or aliked (the same keypoints for every
    /// descriptor). Default: dog, and their own keypoints for xfeat, disk and aliked, whose
    /// detector and descriptor are one network.
    #[arg(long, value_parser = choices::detector())]
    pub detector: Option<String>,
    /// Keep at most this many keypoints per image, strongest first (0: all).
    #[arg(long, default_value_t = featleak_descriptors::extractor::DEFAULT_MAX_KEYPOINTS)]
    pub max_keypoints: usize,
    /// How each image becomes grey: cvtcolor (decode to RGB, then OpenCV's cvtColor),
    /// imread-grayscale (OpenCV's IMREAD_GRAYSCALE on the file, as hloc reads images) or pil
    /// (decode to RGB, then Pillow's convert('L')).
    #[arg(long, default_value = "cvtcolor", value_parser = choices::gray())]
    pub gray: String,
    /// Folder of HPatches (1.ppm … H_1_k) or Oxford (img1.ppm … H1tokp) sequences.
    #[arg(long)]
    pub pairs: PathBuf,
    /// Output folder for results.json, results.csv, results.md and mma.svg.
    #[arg(long)]
    pub out: PathBuf,
    /// SOSNet weights (a SOSNet32x32 state_dict, .pth or .safetensors) when sosnet is among the
    /// descriptors; default: the bundled weights.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Lowe's ratio test threshold (off by default).
    #[arg(long)]
    pub ratio: Option<f32>,
    /// Nearest neighbours one way instead of mutual nearest neighbours.
    #[arg(long)]
    pub one_way: bool,
    /// Seed recorded in the results (matching and OpenCV's RANSAC are deterministic).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

pub fn run(args: &MatchEvalArgs) -> anyhow::Result<ExitCode> {
    let summary = evaluate(args)?;
    println!("{}", summary.to_markdown());
    println!("results in {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Scores every descriptor, writes the outputs into `args.out` and returns the summary table.
pub fn evaluate(args: &MatchEvalArgs) -> anyhow::Result<Table> {
    let extractors = args
        .descriptor
        .iter()
        .map(|name| {
            let mut config = ExtractorConfig::named_or_dog(name, args.detector.as_deref())?;
            config.max_keypoints = args.max_keypoints;
            config.gray = GrayConversion::parse(&args.gray).map_err(anyhow::Error::msg)?;
            if let DescriptorConfig::Sosnet(s) = &mut config.descriptor {
                s.weights = args.weights.clone();
            }
            Ok(config)
        })
        .collect::<anyhow::Result<_>>()?;
    let job = MatchEval {
        extractors,
        pairs: args.pairs.clone(),
        out: args.out.clone(),
        matching: MatchConfig {
            mutual: !args.one_way,
            ratio: args.ratio,
        },
        seed: args.seed,
    };
    let bars: Mutex<Vec<ProgressBar>> = Mutex::new(Vec::new());
    let stage = |name: &str, total: usize| -> featleak_datasets::Tick {
        let mut bars = bars.lock().expect("not poisoned");
        bars.drain(..).for_each(|b| b.finish_and_clear());
        let bar = progress::bar(total as u64, name);
        bars.push(bar.clone());
        Box::new(move || bar.inc(1))
    };
    let outcome = match_eval::evaluate(&job, &stage);
    for bar in bars.lock().expect("not poisoned").drain(..) {
        bar.finish_and_clear();
    }
    let (table, skipped) = outcome?;
    for s in &skipped {
        eprintln!("warning: left out {s}");
    }
    Ok(table)
}
