//! `featleak mitigate`: reveal only part of the features.

use anyhow::Context;
use clap::{Args, Subcommand};
use featleak_mitigation::Strategy;
use featleak_mitigation::apply::{ApplyConfig, apply_folder};
use featleak_mitigation::sweep::{CellResult, SweepConfig, SweepDir, SweepObserver, run_sweep};
use indicatif::ProgressBar;
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

pub fn run(command: &MitigateCommand) -> anyhow::Result<ExitCode> {
    match command {
        MitigateCommand::Apply(args) => apply(args),
        MitigateCommand::Sweep(args) => sweep(args),
    }
}

fn apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let strategy = Strategy::by_name(&args.strategy)?;
    let records = apply_folder(&ApplyConfig {
        strategy,
        keep: args.keep,
        features: args.features.clone(),
        out: args.out.clone(),
        seed: args.seed,
    })?;
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
