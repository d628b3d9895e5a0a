//! `featleak match-eval`: matching accuracy of descriptors on homography pairs.

use crate::manifest::{Tool, unix_time};
use crate::progress;
use anyhow::{Context, anyhow};
use clap::Args;
use featleak_datasets::atomic::write_bytes_atomic;
use featleak_datasets::files::write_json;
use featleak_datasets::find_pairs;
use featleak_descriptors::{Extractor, ExtractorConfig, ExtractorInfo, FeatureSet, extract_file};
use featleak_eval::homography::RansacConfig;
use featleak_eval::pair_eval::{HOMOGRAPHY_THRESHOLDS, MMA_THRESHOLDS};
use featleak_eval::plot::{Axes, Series, line_plot_svg};
use featleak_eval::table::{Table, fmt_num};
use featleak_eval::{MatchConfig, PairScores, Summary, score_pair, summarize};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Clone, Debug)]
pub struct MatchEvalArgs {
    /// Descriptors to compare, comma separated: sift, freak.
    #[arg(long, value_delimiter = ',', default_value = "sift")]
    pub descriptor: Vec<String>,
    /// Keypoint detector: dog, harris or fast (the same keypoints for every descriptor).
    #[arg(long, default_value = "dog")]
    pub detector: String,
    /// Keep at most this many keypoints per image, strongest first (0: all).
    #[arg(long, default_value_t = featleak_descriptors::extractor::DEFAULT_MAX_KEYPOINTS)]
    pub max_keypoints: usize,
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

/// One descriptor's results.
#[derive(Serialize)]
struct DescriptorResults {
    descriptor: String,
    extractor: ExtractorInfo,
    summary: Summary,
    pairs: Vec<PairScores>,
}

#[derive(Serialize)]
struct Results<'a> {
    tool: Tool,
    command: &'static str,
    created_unix: u64,
    seed: u64,
    pairs_root: String,
    matching: MatchConfig,
    ransac: RansacConfig,
    mma_thresholds: &'a [f64],
    homography_thresholds: &'a [f64],
    results: &'a [DescriptorResults],
}

pub fn run(args: &MatchEvalArgs) -> anyhow::Result<ExitCode> {
    let summary = evaluate(args)?;
    println!("{}", summary.to_markdown());
    println!("results in {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Scores every descriptor, writes the outputs into `args.out` and returns the summary table.
pub fn evaluate(args: &MatchEvalArgs) -> anyhow::Result<Table> {
    let pairs = find_pairs(&args.pairs)?;
    let matching = MatchConfig {
        mutual: !args.one_way,
        ratio: args.ratio,
    };
    let ransac = RansacConfig::default();
    let mut images: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|p| [p.image_a.clone(), p.image_b.clone()])
        .collect();
    images.sort();
    images.dedup();
    featleak_descriptors::cv::set_opencv_threads(1)?;

    let mut all = Vec::new();
    for name in &args.descriptor {
        let mut config = ExtractorConfig::named(name, &args.detector)?;
        config.max_keypoints = args.max_keypoints;
        if let featleak_descriptors::DescriptorConfig::Sosnet(s) = &mut config.descriptor {
            s.weights = args.weights.clone();
        }

        let extractor = config.build()?;
        let bar = progress::bar(images.len() as u64, name);
        let features: BTreeMap<PathBuf, FeatureSet> = images
            .par_iter()
            .map(|img| {
                let f = extract_file(&extractor, img).map(|f| (img.clone(), f));
                bar.inc(1);
                f
            })
            .collect::<Result<_, _>>()?;
        bar.finish_and_clear();
        let scores = pairs
            .par_iter()
            .map(|p| {
                score_pair(
                    &p.name,
                    &features[&p.image_a],
                    &features[&p.image_b],
                    &p.homography,
                    &matching,
                    &ransac,
                )
                .with_context(|| format!("pair {}", p.name))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        all.push(DescriptorResults {
            descriptor: config.name(),
            extractor: extractor.info(),
            summary: summarize(&scores),
            pairs: scores,
        });
    }
    write_outputs(args, &all, matching, ransac)?;
    Ok(summary_table(&all))
}

fn summary_table(all: &[DescriptorResults]) -> Table {
    let mut t = Table::new(
        ["descriptor", "pairs", "keypoints", "matches"]
            .into_iter()
            .map(String::from)
            .chain([1, 3, 5, 10].map(|t| format!("MMA@{t}")))
            .chain(HOMOGRAPHY_THRESHOLDS.map(|t| format!("H-acc@{t}"))),
    );
    for r in all {
        let s = &r.summary;
        let mut row = vec![
            r.descriptor.clone(),
            s.pairs.to_string(),
            fmt_num(Some(s.mean_keypoints), 0),
            fmt_num(Some(s.mean_matches), 0),
        ];
        row.extend([0, 2, 4, 9].map(|i| fmt_num(Some(s.mma[i]), 3)));
        row.extend(s.homography_accuracy.iter().map(|v| fmt_num(Some(*v), 3)));
        t.push(row);
    }
    t
}

fn pair_table(all: &[DescriptorResults]) -> Table {
    let mut t = Table::new(
        [
            "descriptor",
            "pair",
            "keypoints_a",
            "keypoints_b",
            "matches",
        ]
        .into_iter()
        .map(String::from)
        .chain(MMA_THRESHOLDS.map(|t| format!("mma@{t}")))
        .chain(["corner_error".to_string()]),
    );
    for r in all {
        for p in &r.pairs {
            let mut row = vec![
                r.descriptor.clone(),
                p.pair.clone(),
                p.keypoints_a.to_string(),
                p.keypoints_b.to_string(),
                p.matches.to_string(),
            ];
            row.extend(p.mma.iter().map(|v| fmt_num(Some(*v), 4)));
            row.push(fmt_num(p.corner_error, 2));
            t.push(row);
        }
    }
    t
}

fn write_outputs(
    args: &MatchEvalArgs,
    all: &[DescriptorResults],
    matching: MatchConfig,
    ransac: RansacConfig,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let results = Results {
        tool: Tool::current(),
        command: "match-eval",
        created_unix: unix_time(),
        seed: args.seed,
        pairs_root: args.pairs.display().to_string(),
        matching,
        ransac,
        mma_thresholds: &MMA_THRESHOLDS,
        homography_thresholds: &HOMOGRAPHY_THRESHOLDS,
        results: all,
    };
    write_json(&args.out.join("results.json"), &results)?;
    let write = |name: &str, text: String| {
        let path = args.out.join(name);
        write_bytes_atomic(&path, text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))
    };
    write("results.csv", pair_table(all).to_csv())?;
    write(
        "results.md",
        format!(
            "# Matching accuracy\n\nPairs: `{}`; matching: {}; RANSAC threshold {} px.\n\n{}\n## Per pair\n\n{}",
            args.pairs.display(),
            if matching.mutual {
                "mutual nearest neighbours"
            } else {
                "nearest neighbour"
            },
            ransac.threshold,
            summary_table(all).to_markdown(),
            pair_table(all).to_markdown()
        ),
    )?;
    let series: Vec<Series> = all
        .iter()
        .map(|r| Series {
            name: r.descriptor.clone(),
            points: MMA_THRESHOLDS
                .iter()
                .copied()
                .zip(r.summary.mma.iter().copied())
                .collect(),
        })
        .collect();
    let axes = Axes {
        title: "Mean matching accuracy",
        x_label: "threshold [px]",
        y_label: "MMA",
        x: 1.0..10.0,
        y: 0.0..1.0,
    };
    write(
        "mma.svg",
        line_plot_svg(&axes, &series).map_err(|e| anyhow!("cannot draw mma.svg: {e}"))?,
    )
}
