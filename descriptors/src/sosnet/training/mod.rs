//! Self-supervised SOSNet training: patch pairs mined from photos under random homographies
//! ([`pairs`]), the SOS loss ([`loss`]), Adam with warm-up and cosine decay, validation matching
//! accuracy on pairs from held-out photos, atomic checkpoints and exact resumption (every random
//! choice derives from (seed, step)). The trained network is written as a SOSNet32x32 state_dict
//! in safetensors format, loadable by [`crate::sosnet::Sosnet::load`] and by PyTorch.

pub mod loss;
pub mod net;
pub mod pairs;

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::store::ModuleRecord;
use ndarray::Array3;
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::sosnet::Sosnet;
use crate::sosnet::model::PATCH_SIZE;
use featleak_datasets::atomic::{write_bytes_atomic, write_json_atomic};
use featleak_datasets::schedule::{self, rng};
pub use loss::{SosLossConfig, sos_loss};
pub use net::{RunningStats, SosnetTrainable, dropout_mask};
pub use pairs::{PairConfig, PatchPairs, mine_pairs};

/// Everything a descriptor-training run depends on; a run folder holds exactly one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DescriptorTrainConfig {
    /// Training photos (their order fixes the pairs).
    pub images: Vec<PathBuf>,
    /// Photos held out for validation pairs.
    pub val_images: Vec<PathBuf>,
    pub pairs: PairConfig,
    pub loss: SosLossConfig,
    /// Pairs per step, each from a different photo when there are enough photos.
    pub batch_size: usize,
    pub steps: Option<u64>,
    pub minutes: Option<f64>,
    pub learning_rate: f64,
    pub warmup_steps: u64,
    /// Validate after every this many steps (and at the end).
    pub validate_every: u64,
    /// Validation pairs used at most.
    pub val_pairs: usize,
    /// Write a checkpoint at least this often (seconds).
    pub checkpoint_seconds: f64,
    pub seed: u64,
}

impl DescriptorTrainConfig {
    fn progress(&self, step: u64, seconds: f64) -> f64 {
        schedule::progress(self.steps, self.minutes, step, seconds)
    }

    fn learning_rate(&self, step: u64, seconds: f64) -> f64 {
        schedule::learning_rate(
            self.learning_rate,
            self.progress(step, seconds),
            step,
            self.warmup_steps,
        )
    }
}

/// One row of `metrics.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DescriptorMetrics {
    pub step: u64,
    pub seconds: f64,
    pub learning_rate: f64,
    /// Mean training loss since the previous row, and its two terms.
    pub loss: f64,
    pub first_order: f64,
    pub second_order: f64,
    /// Share of validation anchors whose nearest neighbour among the positives is their own.
    pub val_accuracy: f64,
}

/// What a checkpoint stores beside the weights; a resume trusts it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DescriptorTrainState {
    pub step: u64,
    pub seconds: f64,
    pub running: RunningStats,
    pub history: Vec<DescriptorMetrics>,
    /// Sums since the last metrics row: loss, first order, second order, steps.
    pub pending: (f64, f64, f64, u64),
}

/// The files of a descriptor-training run.
#[derive(Clone, Debug)]
pub struct TrainDir(pub PathBuf);

impl TrainDir {
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }
    pub fn state(&self) -> PathBuf {
        self.0.join("state.json")
    }
    pub fn model(&self) -> PathBuf {
        self.0.join("model.bin")
    }
    pub fn optimizer(&self) -> PathBuf {
        self.0.join("optimizer.bin")
    }
    pub fn metrics(&self) -> PathBuf {
        self.0.join("metrics.csv")
    }
    pub fn train_pairs(&self) -> PathBuf {
        self.0.join("pairs-train.bin")
    }
    pub fn val_pairs(&self) -> PathBuf {
        self.0.join("pairs-val.bin")
    }
    /// The trained network as a SOSNet32x32 state_dict (safetensors), rewritten at each checkpoint.
    pub fn weights(&self) -> PathBuf {
        self.0.join("sosnet.safetensors")
    }
}

/// Reports progress to the caller.
pub trait TrainObserver {
    /// Pair mining is about to start on `photos` photos (the `tick` given to [`train`] then
    /// counts them off).
    fn mining(&mut self, photos: usize);
    fn step(&mut self, step: u64, loss: f64, seconds: f64);
    fn validated(&mut self, metrics: &DescriptorMetrics);
    /// Asked after every step: `true` ends training early with a checkpoint (e.g. on Ctrl-C).
    fn stop_requested(&self) -> bool {
        false
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    write_json_atomic(path, value).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Loads the pairs cached in `path`, or mines them from `photos` and caches them.
fn cached_pairs(
    path: &Path,
    photos: &[PathBuf],
    config: &DescriptorTrainConfig,
    stream: u64,
    observer: &mut dyn TrainObserver,
    tick: &(dyn Fn() + Sync),
) -> Result<PatchPairs, String> {
    if path.exists() {
        let bytes =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        return PatchPairs::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()));
    }
    observer.mining(photos.len());
    let pairs = mine_pairs(photos, &config.pairs, config.seed ^ stream, tick)?;
    write_bytes_atomic(path, &pairs.to_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(pairs)
}

/// The pairs of `step`: `batch` photos drawn without replacement when possible (so that no two
/// pairs of a batch show the same place), one random pair of each, randomly flipped/rotated by a
/// multiple of 90° and with the two sides randomly swapped.
fn batch(
    pairs: &PatchPairs,
    by_image: &[Vec<usize>],
    seed: u64,
    step: u64,
    batch: usize,
) -> (Vec<f32>, Vec<f32>) {
    let mut r = rng(seed, 2_000_000 + step);
    let mut photos: Vec<usize> = (0..by_image.len()).collect();
    photos.shuffle(&mut r);
    let (mut a, mut p) = (
        Vec::with_capacity(batch * 1024),
        Vec::with_capacity(batch * 1024),
    );
    for k in 0..batch {
        let list = &by_image[photos[k % photos.len()]];
        let i = list[r.random_range(0..list.len())];
        let (transform, swap) = (r.random_range(0..8u8), r.random::<bool>());
        let (s0, s1) = if swap { (1, 0) } else { (0, 1) };
        for (side, out) in [(s0, &mut a), (s1, &mut p)] {
            out.extend(transformed(pairs.patch(i, side), transform));
        }
    }
    (a, p)
}

/// One of the 8 symmetries of the square (flip, then rotation), as f32 in [0, 1].
fn transformed(patch: &[u8], t: u8) -> impl Iterator<Item = f32> + '_ {
    let n = PATCH_SIZE;
    (0..n * n).map(move |k| {
        let (mut y, mut x) = (k / n, k % n);
        if t & 4 != 0 {
            x = n - 1 - x;
        }
        for _ in 0..(t & 3) {
            (y, x) = (x, n - 1 - y);
        }
        patch[y * n + x] as f32 / 255.0
    })
}

/// Validation: the share of anchors whose nearest positive is their own, on at most `max` pairs
/// taken at an even stride through all of them (consecutive pairs come from the same photo, often
/// the same place seen in another view).
pub fn pair_accuracy(net: &Sosnet, pairs: &PatchPairs, max: usize) -> f64 {
    let n = pairs.len().min(max);
    if n == 0 {
        return 0.0;
    }
    let pick: Vec<usize> = (0..n).map(|k| k * pairs.len() / n).collect();
    let side = |s: usize| {
        let v: Vec<f32> = pick
            .iter()
            .flat_map(|&i| pairs.patch(i, s).iter().map(|&x| x as f32 / 255.0))
            .collect();
        net.describe(
            Array3::from_shape_vec((n, PATCH_SIZE, PATCH_SIZE), v)
                .expect("n patches")
                .view(),
        )
    };
    let (a, p) = (side(0), side(1));
    let sim = a.dot(&p.t());
    let correct = (0..n)
        .filter(|&i| {
            let row = sim.row(i);
            let best = (0..n)
                .max_by(|&x, &y| row[x].total_cmp(&row[y]))
                .expect("n > 0");
            best == i
        })
        .count();
    correct as f64 / n as f64
}

fn save_checkpoint(
    dir: &TrainDir,
    model: &SosnetTrainable,
    optim: &burn::optim::ModuleOptimizer,
    state: &DescriptorTrainState,
) -> Result<(), String> {
    let bytes = model
        .valid()
        .into_record()
        .into_bytes()
        .map_err(|e| format!("cannot serialise the model: {e}"))?;
    write_bytes_atomic(&dir.model(), &bytes)
        .map_err(|e| format!("cannot write {}: {e}", dir.model().display()))?;
    let bytes = optim
        .to_record()
        .into_bytes()
        .map_err(|e| format!("cannot serialise the optimiser: {e}"))?;
    write_bytes_atomic(&dir.optimizer(), &bytes)
        .map_err(|e| format!("cannot write {}: {e}", dir.optimizer().display()))?;
    model
        .valid()
        .to_weights(&state.running)
        .save_safetensors(&dir.weights())
        .map_err(|e| e.to_string())?;
    write_json(&dir.state(), state)
}

fn write_metrics(dir: &TrainDir, history: &[DescriptorMetrics]) -> Result<(), String> {
    let mut text =
        String::from("step,seconds,learning_rate,loss,first_order,second_order,val_accuracy\n");
    for m in history {
        text.push_str(&format!(
            "{},{:.1},{:.6e},{:.6},{:.6},{:.6},{:.4}\n",
            m.step,
            m.seconds,
            m.learning_rate,
            m.loss,
            m.first_order,
            m.second_order,
            m.val_accuracy
        ));
    }
    write_bytes_atomic(&dir.metrics(), text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", dir.metrics().display()))
}

/// Trains (or resumes) SOSNet in `dir` until the budget of `config` is spent, on an autodiff
/// `device`. `tick` is called once per photo while mining pairs.
pub fn train(
    dir: &TrainDir,
    config: &DescriptorTrainConfig,
    device: &Device,
    observer: &mut dyn TrainObserver,
    tick: &(dyn Fn() + Sync),
) -> Result<DescriptorTrainState, String> {
    if config.steps.is_none() && config.minutes.is_none() {
        return Err("give a training budget: steps, minutes or both".into());
    }
    let train_pairs = cached_pairs(
        &dir.train_pairs(),
        &config.images,
        config,
        1,
        observer,
        tick,
    )?;
    if train_pairs.is_empty() {
        return Err(
            "no patch pairs could be mined from the training photos (too small or too flat?)"
                .into(),
        );
    }
    let val_pairs = cached_pairs(
        &dir.val_pairs(),
        &config.val_images,
        config,
        2,
        observer,
        tick,
    )?;
    let mut by_image: Vec<Vec<usize>> = vec![Vec::new(); config.images.len()];
    for (i, &img) in train_pairs.image.iter().enumerate() {
        by_image[img as usize].push(i);
    }
    by_image.retain(|v| !v.is_empty());

    let mut model = SosnetTrainable::init(&mut rng(config.seed, 1), device);
    let mut optim = AdamConfig::new().with_epsilon(1e-8).init();
    let mut state = DescriptorTrainState {
        step: 0,
        seconds: 0.0,
        running: RunningStats::initial(),
        history: Vec::new(),
        pending: (0.0, 0.0, 0.0, 0),
    };
    if dir.state().exists() {
        let text = std::fs::read_to_string(dir.state())
            .map_err(|e| format!("cannot read {}: {e}", dir.state().display()))?;
        state = serde_json::from_str(&text).map_err(|e| {
            format!(
                "{}: not a descriptor-training state ({e})",
                dir.state().display()
            )
        })?;
        let bytes = std::fs::read(dir.model())
            .map_err(|e| format!("cannot read {}: {e}", dir.model().display()))?;
        let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| format!("{}: not a SOSNet checkpoint ({e})", dir.model().display()))?;
        model = model
            .try_load_record(record)
            .map_err(|e| format!("{}: not a SOSNet checkpoint ({e})", dir.model().display()))?;
        let bytes = std::fs::read(dir.optimizer())
            .map_err(|e| format!("cannot read {}: {e}", dir.optimizer().display()))?;
        optim = optim
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| format!("{}: {e}", dir.optimizer().display()))?;
    }

    let n = config.batch_size;
    let session = Instant::now();
    let start_seconds = state.seconds;
    let mut last_checkpoint = Instant::now();
    while config.progress(state.step, state.seconds) < 1.0 {
        let lr = config.learning_rate(state.step, state.seconds);
        let (a, p) = batch(&train_pairs, &by_image, config.seed, state.step, n);
        let x = Tensor::<4>::from_data(
            TensorData::new([a, p].concat(), [2 * n, 1, PATCH_SIZE, PATCH_SIZE]),
            device,
        );
        let mask = dropout_mask(2 * n, &mut rng(config.seed, 3_000_000 + state.step), device);
        let d = model.forward_train(x, mask, &mut state.running);
        let (da, dp) = (d.clone().narrow(0, 0, n), d.narrow(0, n, n));
        let l = sos_loss(da, dp, &config.loss);
        let value = l.first_order + config.loss.sos_weight as f64 * l.second_order;
        if !value.is_finite() {
            return Err(format!(
                "the loss became {value} at step {}; lower the learning rate",
                state.step
            ));
        }
        let grads = GradientsParams::from_grads(l.total.backward(), &model);
        model = optim.step(lr, model, grads);
        state.step += 1;
        state.seconds = start_seconds + session.elapsed().as_secs_f64();
        state.pending.0 += value;
        state.pending.1 += l.first_order;
        state.pending.2 += l.second_order;
        state.pending.3 += 1;
        observer.step(state.step, value, state.seconds);

        let finished = config.progress(state.step, state.seconds) >= 1.0;
        if finished || state.step.is_multiple_of(config.validate_every.max(1)) {
            let net =
                Sosnet::from_weights(&model.valid().to_weights(&state.running), Device::flex());
            let k = state.pending.3.max(1) as f64;
            let m = DescriptorMetrics {
                step: state.step,
                seconds: state.seconds,
                learning_rate: lr,
                loss: state.pending.0 / k,
                first_order: state.pending.1 / k,
                second_order: state.pending.2 / k,
                val_accuracy: pair_accuracy(&net, &val_pairs, config.val_pairs),
            };
            state.pending = (0.0, 0.0, 0.0, 0);
            state.history.push(m);
            observer.validated(&m);
            write_metrics(dir, &state.history)?;
            save_checkpoint(dir, &model, &optim, &state)?;
            last_checkpoint = Instant::now();
        } else if observer.stop_requested()
            || last_checkpoint.elapsed().as_secs_f64() >= config.checkpoint_seconds
        {
            save_checkpoint(dir, &model, &optim, &state)?;
            last_checkpoint = Instant::now();
        }
        if observer.stop_requested() {
            break;
        }
    }
    Ok(state)
}
