//! `featleak train-descriptor`: self-supervised SOSNet training on a folder of photos.

use crate::progress;
use crate::run_budget::RunBudget;
use anyhow::Context;
use burn::prelude::*;
use clap::{Args, ValueEnum};
use featleak_datasets::files::write_json;
use featleak_datasets::manifest::{Tool, unix_time};
use featleak_descriptors::sosnet::training::{
    DescriptorMetrics, DescriptorTrainConfig, MiningObserver, SosnetRecipe, SosnetRun, train,
};
use featleak_train::trainer::At;
use featleak_train::{Observer, RunFolder};
use indicatif::ProgressBar;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

/// Learned descriptor architectures featleak can train.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Arch {
    /// SOSNet32x32 (Tian et al., CVPR 2019): SOS loss on 32×32 patch pairs.
    Sosnet,
}

#[derive(Args, Debug)]
pub struct TrainDescriptorArgs {
    /// Network to train.
    #[arg(long, value_enum, default_value = "sosnet")]
    pub arch: Arch,
    /// Training photos (searched recursively).
    #[arg(long)]
    pub images: PathBuf,
    /// Photos for validation pairs (default: 5 % of --images, seeded).
    #[arg(long)]
    pub val_images: Option<PathBuf>,
    /// Run folder: run.json, pair caches, checkpoints, metrics.csv and the trained
    /// sosnet.safetensors (a SOSNet32x32 state_dict, also loadable by PyTorch).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub budget: RunBudget,
    /// Patch pairs per step (each from another photo when there are enough photos).
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Peak learning rate (Adam; warm-up, then cosine decay over the budget).
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// Random views (homographies) per photo when mining pairs.
    #[arg(long, default_value_t = 6)]
    pub views: usize,
    /// Validate (and checkpoint) every this many steps.
    #[arg(long, default_value_t = 100)]
    pub validate_every: u64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

struct MiningBar(ProgressBar);

impl MiningObserver for MiningBar {
    fn start(&self, photos: usize) {
        self.0.reset();
        self.0.set_length(photos as u64);
    }
    fn photo_done(&self) {
        self.0.inc(1);
    }
}

struct TrainingBar(ProgressBar);

impl Observer<DescriptorMetrics> for TrainingBar {
    fn resumed(&mut self, step: u64) {
        self.0.set_position(step);
        self.0.suspend(|| println!("resuming at step {step}"));
    }

    fn step(&mut self, at: At, loss: f64) {
        self.0.set_position(at.step);
        self.0.set_message(format!("loss {loss:.4}"));
    }

    fn validated(&mut self, m: &DescriptorMetrics) {
        self.0.println(format!(
            "step {:>6}  {:>6.1} min  loss {:.4} (first order {:.4}, second order {:.4})  val accuracy {:.3}",
            m.step,
            m.seconds / 60.0,
            m.loss,
            m.first_order,
            m.second_order,
            m.val_accuracy
        ));
    }
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: Tool,
    command: &'static str,
    finished_unix: u64,
    config: &'a DescriptorTrainConfig,
    steps: u64,
    minutes: f64,
    weights: PathBuf,
    last: Option<DescriptorMetrics>,
}

fn new_config(args: &TrainDescriptorArgs) -> anyhow::Result<DescriptorTrainConfig> {
    Ok(DescriptorTrainConfig::new(&SosnetRecipe {
        images: args.images.clone(),
        val_images: args.val_images.clone(),
        budget: args.budget.budget()?,
        batch_size: args.batch_size,
        learning_rate: args.lr,
        views: args.views,
        validate_every: args.validate_every,
        seed: args.seed,
    })?)
}

/// `train-descriptor`.
pub fn run(args: &TrainDescriptorArgs) -> anyhow::Result<ExitCode> {
    let Arch::Sosnet = args.arch;
    let resume = args.budget.resume;
    let run = RunFolder::prepare(&args.out, resume, "a descriptor-training run")?;
    let config = if resume {
        let mut c: DescriptorTrainConfig = run.read_config().with_context(|| {
            format!(
                "{} is not a featleak descriptor-training run (another version?)",
                args.out.display()
            )
        })?;
        // The budget may be extended on resume; nothing else changes.
        if let Some(budget) = args.budget.extension()? {
            c.budget = budget;
        }
        c
    } else {
        new_config(args)?
    };
    run.write_config(&config)?;
    println!(
        "training SOSNet on {} photos ({} held out for validation); run folder {}",
        config.images.len(),
        config.val_images.len(),
        args.out.display()
    );
    let mining = MiningBar(progress::bar(0, "pairs"));
    let mut training = TrainingBar(progress::bar(config.budget.steps.unwrap_or(0), "train"));
    let device = Device::flex().autodiff();
    featleak_train::stop::install();
    let progress = train(&run, &config, &device, &mut training, &mining);
    mining.0.finish_and_clear();
    training.0.finish_and_clear();
    let progress = progress?;
    let last = progress.history.last().copied();
    write_json(
        &args.out.join("manifest.json"),
        &Manifest {
            tool: Tool::current(),
            command: "train-descriptor",
            finished_unix: unix_time(),
            config: &config,
            steps: progress.step,
            minutes: progress.seconds / 60.0,
            weights: run.weights(),
            last,
        },
    )?;
    if let Some(m) = last {
        println!(
            "done: {} steps in {:.1} min; validation accuracy {:.3}; weights in {}",
            progress.step,
            progress.seconds / 60.0,
            m.val_accuracy,
            run.weights().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
