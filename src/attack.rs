//! `featleak attack`: train an inversion network under a threat model, and reconstruct images
//! from their features.

use crate::choices::Threat;
use crate::progress;
use crate::run_budget::RunBudget;
use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use featleak_attack::ComputeDevice;
use featleak_attack::baselines::{BASELINES, baselines};
use featleak_attack::reconstruct::{ReconstructConfig, Victims, reconstruct};
use featleak_attack::run::{EpochMetrics, NetworkPreset, NewRun, RunConfig};
use featleak_attack::session::{JobObserver, SessionObserver, Start, train_attacker};
use featleak_train::Observer;
use featleak_train::trainer::At;
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Clone, Debug)]
pub enum AttackCommand {
    /// Train an inversion network on images you own, under a threat model.
    Train(TrainArgs),
    /// Reconstruct images from their features with a trained network.
    Reconstruct(ReconstructArgs),
    /// Score two trivial "attacks" on victim images: the mean training image of a run, and
    /// each image's own mean colour — what an attacker beats only by learning something.
    Baselines(BaselinesArgs),
}

#[derive(Args, Clone, Debug)]
pub struct BaselinesArgs {
    /// Run folder (its training images and resolution are used).
    #[arg(long)]
    pub run: PathBuf,
    /// Victim images.
    #[arg(long)]
    pub images: PathBuf,
    /// Output folder: mean-image.json and mean-colour.json (the schema of `featleak score`).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Descriptor the victim sends (sosnet: bundled weights).
    #[arg(long, default_value = "sift", value_parser = crate::choices::descriptor())]
    pub descriptor: String,
    /// Threat model: a preset (desc+pos, desc+pos+geom, pos-only) or a TOML file.
    #[arg(long, default_value = "desc+pos")]
    pub threat: Threat,
    /// The attacker's training images (searched recursively).
    #[arg(long)]
    pub images: PathBuf,
    /// Validation images (default: 10 % of --images, seeded).
    #[arg(long)]
    pub val_images: Option<PathBuf>,
    /// Side of the square reconstruction (pixels, multiple of 16).
    #[arg(long, default_value_t = 128)]
    pub size: u32,
    /// Side of the square the features are extracted from (default: twice --size).
    #[arg(long)]
    pub feature_size: Option<u32>,
    /// Run folder: configuration, checkpoints, metrics.csv, curves.svg.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub budget: RunBudget,
    /// Network size.
    #[arg(long, value_enum, default_value_t = Network::Cpu)]
    pub network: Network,
    /// Override the network's first-level width (level i has width·2^i channels).
    #[arg(long)]
    pub width: Option<usize>,
    /// Override the network's number of 2× poolings.
    #[arg(long)]
    pub depth: Option<usize>,

    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Peak learning rate (Adam; warm-up, then cosine decay over the budget).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,

    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use at most this many training images (0: all).
    #[arg(long, default_value_t = 0)]
    pub max_images: usize,
    /// Where the network trains: cpu, or wgpu (a GPU; needs a build with `--features wgpu`).
    /// Not part of the run's identity: a run resumes on either.
    #[arg(long, default_value_t = ComputeDevice::Cpu)]
    pub device: ComputeDevice,
}

#[derive(Args, Clone, Debug)]
pub struct ReconstructArgs {
    /// Run folder written by `featleak attack train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Victim images: features are extracted as the threat model says, and scores computed.
    #[arg(
        long,
        conflicts_with = "features",
        required_unless_present = "features"
    )]
    pub images: Option<PathBuf>,
    /// Victim feature files (.npz) alone: the real attack, without access to the images.
    #[arg(long)]
    pub features: Option<PathBuf>,
    /// Output folder: NAME.png per image, metrics.json (with --images) and index.html.
    #[arg(long)]
    pub out: PathBuf,
    /// Share of keypoints revealed (default: the threat model's attack share).
    #[arg(long)]
    pub share: Option<f32>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the network runs: cpu, or wgpu (a GPU; needs a build with `--features wgpu`).
    #[arg(long, default_value_t = ComputeDevice::Cpu)]
    pub device: ComputeDevice,
}

/// Network sizes of `--network`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Network {
    /// Widths 16–256: trains on a CPU.
    Cpu,
    /// Widths 64–1024, as in the seed paper.
    Paper,
}

impl From<Network> for NetworkPreset {
    fn from(n: Network) -> Self {
        match n {
            Network::Cpu => NetworkPreset::Cpu,
            Network::Paper => NetworkPreset::Paper,
        }
    }
}

impl TrainArgs {
    /// The recipe of a new run.
    fn new_run(&self) -> anyhow::Result<NewRun> {
        Ok(NewRun {
            descriptor: self.descriptor.clone(),
            threat: self.threat.to_string(),
            images: self.images.clone(),
            val_images: self.val_images.clone(),
            size: self.size,
            feature_size: self.feature_size,
            network: self.network.into(),
            width: self.width,
            depth: self.depth,
            batch_size: self.batch_size,
            learning_rate: self.lr,
            seed: self.seed,
            max_images: self.max_images,
            budget: self.budget.budget()?,
        })
    }
}

/// Progress bars and messages of the attack commands.
#[derive(Default)]
pub(crate) struct Ui {
    /// The bar of the stage in progress.
    stage: Option<ProgressBar>,
    /// The training bar.
    train: Option<ProgressBar>,
}

impl Ui {
    pub(crate) fn finish(&mut self) {
        for bar in [self.stage.take(), self.train.take()].into_iter().flatten() {
            bar.finish_and_clear();
        }
    }
}

impl JobObserver for Ui {
    fn device(&mut self, description: &str) {
        println!("device: {description}");
    }
    fn stage(&mut self, stage: &str, total: usize) -> featleak_datasets::Tick {
        self.finish();
        let bar = progress::bar(total as u64, stage);
        self.stage = Some(bar.clone());
        Box::new(move || bar.inc(1))
    }
    fn skipped(&mut self, reason: &str) {
        eprintln!("skipped {reason}");
    }
}

impl SessionObserver for Ui {
    fn starting(&mut self, config: &RunConfig, train: usize, val: usize) {
        self.finish();
        featleak_train::stop::install();
        println!(
            "training {} under '{}' on {} images ({train} with mirrors), validating on {val}",
            config.threat.extractor.name(),
            config.threat.name,
            config.train_images.len(),
        );
        self.train = Some(progress::bar(
            config.training.budget.steps.unwrap_or(0),
            "train",
        ));
    }
}

impl Observer<EpochMetrics> for Ui {
    fn resumed(&mut self, step: u64) {
        if let Some(bar) = &self.train {
            bar.set_position(step);
            bar.suspend(|| println!("resuming at step {step}"));
        }
    }
    fn step(&mut self, at: At, loss: f64) {
        if let Some(bar) = &self.train {
            bar.set_position(at.step);
            bar.set_message(format!(
                "loss {loss:.4} lr {:.1e} {:.0} s",
                at.learning_rate, at.seconds
            ));
        }
    }
    fn validated(&mut self, m: &EpochMetrics) {
        let line = format!(
            "epoch {:>3} step {:>6}: train loss {:.4}, val PSNR {:.2} dB, SSIM {:.4}",
            m.epoch, m.step, m.train_loss, m.val_psnr, m.val_ssim
        );
        match &self.train {
            Some(bar) => bar.suspend(|| eprintln!("{line}")),
            None => eprintln!("{line}"),
        }
    }
}

pub fn run(command: &AttackCommand) -> anyhow::Result<ExitCode> {
    match command {
        AttackCommand::Train(args) => train_command(args),
        AttackCommand::Reconstruct(args) => reconstruct_command(args),
        AttackCommand::Baselines(args) => baselines_command(args),
    }
}

/// `attack train`.
pub fn train_command(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let start = if args.budget.resume {
        Start::Resume(args.budget.extension()?)
    } else {
        Start::New(args.new_run()?)
    };
    let mut ui = Ui::default();
    let outcome = train_attacker(&args.out, start, args.device, &mut ui);
    ui.finish();
    let (_, progress) = outcome?;
    if let Some(last) = progress.history.last() {
        println!(
            "done: {} steps in {:.1} min; validation PSNR {:.2} dB, SSIM {:.4}; run folder {}",
            progress.step,
            progress.seconds / 60.0,
            last.val_psnr,
            last.val_ssim,
            args.out.display()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `attack reconstruct`.
pub fn reconstruct_command(args: &ReconstructArgs) -> anyhow::Result<ExitCode> {
    let victims = match (&args.images, &args.features) {
        (Some(dir), _) => Victims::Images(dir.clone()),
        (None, Some(dir)) => Victims::Features(dir.clone()),
        (None, None) => bail!("give --images or --features"),
    };
    let job = ReconstructConfig {
        run: args.run.clone(),
        victims,
        out: args.out.clone(),
        share: args.share,
        seed: args.seed,
        device: args.device,
    };
    let mut ui = Ui::default();
    let report = reconstruct(&job, &mut ui);
    ui.finish();
    if let Some(report) = report? {
        println!(
            "{} images: PSNR {:.2} dB, SSIM {:.4}, MAE {:.4} (means)",
            report.images.len(),
            report.mean.psnr,
            report.mean.ssim,
            report.mean.mae
        );
    }
    println!("reconstructions and index.html in {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// `attack baselines`.
pub fn baselines_command(args: &BaselinesArgs) -> anyhow::Result<ExitCode> {
    let reports = baselines(&args.run, &args.images, &args.out)?;
    for (name, report) in BASELINES.iter().zip(&reports) {
        println!(
            "{name:>11}: {} images, PSNR {:.2} dB, SSIM {:.4}, MAE {:.4} (means)",
            report.images.len(),
            report.mean.psnr,
            report.mean.ssim,
            report.mean.mae
        );
    }
    Ok(ExitCode::SUCCESS)
}
