//! Self-supervised SOSNet training: patch pairs mined from photos under random homographies
//! ([`pairs`]), the SOS loss ([`loss`]), Adam with warm-up and cosine decay, validation matching
//! accuracy on pairs from held-out photos, atomic checkpoints and exact resumption (every random
//! choice derives from (seed, step)). The trained network is written as a SOSNet32x32 state_dict
//! in safetensors format, loadable by [`crate::sosnet::Sosnet::load`] and by PyTorch.

pub mod loss;
pub mod net;
pub mod pairs;

use featleak_datasets::FileError;
use std::path::{Path, PathBuf};

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use burn::store::ModuleRecord;
use featleak_train::trainer::At;
use featleak_train::{
    Budget, MetricsRow, Observer, Progress, RunFolder, Schedule, Trainee, TrainerConfig,
};
use ndarray::Array3;
use rand::Rng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::DescriptorError;
use crate::sosnet::Sosnet;
use crate::sosnet::model::PATCH_SIZE;
use featleak_datasets::schedule::rng;
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
    /// How patch pairs are mined from the photos.
    pub pairs: PairConfig,
    /// The SOS loss's settings.
    pub loss: SosLossConfig,
    /// Pairs per step, each from a different photo when there are enough photos.
    pub batch_size: usize,
    /// When training ends (may be extended on resume).
    pub budget: Budget,
    /// Adam's learning rate over the budget.
    pub schedule: Schedule,
    /// Validate after every this many steps (and at the end).
    pub validate_every: u64,
    /// Validation pairs used at most.
    pub val_pairs: usize,
    /// Write a checkpoint at least this often (seconds).
    pub checkpoint_seconds: f64,
    /// Seed of every random choice: initial weights, pair mining, batches, dropout.
    pub seed: u64,
}

/// What a new SOSNet training run is asked for; the rest (validation split, warm-up, checkpoint
/// period, validation pairs) is decided by [`DescriptorTrainConfig::new`].
#[derive(Clone, Debug)]
pub struct SosnetRecipe {
    /// Training photos (searched recursively).
    pub images: PathBuf,
    /// Photos for validation pairs (default: 5 % of `images`, seeded).
    pub val_images: Option<PathBuf>,
    /// When training ends.
    pub budget: Budget,
    /// Patch pairs per step (at least 2: the other pairs of a batch are the negatives).
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// Random views (homographies) per photo when mining pairs.
    pub views: usize,
    /// Validate (and checkpoint) every this many steps.
    pub validate_every: u64,
    /// The run's seed.
    pub seed: u64,
}

impl DescriptorTrainConfig {
    /// The configuration of a new run: photos listed and split, the defaults filled in.
    pub fn new(recipe: &SosnetRecipe) -> Result<Self, DescriptorError> {
        recipe.budget.validate()?;
        let schedule = Schedule {
            peak: recipe.learning_rate,
            warmup_steps: 50,
        };
        schedule.validate()?;
        let list = |dir: &Path| -> Result<Vec<PathBuf>, DescriptorError> {
            let found = featleak_datasets::find_images(dir)
                .map_err(FileError::io("list images in", dir))?;
            if found.is_empty() {
                return Err(DescriptorError::NoImages(dir.to_path_buf()));
            }
            Ok(found)
        };
        let all = list(&recipe.images)?;
        let (images, val_images) = match &recipe.val_images {
            Some(dir) => (all, list(dir)?),
            None => {
                if all.len() < 2 {
                    return Err(DescriptorError::Folder {
                        folder: recipe.images.clone(),
                        problem: format!(
                            "too few photos to hold some out for validation ({}); pass --val-images",
                            all.len()
                        ),
                    });
                }
                // 5 % of the photos (at least one), chosen with the seed.
                let mut order = all;
                order.shuffle(&mut rng(recipe.seed, 9));
                let val = order.split_off(order.len() - order.len().div_ceil(20));
                (order, val)
            }
        };
        if recipe.batch_size < 2 {
            return Err(DescriptorError::Folder {
                folder: recipe.images.clone(),
                problem: "--batch-size must be at least 2 (in-batch negatives)".into(),
            });
        }
        Ok(Self {
            images,
            val_images,
            pairs: PairConfig {
                views_per_image: recipe.views,
                ..Default::default()
            },
            loss: SosLossConfig::default(),
            batch_size: recipe.batch_size,
            budget: recipe.budget,
            schedule,
            validate_every: recipe.validate_every,
            val_pairs: 1000,
            checkpoint_seconds: 60.0,
            seed: recipe.seed,
        })
    }
}

/// One row of `metrics.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct DescriptorMetrics {
    /// Steps done.
    pub step: u64,
    /// Seconds of training so far.
    pub seconds: f64,
    /// Learning rate of the last step.
    pub learning_rate: f64,
    /// Mean training loss since the previous row, and its two terms.
    pub loss: f64,
    /// Mean first-order (triplet) term.
    pub first_order: f64,
    /// Mean second-order term (unweighted).
    pub second_order: f64,
    /// Share of validation anchors whose nearest neighbour among the positives is their own.
    pub val_accuracy: f64,
}

impl MetricsRow for DescriptorMetrics {
    const HEADER: &'static str =
        "step,seconds,learning_rate,loss,first_order,second_order,val_accuracy";
    fn csv_row(&self) -> String {
        format!(
            "{},{:.1},{:.6e},{:.6},{:.6},{:.6},{:.4}",
            self.step,
            self.seconds,
            self.learning_rate,
            self.loss,
            self.first_order,
            self.second_order,
            self.val_accuracy
        )
    }
}

/// What a checkpoint stores beside the weights and the optimiser.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DescriptorTrainState {
    /// Batch-norm running statistics.
    pub running: RunningStats,
    /// Sums since the last metrics row: loss, first order, second order, steps.
    pub pending: (f64, f64, f64, u64),
}

/// The SOSNet trainer's files in a run folder besides the skeleton's.
pub trait SosnetRun {
    /// Patch pairs mined from the training photos (a cache).
    fn train_pairs(&self) -> PathBuf;
    /// Patch pairs mined from the validation photos (a cache).
    fn val_pairs(&self) -> PathBuf;
    /// The trained network as a SOSNet32x32 state_dict (safetensors), rewritten after each
    /// checkpoint.
    fn weights(&self) -> PathBuf;
}

impl SosnetRun for RunFolder {
    fn train_pairs(&self) -> PathBuf {
        self.root().join("pairs-train.bin")
    }
    fn val_pairs(&self) -> PathBuf {
        self.root().join("pairs-val.bin")
    }
    fn weights(&self) -> PathBuf {
        self.root().join("sosnet.safetensors")
    }
}

/// Hears how pair mining goes.
pub trait MiningObserver: Sync {
    /// Mining is about to start on `photos` photos.
    fn start(&self, _photos: usize) {}
    /// One photo is done.
    fn photo_done(&self) {}
}

impl MiningObserver for () {}

/// Loads the pairs cached in `path`, or mines them from `photos` and caches them.
fn cached_pairs(
    path: &Path,
    photos: &[PathBuf],
    config: &DescriptorTrainConfig,
    stream: u64,
    mining: &dyn MiningObserver,
) -> Result<PatchPairs, DescriptorError> {
    if path.exists() {
        let bytes = std::fs::read(path).map_err(FileError::io("read", path))?;
        return PatchPairs::from_bytes(path, &bytes);
    }
    mining.start(photos.len());
    let pairs = mine_pairs(photos, &config.pairs, config.seed ^ stream, &|| {
        mining.photo_done()
    })?;
    featleak_datasets::files::write_bytes(path, &pairs.to_bytes())?;
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

/// SOSNet as the training skeleton sees it.
struct SosnetTrainee<'a> {
    model: Option<SosnetTrainable>,
    optim: burn::optim::ModuleOptimizer,
    config: &'a DescriptorTrainConfig,
    train_pairs: PatchPairs,
    val_pairs: PatchPairs,
    by_image: Vec<Vec<usize>>,
    device: &'a Device,
}

const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";

impl SosnetTrainee<'_> {
    fn model(&self) -> &SosnetTrainable {
        self.model
            .as_ref()
            .expect("the model is only taken during a step")
    }
}

impl Trainee for SosnetTrainee<'_> {
    type State = DescriptorTrainState;
    type Metrics = DescriptorMetrics;
    type Error = DescriptorError;

    fn initial_state(&self) -> DescriptorTrainState {
        DescriptorTrainState {
            running: RunningStats::initial(),
            pending: (0.0, 0.0, 0.0, 0),
        }
    }

    fn step(
        &mut self,
        step: u64,
        lr: f64,
        state: &mut DescriptorTrainState,
    ) -> Result<f64, DescriptorError> {
        let (config, device) = (self.config, self.device);
        let n = config.batch_size;
        let (a, p) = batch(&self.train_pairs, &self.by_image, config.seed, step, n);
        let x = Tensor::<4>::from_data(
            TensorData::new([a, p].concat(), [2 * n, 1, PATCH_SIZE, PATCH_SIZE]),
            device,
        );
        let mask = dropout_mask(2 * n, &mut rng(config.seed, 3_000_000 + step), device);
        let model = self.model.take().expect("a model between steps");
        let d = model.forward_train(x, mask, &mut state.running);
        let (da, dp) = (d.clone().narrow(0, 0, n), d.narrow(0, n, n));
        let l = sos_loss(da, dp, &config.loss);
        let value = l.first_order + config.loss.sos_weight as f64 * l.second_order;
        if !value.is_finite() {
            // The skeleton reports it; the update is not made.
            self.model = Some(model);
            return Ok(value);
        }
        let grads = GradientsParams::from_grads(l.total.backward(), &model);
        self.model = Some(self.optim.step(lr, model, grads));
        state.pending.0 += value;
        state.pending.1 += l.first_order;
        state.pending.2 += l.second_order;
        state.pending.3 += 1;
        Ok(value)
    }

    fn validate(
        &mut self,
        at: At,
        state: &mut DescriptorTrainState,
    ) -> Result<DescriptorMetrics, DescriptorError> {
        let net = Sosnet::from_weights(
            &self.model().valid().to_weights(&state.running),
            Device::flex(),
        );
        let k = state.pending.3.max(1) as f64;
        let m = DescriptorMetrics {
            step: at.step,
            seconds: at.seconds,
            learning_rate: at.learning_rate,
            loss: state.pending.0 / k,
            first_order: state.pending.1 / k,
            second_order: state.pending.2 / k,
            val_accuracy: pair_accuracy(&net, &self.val_pairs, self.config.val_pairs),
        };
        state.pending = (0.0, 0.0, 0.0, 0);
        Ok(m)
    }

    fn save(&self, folder: &Path, _: &DescriptorTrainState) -> Result<(), DescriptorError> {
        let serialise = |what: &'static str| {
            move |e: burn::store::RecordError| DescriptorError::Serialise {
                what,
                problem: e.to_string(),
            }
        };
        let bytes = self
            .model()
            .valid()
            .into_record()
            .into_bytes()
            .map_err(serialise("model"))?;
        let path = folder.join(MODEL);
        std::fs::write(&path, &*bytes).map_err(FileError::io("write", &path))?;
        let bytes = self
            .optim
            .to_record()
            .into_bytes()
            .map_err(serialise("optimiser"))?;
        let path = folder.join(OPTIMIZER);
        Ok(std::fs::write(&path, &*bytes).map_err(FileError::io("write", &path))?)
    }

    fn load(&mut self, folder: &Path, _: &DescriptorTrainState) -> Result<(), DescriptorError> {
        let checkpoint = |path: &Path, e: String| DescriptorError::Checkpoint {
            path: path.to_path_buf(),
            problem: format!("not a SOSNet checkpoint ({e})"),
        };
        let path = folder.join(MODEL);
        let bytes = std::fs::read(&path).map_err(FileError::io("read", &path))?;
        let record = ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| checkpoint(&path, e.to_string()))?;
        let model = self.model.take().expect("a model between steps");
        self.model = Some(
            model
                .try_load_record(record)
                .map_err(|e| checkpoint(&path, e.to_string()))?,
        );
        let path = folder.join(OPTIMIZER);
        let bytes = std::fs::read(&path).map_err(FileError::io("read", &path))?;
        self.optim = AdamConfig::new()
            .with_epsilon(1e-8)
            .init()
            .from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
            .map_err(|e| checkpoint(&path, e.to_string()))?;
        Ok(())
    }

    fn exported(
        &self,
        run: &RunFolder,
        progress: &Progress<DescriptorMetrics, DescriptorTrainState>,
    ) -> Result<(), DescriptorError> {
        self.model()
            .valid()
            .to_weights(&progress.task.running)
            .save_safetensors(&run.weights())?;
        Ok(())
    }
}

/// Trains (or resumes) SOSNet in `run` until the budget of `config` is spent, on an autodiff
/// `device`; pairs are mined first (and cached in the run folder).
pub fn train(
    run: &RunFolder,
    config: &DescriptorTrainConfig,
    device: &Device,
    observer: &mut dyn Observer<DescriptorMetrics>,
    mining: &dyn MiningObserver,
) -> Result<Progress<DescriptorMetrics, DescriptorTrainState>, DescriptorError> {
    config.budget.validate()?;
    let train_pairs = cached_pairs(&run.train_pairs(), &config.images, config, 1, mining)?;
    if train_pairs.is_empty() {
        return Err(DescriptorError::NoPairs);
    }
    let val_pairs = cached_pairs(&run.val_pairs(), &config.val_images, config, 2, mining)?;
    let mut by_image: Vec<Vec<usize>> = vec![Vec::new(); config.images.len()];
    for (i, &img) in train_pairs.image.iter().enumerate() {
        by_image[img as usize].push(i);
    }
    by_image.retain(|v| !v.is_empty());

    let mut trainee = SosnetTrainee {
        model: Some(SosnetTrainable::init(&mut rng(config.seed, 1), device)),
        optim: AdamConfig::new().with_epsilon(1e-8).init(),
        config,
        train_pairs,
        val_pairs,
        by_image,
        device,
    };
    let trainer = TrainerConfig {
        budget: config.budget,
        schedule: config.schedule,
        validate_every: config.validate_every,
        checkpoint_seconds: config.checkpoint_seconds,
    };
    featleak_train::train(run, &trainer, &mut trainee, observer)
}
