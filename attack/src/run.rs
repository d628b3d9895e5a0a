//! An attacker's run folder and its recipe: `run.json` (tool version, threat model, network and
//! training configuration, seed, image lists; written once, checked on resume), the checkpoint
//! (`model.bpk`, `optimizer.bpk`, `state.json`: one atomic unit, see [`featleak_train`]),
//! `metrics.csv`, `curves.svg` and the feature cache.

use crate::AttackError;
use crate::loss::LossConfig;
use crate::model::{InputEncoding, UNetConfig};
use crate::threat::{Share, ThreatModel};
use crate::zoo::AttackerSource;
use featleak_datasets::FileError;
use featleak_datasets::{GrayConversion, SplitFractions, find_named_images, split_seeded};
use featleak_descriptors::ExtractorConfig;
use featleak_train::{Budget, MetricsRow, RunFolder, Schedule, TrainError};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The model's file in a checkpoint.
pub const MODEL: &str = "model.bpk";
/// The optimiser's file in a checkpoint.
pub const OPTIMIZER: &str = "optimizer.bpk";

/// How long and how to train.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The inversion network.
    pub network: UNetConfig,
    /// When training ends (may be extended on resume).
    pub budget: Budget,
    /// Adam's learning rate over the budget.
    pub schedule: Schedule,
    /// Images per step.
    pub batch_size: usize,
    /// The loss (runs written before this field: L1 + (1 − SSIM)).
    #[serde(default)]
    pub loss: LossConfig,
    /// The attacker whose weights the network starts from (a run folder or `zoo:NAME`); none:
    /// freshly initialised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init: Option<String>,
    /// Write a checkpoint at least this often (seconds).
    pub checkpoint_seconds: f64,
    /// Seed of the initial weights, the batches, the augmentations and the keypoint shares.
    pub seed: u64,
}

/// `run.json`: everything needed to reproduce or resume the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// "featleak".
    pub tool: String,
    /// The featleak version that wrote the run.
    pub version: String,
    /// What the victim reveals, and the resolutions.
    pub threat: ThreatModel,
    /// Network and training configuration.
    pub training: TrainConfig,
    /// Folder the training (and, without a separate one, validation) images come from.
    pub images_root: String,
    /// Training images, relative to `images_root`, without extension.
    pub train_images: Vec<String>,
    /// Validation images, likewise.
    pub val_images: Vec<String>,
    /// Folder of the validation images when they are not under `images_root`.
    #[serde(default)]
    pub val_root: Option<String>,
    /// Feature store (npz folder, hloc `.h5` or COLMAP `.db`) the training images' features are
    /// read from, when another pipeline made them (the threat model's extractor is then
    /// [`external`](featleak_descriptors::ExtractorConfig::external)); none: extracted by featleak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_features: Option<String>,
    /// Feature store of the validation images when it is not `train_features`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub val_features: Option<String>,
    /// Images that could not be used, with the reason.
    pub skipped: Vec<String>,
    /// Compute device of the latest training session (`cpu` or `wgpu`): an execution choice,
    /// recorded for the record and never checked, so a run resumes on any device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// Network sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkPreset {
    /// Widths 16–256: trains on a CPU.
    Cpu,
    /// Widths 64–1024, as in the seed paper.
    Paper,
}

/// What a new attacker run is asked for: the recipe's free choices. Everything else (the
/// validation split, warm-up, checkpoint period) is decided by [`RunConfig::new`].
#[derive(Clone, Debug)]
pub struct NewRun {
    /// Descriptor the victim sends (sift, freak, sosnet).
    pub descriptor: String,
    /// Threat model: a preset name or a TOML file.
    pub threat: String,
    /// The attacker's training images (searched recursively).
    pub images: PathBuf,
    /// Validation images (default: 10 % of `images`, seeded).
    pub val_images: Option<PathBuf>,
    /// Read the images' features from this store (any extractor's) instead of extracting them;
    /// `descriptor` and `gray` are then unused.
    pub train_features: Option<PathBuf>,
    /// The validation images' feature store (default: `train_features`).
    pub val_features: Option<PathBuf>,
    /// Side of the square reconstruction.
    pub size: u32,
    /// Side of the square the features are extracted from (default: twice `size`).
    pub feature_size: Option<u32>,
    /// Network size.
    pub network: NetworkPreset,
    /// First-level width override.
    pub width: Option<usize>,
    /// Number of poolings override.
    pub depth: Option<usize>,
    /// How the first layer reads the keypoints.
    pub input: InputEncoding,
    /// Whether the bottleneck gets the whole image's context.
    pub global_context: bool,
    /// Share of each training image's keypoints revealed; `None` keeps the threat model's.
    pub train_share: Option<Share>,
    /// How image files become grey for extraction; `None` keeps the threat model's.
    pub gray: Option<GrayConversion>,
    /// The loss.
    pub loss: LossConfig,
    /// Start from this attacker's weights (its network replaces `network`, `width`, `depth`,
    /// `input` and `global_context`; its threat model must reveal what this run's does, from
    /// the same extractor).
    pub init: Option<AttackerSource>,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate.
    pub learning_rate: f64,
    /// The run's seed.
    pub seed: u64,
    /// Use at most this many training images (0: all).
    pub max_images: usize,
    /// When training ends.
    pub budget: Budget,
}

impl NewRun {
    /// The default recipe (`featleak attack train` without options): a SIFT `desc+pos`
    /// attacker, 128² from 256² features, the CPU network with sparse input, L1 + (1 − SSIM),
    /// batch 8, peak learning rate [`DEFAULT_LEARNING_RATE`], seed 0, every image.
    pub fn defaults(images: PathBuf, budget: Budget) -> Self {
        Self {
            descriptor: "sift".into(),
            threat: "desc+pos".into(),
            images,
            val_images: None,
            train_features: None,
            val_features: None,
            size: 128,
            feature_size: None,
            network: NetworkPreset::Cpu,
            width: None,
            depth: None,
            input: InputEncoding::default(),
            global_context: false,
            train_share: None,
            gray: None,
            loss: LossConfig::default(),
            init: None,
            batch_size: 8,
            learning_rate: DEFAULT_LEARNING_RATE,
            seed: 0,
            max_images: 0,
            budget,
        }
    }
}

/// Peak learning rate of the default recipe (training from scratch).
pub const DEFAULT_LEARNING_RATE: f64 = 3e-3;

/// Steps of learning-rate warm-up of every attacker run.
pub const WARMUP_STEPS: u64 = 50;
/// Seconds between checkpoints at most.
pub const CHECKPOINT_SECONDS: f64 = 60.0;

impl RunConfig {
    /// The configuration of a new run: threat model resolved, network sized, images listed and
    /// split (10 % held out for validation, seeded, unless validation images are given).
    pub fn new(spec: &NewRun) -> Result<Self, AttackError> {
        spec.budget.validate()?;
        let schedule = Schedule {
            peak: spec.learning_rate,
            warmup_steps: WARMUP_STEPS,
        };
        schedule.validate()?;
        spec.loss.validate().map_err(AttackError::Recipe)?;
        if spec.batch_size == 0 {
            return Err(AttackError::Recipe(
                "the batch size must be at least 1".into(),
            ));
        }
        let mut threat = ThreatModel::resolve(&spec.threat, &spec.descriptor)?;
        threat.resolution = spec.size;
        threat.feature_resolution = spec.feature_size.unwrap_or(2 * spec.size);
        if let Some(gray) = spec.gray {
            threat.extractor.gray = gray;
        }
        if let Some(share) = spec.train_share {
            threat.train_share = share;
        }
        match (&spec.train_features, &spec.val_features) {
            (Some(store), _) => {
                if spec.gray.is_some() {
                    return Err(AttackError::Recipe(
                        "features read from a store are already extracted: a grey conversion \
                         does not apply to them"
                            .into(),
                    ));
                }
                threat.extractor = external_extractor(store)?;
            }
            (None, Some(_)) => {
                return Err(AttackError::Recipe(
                    "validation features are read from a store only when the training \
                     features are (give the training images' store too)"
                        .into(),
                ));
            }
            (None, None) => {}
        }
        threat.validate()?;
        let channels = threat
            .sparse_map()
            .channels(threat.extractor.descriptor.dimension());
        let mut network = match spec.network {
            NetworkPreset::Cpu => UNetConfig::cpu_default(channels),
            NetworkPreset::Paper => UNetConfig::paper(channels),
        };
        network.base_width = spec.width.unwrap_or(network.base_width);
        network.depth = spec.depth.unwrap_or(network.depth);
        network.input = spec.input;
        network.global_context = spec.global_context;
        if let Some(init) = &spec.init {
            let (from, init_network) = init.describe()?;
            if !from.attacks_like(&threat) {
                return Err(AttackError::Recipe(format!(
                    "--init {init} attacks {} under '{}'; this run attacks {} under '{}': \
                     it cannot start from those weights",
                    from.extractor.name(),
                    from.name,
                    threat.extractor.name(),
                    threat.name
                )));
            }
            network = init_network;
        }
        network.validate()?;
        let multiple = 1u32 << network.depth;
        if !spec.size.is_multiple_of(multiple) {
            return Err(AttackError::Recipe(format!(
                "--size {} is not a multiple of 2^depth = {multiple}",
                spec.size
            )));
        }

        let names = |dir: &Path| -> Result<Vec<String>, AttackError> {
            let found = find_named_images(dir).map_err(FileError::io("list images in", dir))?;
            if found.is_empty() {
                return Err(AttackError::Nothing {
                    what: "images",
                    folder: dir.to_path_buf(),
                });
            }
            Ok(found.into_iter().map(|(_, n)| n).collect())
        };
        let images = names(&spec.images)?;
        let (mut train_images, val_images) = match &spec.val_images {
            Some(dir) => (images, names(dir)?),
            None => {
                if images.len() < 2 {
                    return Err(AttackError::Recipe(
                        "need at least 2 images to hold some out for validation (or give --val-images)"
                            .into(),
                    ));
                }
                let fractions = SplitFractions {
                    train: 0.9,
                    val: 0.1,
                    test: 0.0,
                };
                let split = split_seeded(&images, fractions, spec.seed)
                    .map_err(|e| AttackError::Recipe(e.to_string()))?;
                (split.train, split.val)
            }
        };
        if spec.max_images > 0 {
            train_images.truncate(spec.max_images);
        }
        Ok(RunConfig {
            tool: "featleak".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            threat,
            training: TrainConfig {
                network,
                budget: spec.budget,
                schedule,
                batch_size: spec.batch_size,
                loss: spec.loss,
                init: spec.init.as_ref().map(ToString::to_string),
                checkpoint_seconds: CHECKPOINT_SECONDS,
                seed: spec.seed,
            },
            images_root: spec.images.display().to_string(),
            train_images,
            val_images,
            val_root: spec.val_images.as_ref().map(|p| p.display().to_string()),
            train_features: spec
                .train_features
                .as_ref()
                .map(|p| p.display().to_string()),
            val_features: spec.val_features.as_ref().map(|p| p.display().to_string()),
            skipped: Vec::new(),
            device: None,
        })
    }

    /// Reads `run.json` of `run` and checks it was written by this version of featleak.
    pub fn load(run: &RunFolder) -> Result<Self, AttackError> {
        let config: Self = run.read_config().map_err(|e| {
            AttackError::Train(TrainError::Config {
                path: run.config(),
                problem: format!(
                    "{e} (is {} a folder made by `featleak attack train`?)",
                    run.root().display()
                ),
            })
        })?;
        if config.tool != "featleak" || config.version != env!("CARGO_PKG_VERSION") {
            return Err(AttackError::Train(TrainError::Config {
                path: run.config(),
                problem: format!(
                    "was written by {} {}, this is featleak {}; train a new run",
                    config.tool,
                    config.version,
                    env!("CARGO_PKG_VERSION")
                ),
            }));
        }
        Ok(config)
    }

    /// Where the validation images are.
    pub fn val_root(&self) -> PathBuf {
        PathBuf::from(self.val_root.as_ref().unwrap_or(&self.images_root))
    }

    /// Where the validation images' features are read from, when they are read rather than
    /// extracted.
    pub fn val_features(&self) -> Option<PathBuf> {
        self.val_features
            .as_ref()
            .or(self.train_features.as_ref())
            .map(PathBuf::from)
    }
}

/// The extractor of the features in `store`: [`ExtractorConfig::external`] of its first image's.
fn external_extractor(store: &Path) -> Result<ExtractorConfig, AttackError> {
    let reader = featleak_descriptors::store::open(store)?;
    let first = reader
        .names()?
        .into_iter()
        .next()
        .ok_or(AttackError::Nothing {
            what: "images",
            folder: store.to_path_buf(),
        })?;
    Ok(ExtractorConfig::external(&reader.read(&first)?))
}

/// The attacker's files in a run folder besides the skeleton's.
pub trait AttackRun {
    /// `curves.svg`: training loss and validation scores over the epochs.
    fn curves(&self) -> PathBuf;
    /// The feature cache of the run's images.
    fn cache(&self) -> PathBuf;
    /// The checkpoint's model.
    fn model(&self) -> PathBuf;
}

impl AttackRun for RunFolder {
    fn curves(&self) -> PathBuf {
        self.root().join("curves.svg")
    }
    fn cache(&self) -> PathBuf {
        self.root().join("cache")
    }
    fn model(&self) -> PathBuf {
        self.checkpoint().file(MODEL)
    }
}

/// Metrics of one epoch: a row of `metrics.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// The epoch (the last one may be partial).
    pub epoch: u64,
    /// Steps done.
    pub step: u64,
    /// Seconds of training so far.
    pub seconds: f64,
    /// Learning rate of the last step.
    pub learning_rate: f64,
    /// Mean training loss over the epoch.
    pub train_loss: f64,
    /// Validation PSNR (dB).
    pub val_psnr: f64,
    /// Validation SSIM.
    pub val_ssim: f64,
}

impl MetricsRow for EpochMetrics {
    const HEADER: &'static str = "epoch,step,seconds,learning_rate,train_loss,val_psnr,val_ssim";
    fn csv_row(&self) -> String {
        format!(
            "{},{},{:.1},{:.6e},{:.6},{:.4},{:.5}",
            self.epoch,
            self.step,
            self.seconds,
            self.learning_rate,
            self.train_loss,
            self.val_psnr,
            self.val_ssim
        )
    }
}

/// The attacker's state in a checkpoint besides the model and optimiser.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EpochLoss {
    /// Sum and count of the training losses of the epoch in progress.
    pub epoch_loss: (f64, u64),
}

/// The training images of `step`: an epoch-wise permutation derived from (seed, epoch) alone, so
/// a resumed run sees exactly the batches an uninterrupted one would.
pub fn batch_indices(seed: u64, step: u64, batch: usize, n: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let per_epoch = (n / batch).max(1) as u64;
    let (epoch, within) = (step / per_epoch, (step % per_epoch) as usize);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut featleak_datasets::schedule::rng(seed, 1000 + epoch));
    (0..batch)
        .map(|i| order[(within * batch + i) % n])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_each_epoch_and_depend_only_on_seed_and_step() {
        let mut seen: Vec<usize> = (0..5).flat_map(|s| batch_indices(3, s, 4, 20)).collect();
        seen.sort();
        assert_eq!(
            seen,
            (0..20).collect::<Vec<_>>(),
            "one epoch = every image once"
        );
        assert_eq!(batch_indices(3, 7, 4, 20), batch_indices(3, 7, 4, 20));
        assert_ne!(batch_indices(3, 0, 4, 20), batch_indices(3, 5, 4, 20));
    }

    #[test]
    fn metrics_rows_keep_their_format() {
        let m = EpochMetrics {
            epoch: 1,
            step: 10,
            seconds: 2.5,
            learning_rate: 1e-3,
            train_loss: 0.5,
            val_psnr: 14.0,
            val_ssim: 0.3,
        };
        assert_eq!(m.csv_row(), "1,10,2.5,1.000000e-3,0.500000,14.0000,0.30000");
    }
}
