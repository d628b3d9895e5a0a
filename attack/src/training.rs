//! Training the inversion network: Adam with warm-up and cosine decay, L1 + (1 − SSIM) loss,
//! step-seeded batches with random scale/crop/mirror augmentation and random keypoint shares,
//! validation PSNR/SSIM after every epoch, atomic checkpoints and exact resumption.

use crate::data::{Batch, Prepared, centre_view, make_batch, random_view, reveal_items};
use crate::loss::l1_ssim_loss;
use crate::model::{UNet, UNetConfig};
use crate::run::{EpochMetrics, RunDir, TrainState, write_bytes, write_json};
use crate::sparse_conv::SparseBatch;
use crate::threat::{Share, ThreatModel};
use burn::module::Module;
use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::store::ModuleRecord;
use featleak_datasets::schedule::{learning_rate, progress, rng};
use featleak_eval::score_report::{MeanScores, score_images};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How long and how to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    pub network: UNetConfig,
    /// Stop after this many optimiser steps (with `minutes`, whichever comes first).
    pub steps: Option<u64>,
    /// Stop after this many minutes of training (summed over resumed sessions).
    pub minutes: Option<f64>,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub warmup_steps: u64,
    /// Write a checkpoint at least this often (seconds).
    pub checkpoint_seconds: f64,
    pub seed: u64,
}

impl TrainConfig {
    /// Training progress in [0, 1] for the schedule: the larger of the step and time fractions.
    fn progress(&self, step: u64, seconds: f64) -> f64 {
        progress(self.steps, self.minutes, step, seconds)
    }

    fn learning_rate(&self, step: u64, seconds: f64) -> f64 {
        learning_rate(
            self.learning_rate,
            self.progress(step, seconds),
            step,
            self.warmup_steps,
        )
    }
}

/// Moves a host batch onto `device` as the network's sparse input and B×3×H×W targets.
pub fn to_device(batch: &Batch, device: &Device) -> Result<(SparseBatch, Tensor<4>), String> {
    let sparse = SparseBatch::from_host(
        batch.size,
        batch.height,
        batch.width,
        batch.channels,
        batch.values.clone(),
        batch.pixel_index.clone(),
        device,
    )
    .map_err(|e| e.to_string())?;
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
) -> Result<(MeanScores, Vec<RgbImage>), String> {
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
            let s = score_images(target, &out).map_err(|e| e.to_string())?;
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

/// Saves model, optimiser and state, atomically each; the state goes last and is what a resume
/// trusts.
fn save_checkpoint(
    run: &RunDir,
    model: &UNet,
    optim: &burn::optim::ModuleOptimizer,
    state: &TrainState,
) -> Result<(), String> {
    let bytes = model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| format!("cannot serialise the model: {e}"))?;
    write_bytes(&run.model(), &bytes)?;
    let bytes = optim
        .to_record()
        .into_bytes()
        .map_err(|e| format!("cannot serialise the optimiser: {e}"))?;
    write_bytes(&run.optimizer(), &bytes)?;
    write_json(&run.state(), state)
}

/// Loads a network saved by a checkpoint; the error names the file and says when it belongs to
/// another architecture.
pub fn load_model(run: &RunDir, config: &UNetConfig, device: &Device) -> Result<UNet, String> {
    let path = run.model();
    let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| format!("{}: not a featleak model ({e})", path.display()))?;
    config
        .init(device)
        .map_err(|e| e.to_string())?
        .try_load_record(record)
        .map_err(|e| {
            format!(
                "{}: weights for another network than {config:?} ({e})",
                path.display()
            )
        })
}

/// One optimiser step at `step` of a run seeded `seed`: a seeded batch of random views of
/// `train`, keypoints revealed with `share`. Returns the updated model and the batch loss.
#[allow(clippy::too_many_arguments)]
fn optimise(
    model: UNet,
    optim: &mut burn::optim::ModuleOptimizer,
    threat: &ThreatModel,
    train: &[Prepared],
    share: Share,
    (seed, step, batch_size): (u64, u64, usize),
    lr: f64,
    device: &Device,
) -> Result<(UNet, f64), String> {
    let mut r = rng(seed, 1_000_000 + step);
    let views = crate::run::batch_indices(seed, step, batch_size, train.len())
        .into_iter()
        .map(|i| train[i].view(&random_view(threat, &mut r)))
        .collect();
    let items = reveal_items(views, threat, share, &mut r);
    let batch = make_batch(&items, &threat.sparse_map());
    let (input, target) = to_device(&batch, device)?;
    let loss = l1_ssim_loss(model.forward(&input), target);
    let loss_value: f64 = loss.clone().into_scalar::<f32>() as f64;
    if !loss_value.is_finite() {
        return Err(format!(
            "the loss became {loss_value} at step {step}; lower the learning rate"
        ));
    }
    let grads = GradientsParams::from_grads(loss.backward(), &model);
    Ok((optim.step(lr, model, grads), loss_value))
}

/// How an attacker adapts to a mitigation: a short fine-tune on features mitigated the same way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FineTuneConfig {
    pub steps: u64,
    pub batch_size: usize,
    pub learning_rate: f64,
    pub seed: u64,
}

/// An independent copy of `model` (a `clone` shares the batch-norm running statistics, which
/// training then updates in both).
pub fn deep_copy(model: &UNet, network: &UNetConfig, device: &Device) -> Result<UNet, String> {
    let bytes = model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| format!("cannot serialise the model: {e}"))?;
    let record =
        ModuleRecord::from_bytes(bytes).map_err(|e| format!("cannot copy the model: {e}"))?;

    network
        .init(device)
        .map_err(|e| e.to_string())?
        .try_load_record(record)
        .map_err(|e| format!("cannot copy the model: {e}"))
}

/// A fine-tuned copy of `model` (`network` is its architecture; `model` itself is left as it
/// is), trained on an autodiff `device` on `train`, whose features are already what the victim
/// reveals (e.g. mitigated): every keypoint of them is shown. Adam from a fresh state, warm-up
/// over the first tenth of the steps, then cosine decay.
pub fn fine_tune(
    model: &UNet,
    network: &UNetConfig,
    threat: &ThreatModel,
    train: &[Prepared],
    config: &FineTuneConfig,
    device: &Device,
) -> Result<UNet, String> {
    if train.is_empty() {
        return Err("no images to fine-tune on".into());
    }
    let mut model = deep_copy(model, network, device)?;

    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    for step in 0..config.steps {
        let lr = learning_rate(
            config.learning_rate,
            step as f64 / config.steps.max(1) as f64,
            step,
            (config.steps / 10).max(1),
        );
        (model, _) = optimise(
            model,
            &mut optim,
            threat,
            train,
            Share::fixed(1.0),
            (config.seed, step, config.batch_size),
            lr,
            device,
        )?;
    }
    Ok(model)
}

/// Reports training progress to the caller (progress bars, logs).
pub trait Observer {
    fn step(&mut self, step: u64, loss: f64, learning_rate: f64, seconds: f64);
    fn epoch(&mut self, metrics: &EpochMetrics);
    /// Asked after every step: `true` ends training there, with a checkpoint of that step
    /// (e.g. on Ctrl-C), so a resume loses nothing.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// Trains (or resumes) the network in `run` on `train` (validated on `val`) until the budget of
/// `config` is spent. Every random choice derives from (seed, step), so a resumed run continues
/// exactly where the checkpoint left it.
pub fn train(
    run: &RunDir,
    threat: &ThreatModel,
    config: &TrainConfig,
    train: &[Prepared],
    val: &[Prepared],
    device: &Device,
    observer: &mut dyn Observer,
) -> Result<TrainState, String> {
    if config.steps.is_none() && config.minutes.is_none() {
        return Err("give a training budget: steps, minutes or both".into());
    }
    if train.is_empty() {
        return Err("no training images".into());
    }
    // Parameter initialisation draws from the backend's generator: seed it.
    device.seed(config.seed);
    let mut model = config.network.init(device).map_err(|e| e.to_string())?;

    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut state = TrainState {
        step: 0,
        seconds: 0.0,
        history: Vec::new(),
        epoch_loss: (0.0, 0),
    };
    if let Some(saved) = run.load_state()? {
        model = load_model(run, &config.network, device)?;
        let bytes = std::fs::read(run.optimizer())
            .map_err(|e| format!("cannot read {}: {e}", run.optimizer().display()))?;
        optim = optim
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| format!("{}: {e}", run.optimizer().display()))?;
        state = saved;
    }
    let steps_per_epoch = (train.len() / config.batch_size).max(1) as u64;
    let mut last_checkpoint = Instant::now();
    let session = Instant::now();
    let start_seconds = state.seconds;
    while config.progress(state.step, state.seconds) < 1.0 {
        let lr = config.learning_rate(state.step, state.seconds);
        let loss_value;
        (model, loss_value) = optimise(
            model,
            &mut optim,
            threat,
            train,
            threat.train_share,
            (config.seed, state.step, config.batch_size),
            lr,
            device,
        )?;
        state.step += 1;

        state.seconds = start_seconds + session.elapsed().as_secs_f64();
        state.epoch_loss.0 += loss_value;
        state.epoch_loss.1 += 1;
        observer.step(state.step, loss_value, lr, state.seconds);

        let epoch_done = state.step.is_multiple_of(steps_per_epoch);
        let finished = config.progress(state.step, state.seconds) >= 1.0;
        if epoch_done || finished {
            let (val, _) = evaluate(&model, val, threat, (config.batch_size, 0), device)?;
            let m = EpochMetrics {
                epoch: state.step.div_ceil(steps_per_epoch),
                step: state.step,
                seconds: state.seconds,
                learning_rate: lr,
                train_loss: state.epoch_loss.0 / state.epoch_loss.1.max(1) as f64,
                val_psnr: val.psnr,
                val_ssim: val.ssim,
            };
            if epoch_done {
                state.epoch_loss = (0.0, 0);
            }
            state.history.push(m);
            observer.epoch(&m);
            run.write_metrics(&state.history)?;
        }
        let stop = observer.stop_requested();
        if epoch_done
            || finished
            || stop
            || last_checkpoint.elapsed().as_secs_f64() >= config.checkpoint_seconds
        {
            save_checkpoint(run, &model, &optim, &state)?;
            last_checkpoint = Instant::now();
        }
        if stop {
            break;
        }
    }
    Ok(state)
}
