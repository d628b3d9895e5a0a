//! Training the inversion network: Adam with warm-up and cosine decay, L1 + (1 − SSIM) loss,
//! step-seeded batches with random scale/crop/mirror augmentation and random keypoint shares,
//! validation PSNR/SSIM after every epoch, atomic checkpoints and exact resumption.

use crate::AttackError;
use crate::data::{Batch, Prepared, centre_view, make_batch, random_view, reveal_items};
use crate::kernels::sparse_conv::SparseBatch;
use crate::loss::LossConfig;
use crate::model::{UNet, UNetConfig};
use crate::run::{AttackRun, EpochLoss, EpochMetrics, MODEL, OPTIMIZER, RunConfig};
use crate::threat::{Share, ThreatModel};
use crate::zoo::AttackerSource;
use burn::module::{Module, ModuleMapper, Param};
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::store::ModuleRecord;
use featleak_datasets::FileError;
use featleak_datasets::schedule::rng;
use featleak_eval::plot::{Axes, Series, line_plot_svg};
use featleak_eval::score_report::{MeanScores, score_images};
use featleak_train::trainer::At;
use featleak_train::{Observer, Progress, RunFolder, Schedule, TrainError, Trainee, TrainerConfig};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Moves a host batch onto `device` as the network's sparse input and B×3×H×W targets.
pub fn to_device(batch: &Batch, device: &Device) -> Result<(SparseBatch, Tensor<4>), AttackError> {
    let sparse = SparseBatch::from_host(
        batch.size,
        batch.height,
        batch.width,
        batch.channels,
        batch.values.clone(),
        batch.pixel_index.clone(),
        device,
    )?;
    let targets = Tensor::from_data(
        TensorData::new(
            batch.targets.clone(),
            [batch.size, 3, batch.height, batch.width],
        ),
        device,
    );
    Ok((sparse, targets))
}

/// Network output (B×3×H×W in [0, 1]) as images.
pub fn to_images(output: Tensor<4>) -> Vec<RgbImage> {
    let [b, _, h, w] = output.dims();
    let data: Vec<f32> = output
        .into_data()
        .try_into_vec::<f32>()
        .expect("f32 output");
    (0..b)
        .map(|i| {
            RgbImage::from_fn(w as u32, h as u32, |x, y| {
                let at = |c: usize| data[((i * 3 + c) * h + y as usize) * w + x as usize];
                image::Rgb([0, 1, 2].map(|c| (at(c).clamp(0.0, 1.0) * 255.0).round() as u8))
            })
        })
        .collect()
}

/// How the network does on `images` seen whole with every keypoint revealed: mean PSNR, SSIM
/// (scikit-image's definitions) and MAE, and its first `keep_pictures` reconstructions. Batches
/// of `batch_size`; the reveal order is seeded, so the scores are reproducible.
pub fn evaluate(
    model: &UNet,
    images: &[Prepared],
    threat: &ThreatModel,
    (batch_size, keep_pictures): (usize, usize),
    device: &Device,
) -> Result<(MeanScores, Vec<RgbImage>), AttackError> {
    let model = model.valid();
    let view = centre_view(threat);
    let mut sums = [0.0; 3];
    let mut pictures = Vec::new();
    let mut r = rng(0, 0);
    for chunk in images.chunks(batch_size.max(1)) {
        let views = chunk.iter().map(|p| p.view(&view)).collect();
        let items = reveal_items(views, threat, Share::fixed(1.0), &mut r);
        let (input, _) = to_device(&make_batch(&items, &threat.sparse_map()), device)?;
        for (out, (target, _)) in to_images(model.forward(&input)).into_iter().zip(&items) {
            let s = score_images(target, &out)?;
            sums[0] += s.psnr;
            sums[1] += s.ssim;
            sums[2] += s.mae;
            if pictures.len() < keep_pictures {
                pictures.push(out);
            }
        }
    }
    let n = images.len().max(1) as f64;
    let [psnr, ssim, mae] = sums.map(|s| s / n);
    Ok((MeanScores { psnr, ssim, mae }, pictures))
}

/// The network's bytes (burn's record format), for a checkpoint or a copy.
fn model_bytes(model: &UNet) -> Result<burn::tensor::Bytes, AttackError> {
    model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| AttackError::Serialise {
            what: "model",
            problem: e.to_string(),
        })
}

/// `model`'s record with every convolution kernel in f16 (what [`load_model_bytes`] reads back
/// as f32): about half the bytes. Vectors (biases, BatchNorm scales, shifts and running
/// statistics) stay f32: they are a small share of the bytes, and rounding them to f16 can shift
/// whole channels of a wider network (measured in docs/ATTACKER-RECIPE.md).
pub fn half_precision_bytes(model: &UNet) -> Result<burn::tensor::Bytes, AttackError> {
    struct ToHalf;
    impl ModuleMapper for ToHalf {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            if D == 1 {
                return param;
            }
            param.map(|t| t.cast(burn::tensor::DType::F16))
        }
    }
    model_bytes(&model.clone().map(&mut ToHalf))
}

/// Loads a network saved in a checkpoint (`path`: its `model.bpk`); the error names the file
/// and says when it belongs to another architecture.
pub fn load_model(path: &Path, config: &UNetConfig, device: &Device) -> Result<UNet, AttackError> {
    let bytes = std::fs::read(path).map_err(FileError::io("read", path))?;
    load_model_bytes(bytes, config, device).map_err(|problem| AttackError::Checkpoint {
        path: path.to_path_buf(),
        problem,
    })
}

/// A network of architecture `config` from a saved record's bytes; the error says whether the
/// bytes are no model at all or the weights of another architecture.
pub fn load_model_bytes(
    bytes: Vec<u8>,
    config: &UNetConfig,
    device: &Device,
) -> Result<UNet, String> {
    // Weights stored in half precision (the zoo's) are cast to the network's f32.
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| format!("not a featleak model ({e})"))?
        .cast_to_module_dtype();
    config
        .init(device)
        .map_err(|e| e.to_string())?
        .try_load_record(record)
        .map_err(|e| format!("weights for another network than {config:?} ({e})"))
}

/// One optimiser step at `step` of a run seeded `seed`: a seeded batch of random views of
/// `train`, keypoints revealed with `share`. Returns the updated model and the batch loss.
#[allow(clippy::too_many_arguments)]
fn optimise(
    model: UNet,
    optim: &mut Optimizer,
    threat: &ThreatModel,
    train: &[Prepared],
    share: Share,
    loss: &LossConfig,
    (seed, step, batch_size): (u64, u64, usize),
    lr: f64,
    device: &Device,
) -> Result<(UNet, f64), AttackError> {
    let mut r = rng(seed, 1_000_000 + step);
    let views = crate::run::batch_indices(seed, step, batch_size, train.len())
        .into_iter()
        .map(|i| train[i].view(&random_view(threat, &mut r)))
        .collect();
    let items = reveal_items(views, threat, share, &mut r);
    let batch = make_batch(&items, &threat.sparse_map());
    let (input, target) = to_device(&batch, device)?;
    let loss = loss.loss(model.forward(&input), target);
    let loss_value: f64 = loss.clone().into_scalar::<f32>() as f64;
    if !loss_value.is_finite() {
        return Err(TrainError::LossNotFinite {
            step,
            value: loss_value,
        }
        .into());
    }
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    Ok((optim.step(lr, model, grads), loss_value))
}

/// Adam, as every attacker trains with.
type Optimizer = burn::optim::ModuleOptimizer;

fn adam() -> Optimizer {
    AdamConfig::new().with_epsilon(1e-8).init()
}

/// How an attacker adapts to a mitigation: a short fine-tune on features mitigated the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FineTuneConfig {
    /// Optimiser steps.
    pub steps: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Seed of the batches and augmentations.
    pub seed: u64,
}

/// An independent copy of `model` (a `clone` shares the batch-norm running statistics, which
/// training then updates in both).
pub fn deep_copy(model: &UNet, network: &UNetConfig, device: &Device) -> Result<UNet, AttackError> {
    let copy = |e: String| AttackError::Serialise {
        what: "model copy",
        problem: e,
    };
    let record = ModuleRecord::from_bytes(model_bytes(model)?).map_err(|e| copy(e.to_string()))?;
    network
        .init(device)?
        .try_load_record(record)
        .map_err(|e| copy(e.to_string()))
}

/// A fine-tuned copy of `model` (`network` is its architecture; `model` itself is left as it
/// is), trained on an autodiff `device` on `train`, whose features are already what the victim
/// reveals (e.g. mitigated): every keypoint of them is shown. Adam from a fresh state, warm-up
/// over the first tenth of the steps, then cosine decay; loss L1 + (1 − SSIM).
pub fn fine_tune(
    model: &UNet,
    network: &UNetConfig,
    threat: &ThreatModel,
    train: &[Prepared],
    config: &FineTuneConfig,
    device: &Device,
) -> Result<UNet, AttackError> {
    if train.is_empty() {
        return Err(AttackError::Recipe("no images to fine-tune on".into()));
    }
    let mut model = deep_copy(model, network, device)?;
    let mut optim = adam();
    let schedule = Schedule {
        peak: config.learning_rate,
        warmup_steps: (config.steps / 10).max(1),
    };
    for step in 0..config.steps {
        let lr = schedule.at(step as f64 / config.steps.max(1) as f64, step);
        (model, _) = optimise(
            model,
            &mut optim,
            threat,
            train,
            Share::fixed(1.0),
            &LossConfig::default(),
            (config.seed, step, config.batch_size),
            lr,
            device,
        )?;
    }
    Ok(model)
}

/// The attacker as the training skeleton sees it: the network, Adam, the threat model and the
/// prepared images.
pub struct AttackTrainee<'a> {
    model: Option<UNet>,
    optim: Optimizer,
    config: &'a RunConfig,
    train: &'a [Prepared],
    val: &'a [Prepared],
    device: &'a Device,
    steps_per_epoch: u64,
}

impl<'a> AttackTrainee<'a> {
    /// A freshly initialised network (seeded by the run's seed), or the weights of the run's
    /// `init` attacker, for `config`, on an autodiff `device`.
    pub fn new(
        config: &'a RunConfig,
        train: &'a [Prepared],
        val: &'a [Prepared],
        device: &'a Device,
    ) -> Result<Self, AttackError> {
        if train.is_empty() {
            return Err(AttackError::Recipe("no training images".into()));
        }
        // Parameter initialisation draws from the backend's generator: seed it.
        device.seed(config.training.seed);
        let model = match &config.training.init {
            Some(init) => AttackerSource::parse(init)?.load(device)?.model,
            None => config.training.network.init(device)?,
        };
        Ok(Self {
            model: Some(model),
            optim: adam(),
            config,
            train,
            val,
            device,
            steps_per_epoch: (train.len() / config.training.batch_size.max(1)).max(1) as u64,
        })
    }

    /// Steps in one epoch (one pass over the training images): validation comes after each.
    pub fn steps_per_epoch(&self) -> u64 {
        self.steps_per_epoch
    }

    fn model(&self) -> &UNet {
        self.model
            .as_ref()
            .expect("the model is only taken during a step")
    }
}

impl Trainee for AttackTrainee<'_> {
    type State = EpochLoss;
    type Metrics = EpochMetrics;
    type Error = AttackError;

    fn initial_state(&self) -> EpochLoss {
        EpochLoss::default()
    }

    fn step(&mut self, step: u64, lr: f64, state: &mut EpochLoss) -> Result<f64, AttackError> {
        let t = &self.config.training;
        let model = self.model.take().expect("a model between steps");
        let (model, loss) = optimise(
            model,
            &mut self.optim,
            &self.config.threat,
            self.train,
            self.config.threat.train_share,
            &t.loss,
            (t.seed, step, t.batch_size),
            lr,
            self.device,
        )?;
        self.model = Some(model);
        state.epoch_loss.0 += loss;
        state.epoch_loss.1 += 1;
        Ok(loss)
    }

    fn validate(&mut self, at: At, state: &mut EpochLoss) -> Result<EpochMetrics, AttackError> {
        let (val, _) = evaluate(
            self.model(),
            self.val,
            &self.config.threat,
            (self.config.training.batch_size, 0),
            self.device,
        )?;
        let m = EpochMetrics {
            epoch: at.step.div_ceil(self.steps_per_epoch),
            step: at.step,
            seconds: at.seconds,
            learning_rate: at.learning_rate,
            train_loss: state.epoch_loss.0 / state.epoch_loss.1.max(1) as f64,
            val_psnr: val.psnr,
            val_ssim: val.ssim,
        };
        // The last validation may come mid-epoch: that epoch's sums go on.
        if at.step.is_multiple_of(self.steps_per_epoch) {
            state.epoch_loss = (0.0, 0);
        }
        Ok(m)
    }

    fn save(&self, folder: &Path, _: &EpochLoss) -> Result<(), AttackError> {
        let path = folder.join(MODEL);
        std::fs::write(&path, &*model_bytes(self.model())?)
            .map_err(FileError::io("write", &path))?;
        let bytes = self
            .optim
            .to_record()
            .into_bytes()
            .map_err(|e| AttackError::Serialise {
                what: "optimiser",
                problem: e.to_string(),
            })?;
        let path = folder.join(OPTIMIZER);
        Ok(std::fs::write(&path, &*bytes).map_err(FileError::io("write", &path))?)
    }

    fn load(&mut self, folder: &Path, _: &EpochLoss) -> Result<(), AttackError> {
        self.model = Some(load_model(
            &folder.join(MODEL),
            &self.config.training.network,
            self.device,
        )?);
        let path = folder.join(OPTIMIZER);
        let bytes = std::fs::read(&path).map_err(FileError::io("read", &path))?;
        self.optim = adam()
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| AttackError::Checkpoint {
                path,
                problem: format!("not an optimiser state of this network ({e})"),
            })?;
        Ok(())
    }

    fn exported(
        &self,
        run: &RunFolder,
        progress: &Progress<EpochMetrics, EpochLoss>,
    ) -> Result<(), AttackError> {
        write_curves(&run.curves(), &progress.history)
    }
}

/// Trains (or resumes) the attacker of `run` (configured by `config`) on `train`, validated on
/// `val` after every epoch, until the budget is spent. Every random choice derives from (seed,
/// step), so a resumed run continues exactly where the checkpoint left it.
pub fn train(
    run: &RunFolder,
    config: &RunConfig,
    train: &[Prepared],
    val: &[Prepared],
    device: &Device,
    observer: &mut dyn Observer<EpochMetrics>,
) -> Result<Progress<EpochMetrics, EpochLoss>, AttackError> {
    let mut trainee = AttackTrainee::new(config, train, val, device)?;
    let t = &config.training;
    let trainer = TrainerConfig {
        budget: t.budget,
        schedule: t.schedule,
        validate_every: trainee.steps_per_epoch(),
        checkpoint_seconds: t.checkpoint_seconds,
    };
    featleak_train::train(run, &trainer, &mut trainee, observer)
}

/// Draws `curves.svg`: training loss, validation SSIM and PSNR over the epochs.
pub fn write_curves(path: &Path, history: &[EpochMetrics]) -> Result<(), AttackError> {
    if history.is_empty() {
        return Ok(());
    }
    let max_epoch = history.last().map_or(1.0, |m| m.epoch as f64).max(1.0);
    let series = |name: &str, f: fn(&EpochMetrics) -> f64| Series {
        name: name.into(),
        points: history.iter().map(|m| (m.epoch as f64, f(m))).collect(),
    };
    let axes = Axes {
        title: "Training",
        x_label: "epoch",
        y_label: "value",
        x: 0.0..max_epoch,
        y: 0.0..1.0,
    };
    let svg = line_plot_svg(
        &axes,
        &[
            series("train loss", |m| m.train_loss),
            series("val SSIM", |m| m.val_ssim),
            series("val PSNR / 40 dB", |m| m.val_psnr / 40.0),
        ],
    )
    .map_err(|e| AttackError::Recipe(format!("cannot draw {}: {e}", path.display())))?;
    Ok(featleak_datasets::files::write_bytes(path, svg.as_bytes())?)
}
