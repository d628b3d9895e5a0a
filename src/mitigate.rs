//! `featleak mitigate`: reveal only part of the features.

use anyhow::Context;
use clap::{Args, Subcommand};
use featleak_mitigation::apply::{ApplyConfig, apply_folder};
use featleak_mitigation::sweep::{CellResult, SweepConfig, SweepDir, SweepObserver, run_sweep};
use featleak_mitigation::{Defence, Strategy};
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Clone, Debug)]
pub enum MitigateCommand {
    /// Write mitigated copies of .npz feature files: only the revealed keypoints (--strategy,
    /// --keep), their descriptors defended (--defence, --strength), or both.
    Apply(ApplyArgs),
    /// Score strategies × keep fractions × descriptors on privacy (non-adaptive and adaptive
    /// attackers) and utility (matching on homography pairs); resumable.
    Sweep(SweepArgs),
    /// One privacy-against-utility plot of several sweeps (a panel per descriptor), for sweeps
    /// with the same victims, pairs and adaptive budget; a cell found in several is plotted at
    /// its strongest attacker.
    Frontier(FrontierArgs),
}

#[derive(Args, Clone, Debug)]
pub struct FrontierArgs {
    /// The plot to write (SVG); an existing file is refused.
    #[arg(long)]
    pub out: PathBuf,
    /// Sweep folders (or their results.json).
    #[arg(required = true)]
    pub sweeps: Vec<PathBuf>,
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
    /// Keypoint subset: random, top-response, lowest-response, grid or anms (the privacy-aware
    /// `leakage` strategy needs the attacker and the images: use `mitigate sweep`).
    #[arg(long, value_parser = crate::choices::strategy(), requires = "keep")]
    pub strategy: Option<String>,
    /// Fraction of each image's keypoints the strategy reveals (0–1).
    #[arg(long, requires = "strategy")]
    pub keep: Option<f32>,
    /// Descriptor-level defence, applied after the subset and fitted on all the input files:
    /// quantise (strength: bits per value), pca / random-projection (dimensions kept), binarise
    /// (bits), noise (ε per descriptor), lift-random / lift-adversarial (subspace dimension),
    /// coarsen-positions (cell side in pixels).
    #[arg(long, value_parser = crate::choices::defence(), requires = "strength")]
    pub defence: Option<String>,
    /// The defence's strength (its knob, see --defence).
    #[arg(long, requires = "defence", allow_negative_numbers = true)]
    pub strength: Option<f64>,
    /// The features: a folder of .npz files (searched recursively), an hloc .h5 or a COLMAP .db.
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
        MitigateCommand::Frontier(args) => frontier(args),
    }
}

/// `mitigate frontier`.
fn frontier(args: &FrontierArgs) -> anyhow::Result<ExitCode> {
    if args.out.exists() {
        anyhow::bail!(
            "{} already exists; featleak does not overwrite it: choose another --out",
            args.out.display()
        );
    }
    let svg = featleak_mitigation::report::combined_frontier_svg(&args.sweeps)?;
    featleak_datasets::files::write_bytes(&args.out, svg.as_bytes())?;
    println!("{} sweeps → {}", args.sweeps.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}

fn apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let strategy = args
        .strategy
        .as_deref()
        .map(Strategy::by_name)
        .transpose()?;
    let defence = match (&args.defence, args.strength) {
        (Some(name), Some(strength)) => Some(Defence::by_name(name, strength)?),
        _ => None,
    };
    let records = apply_folder(&ApplyConfig {
        strategy,
        keep: args.keep.unwrap_or(1.0),
        defence,
        features: args.features.clone(),
        out: args.out.clone(),
        seed: args.seed,
    })?;
    let (total, kept): (usize, usize) = records
        .iter()
        .fold((0, 0), |(t, k), r| (t + r.keypoints, k + r.revealed));
    let what: Vec<String> = strategy
        .map(|s| s.name().to_string())
        .into_iter()
        .chain(defence.map(|d| format!("{} {}", d.name(), d.strength())))
        .collect();
    println!(
        "{}: revealed {kept} of {total} keypoints in {} file(s) → {}",
        what.join(" + "),
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
        let cell = if c.defence == featleak_mitigation::sweep::NO_DEFENCE {
            format!("{:<16} keep {:<4}", c.strategy, c.keep)
        } else {
            format!("{:<16} {:<9}", c.defence, c.strength)
        };
        self.bar.suspend(|| {
            println!(
                "{:<6} {cell} → MMA@3 {:.3}, SSIM non-adaptive {:.3} / adaptive {:.3}{}",
                c.descriptor,
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
