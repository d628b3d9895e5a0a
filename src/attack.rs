//! `featleak attack`: train an inversion network under a threat model, and reconstruct images
//! from their features.

use crate::choices::Threat;
use crate::progress;
use crate::run_budget::RunBudget;
use anyhow::bail;
use clap::{Args, Subcommand, ValueEnum};
use featleak_attack::baselines::{BASELINES, baselines};
use featleak_attack::loss::LossConfig;
use featleak_attack::model::InputEncoding;
use featleak_attack::reconstruct::{ReconstructConfig, Victims, reconstruct};
use featleak_attack::run::{EpochMetrics, NetworkPreset, NewRun, RunConfig};
use featleak_attack::session::{JobObserver, SessionObserver, Start, train_attacker};
use featleak_attack::{AttackerSource, ComputeDevice, ZOO};
use featleak_datasets::GrayConversion;
use featleak_train::trainer::At;
use featleak_train::{Observer, RunFolder};
use indicatif::ProgressBar;
use std::path::PathBuf;
use std::process::ExitCode;

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Clone, Debug)]
pub enum AttackCommand {
    /// Train an inversion network on images you own, under a threat model.
    Train(TrainArgs),
    /// Reconstruct images from their features with a trained network.
    Reconstruct(ReconstructArgs),
    /// List the pretrained attackers bundled with featleak (use one with `--run zoo:NAME`, or
    /// fine-tune it with `attack train --init zoo:NAME`).
    Zoo,
    /// Score two trivial "attacks" on victim images: the mean training image of a run, and
    /// each image's own mean colour — what an attacker beats only by learning something.
    Baselines(BaselinesArgs),
    /// Write a run's network with its kernels in half precision (f16) into a new attacker folder,
    /// usable with `--run` like the run itself: the form the zoo bundles (half the size).
    Export(ExportArgs),
}

#[derive(Args, Clone, Debug)]
pub struct ExportArgs {
    /// Run folder written by `featleak attack train`.
    #[arg(long)]
    pub run: PathBuf,
    /// New (or empty) folder for the exported attacker.
    #[arg(long)]
    pub out: PathBuf,
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

/// `attack train`'s options. The recipe options (all but --out, the budget, --resume and
/// --device) are optional so that a resumed run can tell the ones given from the defaults: a
/// resumed run keeps its recipe, and one given with another value is refused.
#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Descriptor the victim sends (sosnet: bundled weights) [default: sift].
    #[arg(long, value_parser = crate::choices::descriptor())]
    pub descriptor: Option<String>,
    /// Audit another pipeline's features: read the training images' features from this store
    /// (a folder of .npz, an hloc features.h5 or a COLMAP database.db, images named by their
    /// path below --images) instead of extracting them. Any descriptor, float or binary, of any
    /// dimension; the run records its kind and refuses features of another.
    #[arg(long, conflicts_with_all = ["descriptor", "gray"])]
    pub train_features: Option<PathBuf>,
    /// The validation images' feature store, when it is not --train-features.
    #[arg(long, requires = "train_features")]
    pub val_features: Option<PathBuf>,
    /// Threat model: a preset (desc+pos, desc+pos+geom, pos-only) or a TOML file
    /// [default: desc+pos].
    #[arg(long)]
    pub threat: Option<Threat>,
    /// The attacker's training images (searched recursively).
    #[arg(long, required_unless_present = "resume")]
    pub images: Option<PathBuf>,
    /// Validation images (default: 10 % of --images, seeded).
    #[arg(long)]
    pub val_images: Option<PathBuf>,
    /// Side of the square reconstruction (pixels, multiple of 16) [default: 128].
    #[arg(long)]
    pub size: Option<u32>,
    /// Side of the square the features are extracted from (default: twice --size).
    #[arg(long)]
    pub feature_size: Option<u32>,
    /// Run folder: configuration, checkpoints, metrics.csv, curves.svg.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub budget: RunBudget,
    /// Network size [default: cpu].
    #[arg(long, value_enum)]
    pub network: Option<Network>,
    /// Override the network's first-level width (level i has width·2^i channels).
    #[arg(long)]
    pub width: Option<usize>,
    /// Override the network's number of 2× poolings.
    #[arg(long)]
    pub depth: Option<usize>,
    /// How the first layer reads the keypoints: `sparse` (a 3×3 conv at the keypoints only),
    /// `nearest-fill` (every pixel takes a projection of its nearest keypoint's features and its
    /// offset to it), `mlp` (each keypoint's vector through a two-layer perceptron of 128
    /// channels, then the sparse 3×3 conv) or `mlp-k7` (the same with a 7×7 conv) [default: sparse].
    #[arg(long, value_parser = crate::choices::input_encoding())]
    pub input: Option<String>,
    /// Add the whole image's context to every position of the bottleneck (its channels' means
    /// through a fully connected layer) [default: off].
    #[arg(long)]
    pub global_context: bool,
    /// Share of each training image's keypoints revealed: F, or MIN..MAX drawn per image
    /// [default: the threat model's, 0.05..1 for a preset: one attacker for any share].
    #[arg(long, value_parser = featleak_attack::Share::parse)]
    pub train_share: Option<featleak_attack::Share>,
    /// How image files become grey for extraction: cvtcolor (OpenCV's cvtColor on the
    /// decoded image), imread-grayscale (OpenCV's IMREAD_GRAYSCALE, as hloc reads images) or pil
    /// [default: the threat model's, cvtcolor for a preset].
    #[arg(long, value_parser = crate::choices::gray())]
    pub gray: Option<String>,
    /// Weight of the image-gradient L1 term added to the loss L1 + (1 − SSIM) [default: 0, none].
    #[arg(long)]
    pub gradient_loss: Option<f64>,
    /// Weight of the mean squared error added to the loss (the error PSNR measures)
    /// [default: 0, none].
    #[arg(long)]
    pub mse_loss: Option<f64>,
    /// Start from a trained attacker's weights and network: a run folder or `zoo:NAME`
    /// (fine-tuning). Its threat model must match this run's.
    #[arg(long, value_parser = crate::choices::attacker, conflicts_with_all = ["network", "width", "depth", "input", "global_context"])]
    pub init: Option<AttackerSource>,
    /// Images per step [default: 8].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Peak learning rate (Adam; warm-up, then cosine decay over the budget) [default: 0.003].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Seed of the initial weights, batches, augmentations and keypoint shares [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Use at most this many training images [default: 0, all].
    #[arg(long)]
    pub max_images: Option<usize>,
    /// Where the network trains: cpu, or wgpu (a GPU; needs a build with `--features wgpu`).
    /// Not part of the run's identity: a run resumes on either.
    #[arg(long, default_value_t = ComputeDevice::Cpu)]
    pub device: ComputeDevice,
}

#[derive(Args, Clone, Debug)]
pub struct ReconstructArgs {
    /// The attacker: a run folder written by `featleak attack train`, or `zoo:NAME` for a
    /// bundled one (`featleak attack zoo` lists them).
    #[arg(long, value_parser = crate::choices::attacker)]
    pub run: AttackerSource,
    /// Victim images: features are extracted as the threat model says (or read from
    /// --features), and scores computed.
    #[arg(long, required_unless_present = "features")]
    pub images: Option<PathBuf>,
    /// Victim features: a folder of .npz feature files, an hloc features.h5 or a COLMAP
    /// database.db. Alone: the real attack, without access to the images. With --images (for
    /// an attacker trained with --train-features): the images' features as your pipeline made
    /// them, scored against the images.
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
    #[command(flatten)]
    pub shard: crate::merge::ShardArg,
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
        let Some(images) = self.images.clone() else {
            bail!("a new run needs --images");
        };
        let d = NewRun::defaults(images, self.budget.budget()?);
        Ok(NewRun {
            descriptor: self.descriptor.clone().unwrap_or(d.descriptor),
            threat: self.threat.as_ref().map_or(d.threat, ToString::to_string),
            val_images: self.val_images.clone(),
            train_features: self.train_features.clone(),
            val_features: self.val_features.clone(),
            size: self.size.unwrap_or(d.size),
            feature_size: self.feature_size,
            network: self.network.map_or(d.network, Into::into),
            width: self.width,
            depth: self.depth,
            input: self.input.as_deref().map_or(d.input, |i| {
                InputEncoding::parse(i).expect("clap checked the name")
            }),
            global_context: self.global_context,
            train_share: self.train_share,
            gray: self
                .gray
                .as_deref()
                .map(|g| GrayConversion::parse(g).expect("clap checked the name")),
            loss: LossConfig {
                gradient: self.gradient_loss.unwrap_or(d.loss.gradient),
                mse: self.mse_loss.unwrap_or(d.loss.mse),
            },
            init: self.init.clone(),
            batch_size: self.batch_size.unwrap_or(d.batch_size),
            learning_rate: self.lr.unwrap_or(d.learning_rate),
            seed: self.seed.unwrap_or(d.seed),
            max_images: self.max_images.unwrap_or(d.max_images),
            ..d
        })
    }

    /// The recipe options given with `--resume` whose values differ from the run's `config`,
    /// as `--option VALUE (the run's: VALUE)`.
    fn conflicts(&self, config: &RunConfig) -> Vec<String> {
        let t = &config.training;
        let threat = &config.threat;
        let mut out = Vec::new();
        let mut differs = |option: &str, given: Option<String>, run: String| {
            if let Some(given) = given
                && given != run
            {
                out.push(format!("--{option} {given} (the run's: {run})"));
            }
        };
        // Folders compare as the same folder however they are spelled.
        let canonical = |p: &std::path::Path| {
            std::fs::canonicalize(p)
                .unwrap_or_else(|_| p.to_path_buf())
                .display()
                .to_string()
        };
        let path = |p: &Option<PathBuf>| p.as_deref().map(canonical);
        // A folder the run records, if any ("" when none: any given one then differs).
        let recorded = |p: &Option<String>| {
            p.as_deref()
                .map(|p| canonical(p.as_ref()))
                .unwrap_or_default()
        };
        differs(
            "descriptor",
            self.descriptor.clone(),
            threat.extractor.descriptor.name().into(),
        );
        differs(
            "threat",
            self.threat.as_ref().map(ToString::to_string),
            threat.name.clone(),
        );
        differs(
            "images",
            path(&self.images),
            canonical(config.images_root.as_ref()),
        );
        differs(
            "val-images",
            path(&self.val_images),
            recorded(&config.val_root),
        );
        differs(
            "train-features",
            path(&self.train_features),
            recorded(&config.train_features),
        );
        differs(
            "val-features",
            path(&self.val_features),
            recorded(&config.val_features),
        );
        differs(
            "size",
            self.size.map(|s| s.to_string()),
            threat.resolution.to_string(),
        );
        differs(
            "feature-size",
            self.feature_size.map(|s| s.to_string()),
            threat.feature_resolution.to_string(),
        );
        differs(
            "width",
            self.width.map(|w| w.to_string()),
            t.network.base_width.to_string(),
        );
        differs(
            "depth",
            self.depth.map(|d| d.to_string()),
            t.network.depth.to_string(),
        );
        differs("input", self.input.clone(), t.network.input.name().into());
        differs(
            "gray",
            self.gray.clone(),
            threat.extractor.gray.name().into(),
        );
        differs(
            "gradient-loss",
            self.gradient_loss.map(|g| g.to_string()),
            t.loss.gradient.to_string(),
        );
        differs(
            "train-share",
            self.train_share.map(|s| s.to_string()),
            threat.train_share.to_string(),
        );
        differs(
            "mse-loss",
            self.mse_loss.map(|m| m.to_string()),
            t.loss.mse.to_string(),
        );
        differs(
            "init",
            self.init.as_ref().map(ToString::to_string),
            t.init.clone().unwrap_or_default(),
        );
        differs(
            "batch-size",
            self.batch_size.map(|b| b.to_string()),
            t.batch_size.to_string(),
        );
        differs(
            "lr",
            self.lr.map(|l| l.to_string()),
            t.schedule.peak.to_string(),
        );
        differs("seed", self.seed.map(|s| s.to_string()), t.seed.to_string());
        if self.network.is_some() || self.max_images.is_some() {
            out.push("--network or --max-images (the run keeps its network and images)".into());
        }
        if self.global_context && !t.network.global_context {
            out.push("--global-context (the run has none)".into());
        }
        out
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
    fn note(&mut self, message: &str) {
        eprintln!("note: {message}");
    }
}

impl SessionObserver for Ui {
    fn starting(&mut self, config: &RunConfig, train: usize, val: usize) {
        self.finish();
        featleak_train::stop::install();
        let prepared = match &config.train_features {
            Some(store) => format!("{train} with features from {store}, not mirrored"),
            None => format!("{train} with mirrors"),
        };
        println!(
            "training {} under '{}' on {} images ({prepared}), validating on {val}",
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
        AttackCommand::Zoo => zoo_command(),
        AttackCommand::Export(args) => {
            featleak_attack::export::export_half(&args.run, &args.out)?;
            println!(
                "{} holds {}'s network, kernels in f16 (use it with --run {0})",
                args.out.display(),
                args.run.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `attack zoo`.
fn zoo_command() -> anyhow::Result<ExitCode> {
    println!(
        "{:<12} {:<13} {:<9} {:>5} {:>8} {:>7}  {:<22} {:>16} {:>16}",
        "name",
        "features",
        "threat",
        "size",
        "steps",
        "hours",
        "device",
        "PSNR dB (mean c.)",
        "SSIM (mean c.)"
    );
    let mut held_out = None;
    for entry in ZOO {
        let card = entry.card()?;
        let (t, h) = (&card.training, &card.held_out);
        println!(
            "{:<12} {:<13} {:<9} {:>5} {:>8} {:>7.1}  {:<22} {:>8.2} ({:>5.2}) {:>8.3} ({:>5.3})",
            format!("zoo:{}", entry.name),
            card.threat.extractor.name(),
            card.threat.name,
            format!("{}²", card.threat.resolution),
            t.steps,
            t.minutes / 60.0,
            t.device,
            h.psnr,
            h.mean_colour_psnr,
            h.ssim,
            h.mean_colour_ssim
        );
        held_out.get_or_insert_with(|| format!("{} ({} photos)", h.images, h.count));
    }
    println!(
        "held-out scores on {}; model cards: attack/zoo/README.md in the source",
        held_out.unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// `attack train`.
pub fn train_command(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let start = if args.budget.resume {
        if let Ok(config) = RunConfig::load(&RunFolder::new(&args.out)) {
            let conflicts = args.conflicts(&config);
            if !conflicts.is_empty() {
                bail!(
                    "--resume continues the run in {} with the recipe in its run.json; these \
                     options differ from it: {}. Leave them out, or train a new run into another \
                     folder",
                    args.out.display(),
                    conflicts.join(", ")
                );
            }
        }
        Start::Resume(args.budget.extension()?)
    } else {
        Start::New(Box::new(args.new_run()?))
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
        (Some(images), Some(features)) => Victims::ImagesWithFeatures {
            images: images.clone(),
            features: features.clone(),
        },
        (Some(dir), None) => Victims::Images(dir.clone()),
        (None, Some(dir)) => Victims::Features(dir.clone()),
        (None, None) => bail!("give --images or --features"),
    };
    let job = ReconstructConfig {
        attacker: args.run.clone(),
        victims,
        out: args.out.clone(),
        share: args.share,
        seed: args.seed,
        device: args.device,
        shard: args.shard.resolve()?,
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
