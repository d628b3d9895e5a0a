//! `featleak train-descriptor`: self-supervised SOSNet training on a folder of photos.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use burn::prelude::*;
use clap::{Args, ValueEnum};
use featleak_datasets::find_images;
use featleak_descriptors::sosnet::training::{
    DescriptorMetrics, DescriptorTrainConfig, PairConfig, SosLossConfig, TrainDir, TrainObserver,
    train,
};
use indicatif::ProgressBar;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::interrupt;
use crate::manifest::{Tool, unix_time, write_json};
use crate::progress;
use crate::run_budget::RunBudget;

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
    /// Run folder: config.json, pair caches, checkpoints, metrics.csv and the trained
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

struct Bars {
    mining: ProgressBar,
    training: ProgressBar,
}

impl TrainObserver for Bars {
    fn mining(&mut self, photos: usize) {
        self.mining.reset();
        self.mining.set_length(photos as u64);
    }

    fn step(&mut self, step: u64, loss: f64, _seconds: f64) {
        self.training.set_position(step);
        self.training.set_message(format!("loss {loss:.4}"));
    }

    fn stop_requested(&self) -> bool {
        interrupt::requested()
    }

    fn validated(&mut self, m: &DescriptorMetrics) {
        self.training.println(format!(
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
    let list = |dir: &PathBuf| -> anyhow::Result<Vec<PathBuf>> {
        let found =
            find_images(dir).with_context(|| format!("cannot list images in {}", dir.display()))?;
        if found.is_empty() {
            bail!("no images in {}", dir.display());
        }
        Ok(found)
    };
    let all = list(&args.images)?;
    let (images, val_images) = match &args.val_images {
        Some(dir) => (all, list(dir)?),
        None => {
            if all.len() < 2 {
                bail!(
                    "{} holds too few photos to hold some out for validation ({}); pass --val-images",
                    args.images.display(),
                    all.len()
                );
            }
            // 5 % of the photos (at least one), chosen with the seed.
            let mut order = all;
            order.shuffle(&mut featleak_datasets::schedule::rng(args.seed, 9));
            let val = order.split_off(order.len() - order.len().div_ceil(20));
            (order, val)
        }
    };
    if args.batch_size < 2 {
        bail!("--batch-size must be at least 2 (in-batch negatives)");
    }
    Ok(DescriptorTrainConfig {
        images,
        val_images,
        pairs: PairConfig {
            views_per_image: args.views,
            ..Default::default()
        },
        loss: SosLossConfig::default(),
        batch_size: args.batch_size,
        steps: args.budget.steps,
        minutes: args.budget.minutes,
        learning_rate: args.lr,
        warmup_steps: 50,
        validate_every: args.validate_every,
        val_pairs: 1000,
        checkpoint_seconds: 60.0,
        seed: args.seed,
    })
}

/// `train-descriptor`.
pub fn run(args: &TrainDescriptorArgs) -> anyhow::Result<ExitCode> {
    let Arch::Sosnet = args.arch;
    let dir = TrainDir(args.out.clone());
    args.budget
        .check_out(&args.out, &dir.config(), "a descriptor-training run")?;
    let config = if args.budget.resume {
        let text = std::fs::read_to_string(dir.config())
            .with_context(|| format!("cannot read {}", dir.config().display()))?;
        let mut c: DescriptorTrainConfig = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a featleak descriptor-training config (another version?)",
                dir.config().display()
            )
        })?;
        // The budget may be extended on resume; nothing else changes.
        if let Some((minutes, steps)) = args.budget.extension() {
            c.minutes = minutes;
            c.steps = steps;
        }
        c
    } else {
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("cannot create {}", args.out.display()))?;
        new_config(args)?
    };
    write_json(&dir.config(), &config)?;
    println!(
        "training SOSNet on {} photos ({} held out for validation); run folder {}",
        config.images.len(),
        config.val_images.len(),
        args.out.display()
    );
    let mining = progress::bar(0, "pairs");
    let tick_bar = mining.clone();
    let training = progress::bar(config.steps.unwrap_or(0), "train");
    let mut bars = Bars {
        mining,
        training: training.clone(),
    };
    let device = Device::flex().autodiff();
    interrupt::install();
    let state = train(&dir, &config, &device, &mut bars, &move || tick_bar.inc(1))
        .map_err(anyhow::Error::msg)?;
    bars.mining.finish_and_clear();
    training.finish_and_clear();
    interrupt::stopped_at(state.step, &args.out)?;
    let last = state.history.last().copied();
    write_json(
        &args.out.join("manifest.json"),
        &Manifest {
            tool: Tool::current(),
            command: "train-descriptor",
            finished_unix: unix_time(),
            config: &config,
            steps: state.step,
            minutes: state.seconds / 60.0,
            weights: dir.weights(),
            last,
        },
    )?;
    if let Some(m) = last {
        println!(
            "done: {} steps in {:.1} min; validation accuracy {:.3}; weights in {}",
            state.step,
            state.seconds / 60.0,
            m.val_accuracy,
            dir.weights().display()
        );
    }
    Ok(ExitCode::SUCCESS)
}
