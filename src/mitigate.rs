//! `featleak mitigate`: reveal only part of the features.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use featleak_datasets::files::write_json;
use featleak_datasets::find_files;
use featleak_datasets::manifest::{Tool, unix_time};
use featleak_descriptors::{read_features, write_features};
use featleak_mitigation::sweep::{
    CellResult, SweepConfig, SweepDir, SweepObserver, item_seed, run_sweep,
};
use featleak_mitigation::{Hints, Strategy};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Clone, Debug)]
pub enum MitigateCommand {
    /// Write mitigated copies of .npz feature files (only the revealed keypoints).
    Apply(ApplyArgs),
    /// Score strategies × keep fractions × descriptors on privacy (non-adaptive and adaptive
    /// attackers) and utility (matching on homography pairs); resumable.
    Sweep(SweepArgs),
}

#[derive(Args, Clone, Debug)]
pub struct SweepArgs {
    /// Sweep configuration (TOML): attackers (run folders), victim images, pairs, strategies,
    /// keep fractions, adaptive fine-tune budget. See examples/sweep.toml.
    #[arg(long)]
    pub config: PathBuf,
    /// Output folder: results.json/.csv/.md, frontier.svg, gallery.html. Rerunning with the same
    /// configuration resumes: finished cells are kept.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Clone, Debug)]
pub struct ApplyArgs {
    /// Strategy: random, top-response, lowest-response, grid or anms (the privacy-aware
    /// `leakage` strategy needs the attacker and the images: use `mitigate sweep`).
    #[arg(long, value_parser = crate::choices::strategy())]
    pub strategy: String,
    /// Fraction of each image's keypoints to reveal (0–1).
    #[arg(long)]
    pub keep: f32,
    /// Folder of .npz feature files (searched recursively).
    #[arg(long)]
    pub features: PathBuf,
    /// Output folder (mirrors the input tree, plus manifest.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the random choices (each file's seed also depends on its relative path).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Serialize)]
struct FileRecord {
    features: String,
    keypoints: usize,
    revealed: usize,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: Tool,
    command: &'static str,
    created_unix: u64,
    seed: u64,
    strategy: Strategy,
    keep: f32,
    source: String,
    files: &'a [FileRecord],
}

pub fn run(command: &MitigateCommand) -> anyhow::Result<ExitCode> {
    match command {
        MitigateCommand::Apply(args) => apply(args),
        MitigateCommand::Sweep(args) => sweep(args),
    }
}

fn apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let strategy = Strategy::by_name(&args.strategy)?;
    if strategy.needs_leakage() {
        bail!(
            "the leakage strategy ranks keypoints with the attacker on the images themselves; \
             use `featleak mitigate sweep`"
        );
    }
    if !(0.0..=1.0).contains(&args.keep) {
        bail!("--keep must be between 0 and 1 (got {})", args.keep);
    }
    let files = find_files(&args.features, |p| {
        p.extension().is_some_and(|e| e == "npz")
    })
    .with_context(|| format!("cannot list feature files in {}", args.features.display()))?;
    if files.is_empty() {
        bail!("no .npz feature files in {}", args.features.display());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let records = files
        .par_iter()
        .map(|file| {
            let rel = file.strip_prefix(&args.features).expect("below root");
            let features = read_features(file)?;
            let revealed = strategy
                .apply(
                    &features,
                    args.keep,
                    Hints::seed(item_seed(args.seed, &rel.to_string_lossy())),
                )
                .with_context(|| file.display().to_string())?;
            let out = args.out.join(rel);
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            write_features(&out, &revealed)?;
            Ok(FileRecord {
                features: rel.display().to_string(),
                keypoints: features.len(),
                revealed: revealed.len(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let manifest = Manifest {
        tool: Tool::current(),
        command: "mitigate apply",
        created_unix: unix_time(),
        seed: args.seed,
        strategy,
        keep: args.keep,
        source: args.features.display().to_string(),
        files: &records,
    };
    write_json(&args.out.join("manifest.json"), &manifest)?;
    let (total, kept): (usize, usize) = records
        .iter()
        .fold((0, 0), |(t, k), r| (t + r.keypoints, k + r.revealed));
    println!(
        "{}: revealed {kept} of {total} keypoints in {} file(s) → {}",
        strategy.name(),
        records.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Progress of a sweep on a progress bar, one line per finished cell.
pub(crate) struct SweepBar {
    pub(crate) bar: ProgressBar,
}

impl SweepObserver for SweepBar {
    fn stage(&mut self, name: &str, total: u64) {
        self.bar.finish_and_clear();
        self.bar = crate::progress::bar(total, name);
    }
    fn advance(&mut self) {
        self.bar.inc(1);
    }
    fn cell(&mut self, c: &CellResult, reused: bool) {
        self.bar.suspend(|| {
            println!(
                "{:<6} {:<16} keep {:<4} → MMA@3 {:.3}, SSIM non-adaptive {:.3} / adaptive {:.3}{}",
                c.descriptor,
                c.strategy,
                c.keep,
                c.mma_3,
                c.ssim_nonadaptive,
                c.ssim_adaptive,
                if reused { " (shared keep-1 cell)" } else { "" }
            )
        });
    }
}

/// `mitigate sweep`.
pub fn sweep(args: &SweepArgs) -> anyhow::Result<ExitCode> {
    let config = SweepConfig::from_file(&args.config)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let mut bar = SweepBar {
        bar: ProgressBar::hidden(),
    };
    let results = run_sweep(&config, &args.out, &mut bar)?;
    bar.bar.finish_and_clear();
    featleak_mitigation::report::write_report(
        &SweepDir {
            root: args.out.clone(),
        },
        &results,
    )
    .map_err(anyhow::Error::msg)?;
    println!(
        "{} cells → {}/results.md, frontier.svg, gallery.html",
        results.cells.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
