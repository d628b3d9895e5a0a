//! Matching accuracy of descriptors on homography pairs (`featleak match-eval`): every
//! descriptor extracts features of every image of the pairs, matches them, and is scored by MMA
//! and homography accuracy. Writes `results.json` (with the full configuration),
//! `results.csv` (per pair), `results.md` and `mma.svg`.

use crate::EvalError;
use crate::homography::RansacConfig;
use crate::pair_eval::{HOMOGRAPHY_THRESHOLDS, MMA_THRESHOLDS};
use crate::plot::{Axes, Series, line_plot_svg};
use crate::table::{Table, fmt_num};
use crate::{MatchConfig, PairScores, Summary, score_pair, summarize};
use featleak_datasets::files::{write_bytes, write_json};
use featleak_datasets::manifest::{Tool, unix_time};
use featleak_datasets::{FoundPairs, find_pairs};
use featleak_descriptors::{Extractor, ExtractorConfig, ExtractorInfo, FeatureSet, extract_file};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// A matching evaluation.
#[derive(Clone, Debug)]
pub struct MatchEval {
    /// The extractors compared.
    pub extractors: Vec<ExtractorConfig>,
    /// Folder of HPatches (1.ppm … H_1_k) or Oxford (img1.ppm … H1tokp) sequences.
    pub pairs: PathBuf,
    /// Output folder.
    pub out: PathBuf,
    /// How descriptors are matched.
    pub matching: MatchConfig,
    /// Seed recorded in the results (matching and OpenCV's RANSAC are deterministic).
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
    skipped: &'a [String],
    results: &'a [DescriptorResults],
}

/// Scores every extractor, writes the outputs into `job.out` and returns the summary table and
/// what was found below `job.pairs` but makes no pair (also in `results.json`). `stage` is told
/// each extractor's name and image count and returns what to call per image.
pub fn evaluate(
    job: &MatchEval,
    stage: &dyn Fn(&str, usize) -> featleak_datasets::Tick,
) -> Result<(Table, Vec<String>), EvalError> {
    job.matching.validate()?;
    let FoundPairs { pairs, skipped } = find_pairs(&job.pairs)?;
    let ransac = RansacConfig::default();
    let mut images: Vec<PathBuf> = pairs
        .iter()
        .flat_map(|p| [p.image_a.clone(), p.image_b.clone()])
        .collect();
    images.sort();
    images.dedup();
    featleak_descriptors::cv::set_opencv_threads(1)?;

    let mut all = Vec::new();
    for config in &job.extractors {
        let extractor = config.build()?;
        let tick = stage(config.descriptor.name(), images.len());
        let features: BTreeMap<PathBuf, FeatureSet> = images
            .par_iter()
            .map(|img| {
                let f = extract_file(&extractor, img).map(|f| (img.clone(), f));
                tick();
                f
            })
            .collect::<Result<_, _>>()?;
        let scores = pairs
            .par_iter()
            .map(|p| {
                score_pair(
                    &p.name,
                    &features[&p.image_a],
                    &features[&p.image_b],
                    &p.homography,
                    &job.matching,
                    &ransac,
                )
                .map_err(|source| EvalError::Pair {
                    pair: p.name.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        all.push(DescriptorResults {
            descriptor: config.name(),
            extractor: extractor.info(),
            summary: summarize(&scores),
            pairs: scores,
        });
    }
    write_outputs(job, &all, &skipped, ransac)?;
    Ok((summary_table(&all), skipped))
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
    job: &MatchEval,
    all: &[DescriptorResults],
    skipped: &[String],
    ransac: RansacConfig,
) -> Result<(), EvalError> {
    let matching = job.matching;
    let results = Results {
        tool: Tool::current(),
        command: "match-eval",
        created_unix: unix_time(),
        seed: job.seed,
        pairs_root: job.pairs.display().to_string(),
        matching,
        ransac,
        mma_thresholds: &MMA_THRESHOLDS,
        homography_thresholds: &HOMOGRAPHY_THRESHOLDS,
        skipped,
        results: all,
    };
    write_json(&job.out.join("results.json"), &results)?;
    let write = |name: &str, text: String| write_bytes(&job.out.join(name), text.as_bytes());
    write("results.csv", pair_table(all).to_csv())?;
    write(
        "results.md",
        format!(
            "# Matching accuracy\n\nPairs: `{}`; matching: {}; RANSAC threshold {} px.\n\n{}\n## Per pair\n\n{}",
            job.pairs.display(),
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
    let svg = line_plot_svg(&axes, &series).map_err(|e| EvalError::Plot {
        what: "mma.svg",
        problem: e.to_string(),
    })?;
    Ok(write("mma.svg", svg)?)
}
