//! Privacy/utility sweeps: every (descriptor, strategy, keep fraction) cell scored on both sides,
//! and every (descriptor, defence, strength) cell: the descriptor-level defences of
//! [`crate::defences`] on all keypoints (strategy `all`, keep 1).
//!
//! * **Utility**: the query image of every homography pair (image k, the one a device uploads)
//!   reveals only the mitigated subset (or its defended features); it is matched against all
//!   features of image 1 (the map) by mutual nearest neighbours, the way the defence is used
//!   ([`crate::defences::FittedDefence::match_query`]): MMA@1/3/5 and homography accuracy at 3
//!   px.
//! * **Privacy**: victim images are mitigated the same way and reconstructed by
//!   (a) the attacker trained on full features (non-adaptive) and (b) an adaptive attacker:
//!   the network fine-tuned from (a) on the attacker's own training images mitigated the same
//!   way. The adaptive columns report the stronger of (a) and the fine-tuned network on the
//!   victims (by SSIM) — a defender-side bound: an attacker who adapts never does worse than
//!   one who does not. The fine-tuned network's own scores are kept in `*_fine_tuned`, so the
//!   effect of the fine-tune itself stays visible. Defences are fitted on the victims' full
//!   features (the defender's own) and the attacker defends its training images with the same
//!   fitted defence (it knows the defence, not the victims' features).
//! * **Lifted cells**: both attackers read each subspace as sent (its point nearest the origin)
//!   or, with `[lifted] attack = "database"` ([`LiftedConfig`]), through the database attack of
//!   Dusmanu et al. on the attacker's own descriptors ([`Database::recover`]).
//! * **Identification**: the share of victims whose reconstruction ranks its own original first
//!   among all victims' ([`featleak_eval::identification`]), for both attackers.
//! * **Baseline**: each victim's own mean colour, scored on the same victims
//!   (`ssim_mean_colour`, `psnr_mean_colour`): what an attacker knows without any feature.
//!
//! Cells are computed one at a time and appended to `results.json` atomically; a rerun with the
//! same configuration skips finished cells, unless an attacker's model has changed since (it was
//! trained further or replaced: `results.json` records each model's SHA-256), which is refused.
//! At keep 1 every strategy reveals everything, so that cell is computed once per descriptor and
//! shared.

use crate::MitigationError;
use crate::defences::lifting::Database;
use crate::defences::{Defence, FittedDefence};
use crate::leakage::LeakageScorer;
use crate::strategies::{Hints, Strategy};
use burn::prelude::*;
use featleak_attack::ThreatModel;
use featleak_attack::baselines::mean_colour;
use featleak_attack::data::{FeatureCache, Prepared, centre_view, prepare};
use featleak_attack::model::{UNet, UNetConfig};
use featleak_attack::run::{AttackRun, RunConfig};
use featleak_attack::training::{FineTuneConfig, evaluate, fine_tune, load_model};
use featleak_datasets::fetch::sha256_of;
use featleak_datasets::files::{read_json, save_png, write_json};
use featleak_datasets::{HomographyPair, find_named_images, find_pairs, load_rgb};
use featleak_descriptors::{FeatureSet, extract_file};
use featleak_eval::homography::RansacConfig;
use featleak_eval::identification::{identify, thumbnail};
use featleak_eval::lpips::{Lpips, LpipsNet};
use featleak_eval::score_report::score_images;
use featleak_eval::{MatchConfig, score_matches, score_pair, summarize};
use featleak_train::RunFolder;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// `sweep.toml`. Paths are relative to the working directory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepConfig {
    /// Seed of every random choice (strategies, fine-tuning).
    #[serde(default)]
    pub seed: u64,
    /// Strategy names (see [`crate::STRATEGY_NAMES`]).
    #[serde(default = "default_strategies")]
    pub strategies: Vec<String>,
    /// Keep fractions, each in (0, 1].
    #[serde(default = "default_keeps")]
    pub keeps: Vec<f32>,
    /// `featleak attack train` run folders, one per descriptor: each fixes the descriptor,
    /// extractor and threat model of its cells.
    pub attackers: Vec<PathBuf>,
    /// Victims whose reconstructions measure privacy.
    pub privacy: PrivacyConfig,
    /// Pairs whose matching measures utility.
    pub utility: UtilityConfig,
    /// The adaptive attacker's fine-tune.
    #[serde(default)]
    pub adaptive: AdaptiveConfig,
    /// How the attackers read lifted descriptors.
    #[serde(default, skip_serializing_if = "LiftedConfig::is_default")]
    pub lifted: LiftedConfig,
    /// The side-by-side gallery.
    #[serde(default)]
    pub gallery: GalleryConfig,
    /// `utility_weight` of the leakage strategy.
    #[serde(default = "default_utility_weight")]
    pub leakage_utility_weight: f32,
    /// Descriptor-level defences, each at several strengths, on all keypoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub defences: Vec<DefenceCells>,
}

/// One defence of a sweep and the strengths it is scored at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefenceCells {
    /// Its name (see [`crate::DEFENCE_NAMES`]).
    pub name: String,
    /// Its strengths (see [`Defence::by_name`]).
    pub strengths: Vec<f64>,
}

fn default_strategies() -> Vec<String> {
    crate::STRATEGY_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect()
}
fn default_keeps() -> Vec<f32> {
    vec![1.0, 0.75, 0.5, 0.25, 0.1]
}
fn default_utility_weight() -> f32 {
    crate::strategies::DEFAULT_UTILITY_WEIGHT
}

/// Victim images whose reconstruction measures privacy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// Folder of victim images.
    pub images: PathBuf,
    /// Use the first N images in path order (0: all).
    #[serde(default)]
    pub max_images: usize,
    /// Also score reconstructions by LPIPS on this backbone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lpips: Option<LpipsConfig>,
}

/// LPIPS on an ImageNet backbone the user supplies ([`featleak_eval::lpips`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LpipsConfig {
    /// `alex` (default) or `vgg`.
    #[serde(default = "default_lpips_net")]
    pub net: LpipsNet,
    /// torchvision's ImageNet checkpoint of that backbone.
    pub backbone: PathBuf,
}

fn default_lpips_net() -> LpipsNet {
    LpipsNet::Alex
}

/// Homography pairs (HPatches or Oxford layout) whose matching measures utility.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UtilityConfig {
    /// Folder of homography sequences.
    pub pairs: PathBuf,
}

/// The adaptive attacker's fine-tune.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveConfig {
    /// Fine-tuning steps per cell.
    pub steps: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Peak learning rate (warm-up, cosine decay).
    pub learning_rate: f64,
    /// Fine-tune on at most this many of the attacker's training images (0: all).
    pub max_images: usize,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            steps: 30,
            batch_size: 8,
            learning_rate: 3e-4,
            max_images: 0,
        }
    }
}

/// How the attackers read lifted descriptors (`lift-random`, `lift-adversarial` cells), both the
/// non-adaptive one and the adaptive one (which is fine-tuned on what it reads).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiftedConfig {
    /// What the attacker makes of each subspace.
    pub attack: LiftedAttack,
    /// Rows of the database attack's database, drawn (seeded) from the descriptors of the
    /// attacker's training images (0: all of them; its cost grows with it).
    pub database_size: usize,
}

impl Default for LiftedConfig {
    fn default() -> Self {
        Self {
            attack: LiftedAttack::Point,
            database_size: 20_000,
        }
    }
}

impl LiftedConfig {
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// What an attacker makes of a lifted descriptor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LiftedAttack {
    /// The subspace's point nearest the origin, as sent, read as the descriptor.
    #[default]
    Point,
    /// The database attack of Dusmanu et al. (2021): the attacker's real descriptor nearest to
    /// the subspace, projected onto it ([`crate::defences::lifting::Database::recover`]); an
    /// image of the attacker's own never uses its own descriptors.
    Database,
}

impl LiftedAttack {
    /// Its name in `sweep.toml` and `results.csv`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Point => "point",
            Self::Database => "database",
        }
    }
}

/// The side-by-side gallery: one row per victim, one column per strategy at `keep`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GalleryConfig {
    /// Keep fraction shown.
    pub keep: f32,
    /// Victims shown.
    pub images: usize,
}

impl Default for GalleryConfig {
    fn default() -> Self {
        Self {
            keep: 0.25,
            images: 8,
        }
    }
}

impl SweepConfig {
    /// The configuration as TOML, the format [`SweepConfig::from_file`] reads.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a sweep configuration serialises to TOML")
    }

    /// Reads and checks a TOML file; errors name the file.
    pub fn from_file(path: &Path) -> Result<Self, MitigationError> {
        let text = std::fs::read_to_string(path)
            .map_err(featleak_datasets::FileError::io("read", path))?;
        let in_file = |problem: String| MitigationError::Config {
            file: Some(path.to_path_buf()),
            problem,
        };
        let config: Self = toml::from_str(&text).map_err(|e| in_file(e.to_string()))?;
        config.validate().map_err(|e| in_file(e.to_string()))?;
        Ok(config)
    }

    /// The strategies, parsed.
    pub fn parsed_strategies(&self) -> Result<Vec<Strategy>, MitigationError> {
        self.strategies
            .iter()
            .map(|name| {
                Strategy::by_name(name).map(|s| match s {
                    Strategy::Leakage { .. } => Strategy::Leakage {
                        utility_weight: self.leakage_utility_weight,
                    },
                    s => s,
                })
            })
            .collect()
    }

    /// The defence cells, parsed: every (defence, strength).
    pub fn parsed_defences(&self) -> Result<Vec<Defence>, MitigationError> {
        self.defences
            .iter()
            .flat_map(|d| d.strengths.iter().map(|&s| Defence::by_name(&d.name, s)))
            .collect()
    }

    /// Checks names and numbers.
    pub fn validate(&self) -> Result<(), MitigationError> {
        let invalid = |problem: String| {
            Err(MitigationError::Config {
                file: None,
                problem,
            })
        };
        self.parsed_strategies()?;
        self.parsed_defences()
            .map_err(|e| MitigationError::Config {
                file: None,
                problem: format!("defences: {e}"),
            })?;
        if let Some(d) = self.defences.iter().find(|d| d.strengths.is_empty()) {
            return invalid(format!("defences: {} has no strengths", d.name));
        }
        if self.strategies.is_empty() || self.keeps.is_empty() || self.attackers.is_empty() {
            return invalid("strategies, keeps and attackers must not be empty".into());
        }
        if let Some(k) = self.keeps.iter().find(|k| !(**k > 0.0 && **k <= 1.0)) {
            return invalid(format!("keep fractions must be in (0, 1], got {k}"));
        }
        if self.adaptive.batch_size == 0 {
            return invalid("adaptive.batch_size must be positive".into());
        }
        let lr = self.adaptive.learning_rate;
        if !(lr.is_finite() && lr > 0.0) {
            return invalid(format!(
                "adaptive.learning_rate must be a finite number above 0, got {lr}"
            ));
        }
        let keep = self.gallery.keep;
        if !(keep > 0.0 && keep <= 1.0) {
            return invalid(format!("gallery.keep must be in (0, 1], got {keep}"));
        }
        let w = self.leakage_utility_weight;
        if !w.is_finite() {
            return invalid(format!(
                "leakage_utility_weight must be a finite number, got {w}"
            ));
        }
        Ok(())
    }
}

/// The `strategy` of a defence cell: every keypoint.
pub const ALL_KEYPOINTS: &str = "all";

/// The `defence` of a cell without one.
pub const NO_DEFENCE: &str = "none";

fn no_defence() -> String {
    NO_DEFENCE.into()
}

/// One row of the results: a (descriptor, strategy, keep) cell, or a (descriptor, defence,
/// strength) cell.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    /// Descriptor of the cell (its attacker's).
    pub descriptor: String,
    /// The attacker run the privacy columns come from.
    pub attacker: String,
    /// Strategy name ([`ALL_KEYPOINTS`] in a defence cell).
    pub strategy: String,
    /// Keep fraction.
    pub keep: f32,
    /// Descriptor-level defence ([`NO_DEFENCE`]: none).
    #[serde(default = "no_defence")]
    pub defence: String,
    /// The defence's strength (0 without one).
    #[serde(default)]
    pub strength: f64,
    /// Fine-tuning steps of the adaptive attacker.
    #[serde(default)]
    pub adaptive_steps: u64,
    /// Rank-1 identification rate of the non-adaptive attacker's reconstructions among all
    /// victims ([`featleak_eval::identification`]; absent in cells of older sweeps).
    #[serde(default)]
    pub identification_nonadaptive: Option<f64>,
    /// Rank-1 identification rate of the adaptive attacker (the network the adaptive columns
    /// come from).
    #[serde(default)]
    pub identification_adaptive: Option<f64>,
    /// Mean LPIPS of the non-adaptive attacker's reconstructions (where the sweep measures it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lpips_nonadaptive: Option<f64>,
    /// Mean LPIPS of the adaptive attacker's reconstructions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lpips_adaptive: Option<f64>,
    /// Mean SSIM of each victim's own mean colour (the same victims; absent in cells of
    /// sweeps written before it was measured).
    #[serde(default)]
    pub ssim_mean_colour: Option<f64>,
    /// Mean PSNR (dB) of each victim's own mean colour.
    #[serde(default)]
    pub psnr_mean_colour: Option<f64>,
    /// Mean revealed keypoints per victim image.
    pub kept_keypoints: f64,
    /// Mean revealed keypoints per query image of the pairs.
    pub query_keypoints: f64,
    /// Mean matching accuracy at 1 px.
    pub mma_1: f64,
    /// Mean matching accuracy at 3 px.
    pub mma_3: f64,
    /// Mean matching accuracy at 5 px.
    pub mma_5: f64,
    /// Share of pairs whose estimated homography is within 3 px.
    pub homography_acc_3: f64,
    /// PSNR (dB) of the attacker trained on full features.
    pub psnr_nonadaptive: f64,
    /// SSIM of the attacker trained on full features.
    pub ssim_nonadaptive: f64,
    /// MAE of the attacker trained on full features.
    pub mae_nonadaptive: f64,
    /// PSNR (dB) of the adaptive attacker (the stronger by SSIM).
    pub psnr_adaptive: f64,
    /// SSIM of the adaptive attacker.
    pub ssim_adaptive: f64,
    /// MAE of the adaptive attacker.
    pub mae_adaptive: f64,
    /// Scores of the fine-tuned network alone.
    pub psnr_fine_tuned: f64,
    /// SSIM of the fine-tuned network alone.
    pub ssim_fine_tuned: f64,
    /// Seconds the cell took.
    pub seconds: f64,
    /// How the attackers read the lifted descriptors ([`LiftedAttack::name`]; lifted cells only,
    /// absent in cells of older sweeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifted_attack: Option<String>,
}

/// What identifies a cell: descriptor, strategy, keep, defence, strength.
pub(crate) type CellKey = (String, String, u32, String, u64);

impl CellResult {
    /// What identifies the cell: descriptor, strategy, keep, defence, strength.
    pub(crate) fn key(&self) -> CellKey {
        (
            self.descriptor.clone(),
            self.strategy.clone(),
            self.keep.to_bits(),
            self.defence.clone(),
            self.strength.to_bits(),
        )
    }
}

/// A cell's mitigation: a keypoint subset at a keep fraction, or a defence on every keypoint.
#[derive(Clone, Copy, Debug)]
enum Cell {
    Subset(Strategy, f32),
    Defended(Defence),
}

impl Cell {
    fn key(&self, descriptor: &str) -> CellKey {
        let (strategy, keep, defence, strength) = match self {
            Cell::Subset(s, k) => (s.name(), *k, NO_DEFENCE, 0.0),
            Cell::Defended(d) => (ALL_KEYPOINTS, 1.0, d.name(), d.strength()),
        };
        (
            descriptor.to_string(),
            strategy.to_string(),
            keep.to_bits(),
            defence.to_string(),
            strength.to_bits(),
        )
    }

    fn label(&self) -> String {
        match self {
            Cell::Subset(s, k) => format!("{} keep {k}", s.name()),
            Cell::Defended(d) => format!("{} {}", d.name(), d.strength()),
        }
    }
}

/// `results.json`: the configuration and the finished cells, in the order computed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SweepResults {
    /// "featleak".
    pub tool: String,
    /// The featleak version that wrote it.
    pub version: String,
    /// The sweep's configuration.
    pub config: SweepConfig,
    /// SHA-256 of each attacker's `model.bpk` when its cells were computed (sweeps written
    /// before this field: none recorded).
    #[serde(default)]
    pub attacker_models: BTreeMap<PathBuf, String>,
    /// Finished cells, in the order computed.
    pub cells: Vec<CellResult>,
}

/// Reports sweep progress (progress bars, logs).
pub trait SweepObserver {
    /// A stage of `total` units starts (`total` 0: unknown).
    fn stage(&mut self, name: &str, total: u64);
    /// One unit of the current stage is done.
    fn advance(&mut self);
    /// A cell is finished and saved.
    fn cell(&mut self, cell: &CellResult, reused: bool);
}

/// Paths of a sweep's output folder.
pub struct SweepDir {
    /// The output folder.
    pub root: PathBuf,
}

impl SweepDir {
    /// `results.json`.
    pub fn results_json(&self) -> PathBuf {
        self.root.join("results.json")
    }
    /// Reconstruction of victim `index` by the adaptive attacker of `descriptor` under
    /// `strategy` at the gallery's keep fraction.
    pub fn gallery_picture(&self, descriptor: &str, strategy: &str, index: usize) -> PathBuf {
        self.root
            .join("gallery")
            .join(descriptor)
            .join(strategy)
            .join(format!("{index:03}.png"))
    }
    /// Victim `index` as the attacker's target (the original, at the attack resolution).
    pub fn gallery_original(&self, descriptor: &str, index: usize) -> PathBuf {
        self.gallery_picture(descriptor, "original", index)
    }
}

/// Runs (or resumes) the sweep into `out`; returns every cell, finished ones included.
pub fn run_sweep(
    config: &SweepConfig,
    out: &Path,
    observer: &mut dyn SweepObserver,
) -> Result<SweepResults, MitigationError> {
    config.validate()?;
    let dir = SweepDir { root: out.into() };
    let mut results = if dir.results_json().exists() {
        let saved: SweepResults = read_json(&dir.results_json())?;
        if saved.config != *config {
            return Err(MitigationError::Folder {
                folder: out.to_path_buf(),
                problem: "holds a sweep with another configuration; choose another output folder"
                    .into(),
            });
        }
        let mut saved = saved;
        // Cells written before `adaptive_steps` was a column ran the configuration's steps.
        for c in &mut saved.cells {
            if c.adaptive_steps == 0 {
                c.adaptive_steps = config.adaptive.steps;
            }
        }
        saved
    } else {
        SweepResults {
            tool: "featleak".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            config: config.clone(),
            attacker_models: BTreeMap::new(),
            cells: Vec::new(),
        }
    };
    for attacker in &config.attackers {
        let (_, digest) = sha256_of(&RunFolder::new(attacker).model())?;
        match results.attacker_models.get(attacker) {
            Some(saved) if *saved != digest => {
                return Err(MitigationError::Folder {
                    folder: out.to_path_buf(),
                    problem: format!(
                        "holds cells computed with the attacker {} as it was before its model \
                         changed (trained further or replaced); choose another output folder",
                        attacker.display()
                    ),
                });
            }
            _ => {
                results.attacker_models.insert(attacker.clone(), digest);
            }
        }
    }
    let strategies = config.parsed_strategies()?;
    let defences = config.parsed_defences()?;
    let lpips = match &config.privacy.lpips {
        Some(l) => Some(Arc::new(Lpips::load(l.net, &l.backbone)?)),
        None => None,
    };
    for attacker in &config.attackers {
        sweep_attacker(
            config,
            (&strategies, &defences, lpips.clone()),
            attacker,
            &dir,
            &mut results,
            observer,
        )?;
    }
    Ok(results)
}

/// Everything one attacker's cells need, prepared once.
struct AttackerData {
    descriptor: String,
    threat: ThreatModel,
    network: UNetConfig,
    base: UNet,
    victims: Scored<Prepared>,
    train: Scored<Prepared>,
    pairs: Vec<PairFeatures>,
    /// Mean PSNR and SSIM of each victim's own mean colour.
    mean_colour: (f64, f64),
    /// The LPIPS network, when the sweep measures it.
    lpips: Option<Arc<Lpips>>,
    /// The database attack's database (the attacker's training descriptors), when lifted cells
    /// are read that way.
    database: Option<Database>,
}

/// Items with their per-keypoint leakage scores (empty when no strategy needs them).
struct Scored<T> {
    items: Vec<T>,
    leakage: Vec<Vec<f32>>,
}

impl<T> Scored<T> {
    fn leakage(&self, i: usize) -> Option<&[f32]> {
        self.leakage.get(i).map(Vec::as_slice)
    }
}

struct PairFeatures {
    pair: HomographyPair,
    a: FeatureSet,
    b: FeatureSet,
    b_leakage: Option<Vec<f32>>,
}

fn sweep_attacker(
    config: &SweepConfig,
    (strategies, defences, lpips): (&[Strategy], &[Defence], Option<Arc<Lpips>>),
    attacker: &Path,
    dir: &SweepDir,
    results: &mut SweepResults,
    observer: &mut dyn SweepObserver,
) -> Result<(), MitigationError> {
    let run = RunFolder::new(attacker);
    let run_config = RunConfig::load(&run)?;
    let descriptor = run_config.threat.extractor.descriptor.name().to_string();
    let cells: Vec<Cell> = config
        .keeps
        .iter()
        .flat_map(|&k| strategies.iter().map(move |&s| Cell::Subset(s, k)))
        .chain(defences.iter().map(|&d| Cell::Defended(d)))
        .collect();
    let done = |results: &SweepResults, cell: &Cell| {
        results
            .cells
            .iter()
            .any(|c| c.key() == cell.key(&descriptor))
    };
    if cells.iter().all(|c| done(results, c)) {
        return Ok(());
    }
    let device = Device::flex().autodiff();
    let data = prepare_attacker(
        config,
        (strategies, defences),
        &run,
        (run_config, lpips),
        &device,
        observer,
    )?;
    for cell in cells {
        if done(results, &cell) {
            continue;
        }
        let full = results
            .cells
            .iter()
            .find(|c| c.descriptor == data.descriptor && c.keep >= 1.0 && c.defence == NO_DEFENCE)
            .cloned();
        let (cell, reused) = match (full, cell) {
            (Some(full), Cell::Subset(strategy, keep)) if keep >= 1.0 => (
                CellResult {
                    strategy: strategy.name().into(),
                    seconds: 0.0,
                    ..full
                },
                true,
            ),
            (_, cell) => (
                compute_cell(config, &data, attacker, cell, dir, &device, observer)?,
                false,
            ),
        };
        results.cells.push(cell);
        write_json(&dir.results_json(), results)?;
        observer.cell(results.cells.last().expect("pushed"), reused);
    }
    Ok(())
}

fn prepare_attacker(
    config: &SweepConfig,
    (strategies, defences): (&[Strategy], &[Defence]),
    run: &RunFolder,
    (run_config, lpips): (RunConfig, Option<Arc<Lpips>>),
    device: &Device,
    observer: &mut dyn SweepObserver,
) -> Result<AttackerData, MitigationError> {
    let threat = run_config.threat.clone();
    let base = load_model(&run.model(), &run_config.training.network, device)?;
    let extractor = threat
        .extractor
        .build()
        .map_err(|source| MitigationError::Extract {
            path: run.config(),
            source,
        })?;
    let cache = FeatureCache::new(run.cache());

    let mut victims = list_images(&config.privacy.images)?;
    if config.privacy.max_images > 0 {
        victims.truncate(config.privacy.max_images);
    }
    let images_root = PathBuf::from(&run_config.images_root);
    let mut train = named_images(&images_root, &run_config.train_images)?;
    if config.adaptive.max_images > 0 {
        train.truncate(config.adaptive.max_images);
    }
    let mut prepare_list = |what: &str, list: &[(PathBuf, String)]| {
        observer.stage(what, list.len() as u64);
        list.iter()
            .map(|(path, name)| {
                let p = prepare(path, name, &threat, &extractor, &cache, false);
                observer.advance();
                p
            })
            .collect::<Result<Vec<_>, _>>()
    };
    let victims = prepare_list("victims", &victims)?;
    let train = prepare_list("attacker images", &train)?;
    if victims.is_empty() || train.is_empty() {
        return Err(MitigationError::Folder {
            folder: run.root().to_path_buf(),
            problem: "needs victim images and the attacker's training images".into(),
        });
    }

    let pairs = find_pairs(&config.utility.pairs)?.pairs;
    if pairs.is_empty() {
        return Err(MitigationError::Folder {
            folder: config.utility.pairs.clone(),
            problem: "no homography pairs".into(),
        });
    }
    observer.stage("pair features", pairs.len() as u64);
    let mut pair_features = Vec::with_capacity(pairs.len());
    for pair in pairs {
        let a = extract_file(&extractor, &pair.image_a)?;
        let b = extract_file(&extractor, &pair.image_b)?;
        pair_features.push(PairFeatures {
            pair,
            a,
            b,
            b_leakage: None,
        });
        observer.advance();
    }

    let needs_leakage = strategies.iter().any(Strategy::needs_leakage);
    let scorer =
        needs_leakage.then(|| LeakageScorer::new(base.clone(), threat.clone(), device.clone()));
    let mut score =
        |what: &str, items: Vec<Prepared>| -> Result<Scored<Prepared>, MitigationError> {
            let Some(scorer) = &scorer else {
                return Ok(Scored {
                    items,
                    leakage: Vec::new(),
                });
            };
            observer.stage(&format!("leakage: {what}"), items.len() as u64);
            let mut leakage = Vec::with_capacity(items.len());
            for chunk in items.chunks(8) {
                let refs: Vec<_> = chunk.iter().map(|p| (&p.image, &p.features)).collect();
                leakage.extend(scorer.scores(&refs, 8)?);
                chunk.iter().for_each(|_| observer.advance());
            }
            Ok(Scored { items, leakage })
        };
    let view = centre_view(&threat);
    let mut mean_colour_sums = (0.0, 0.0);
    for p in &victims {
        let (target, _) = p.view(&view);
        let s = score_images(&target, &mean_colour(&target))
            .map_err(featleak_attack::AttackError::from)?;
        mean_colour_sums.0 += s.psnr;
        mean_colour_sums.1 += s.ssim;
    }
    let n = victims.len() as f64;
    let mean_colour = (mean_colour_sums.0 / n, mean_colour_sums.1 / n);
    let victims = score("victims", victims)?;
    let train = score("attacker images", train)?;
    let lifts = defences.iter().any(|d| matches!(d, Defence::Lift { .. }));
    // Row owners are positions in `train.items`; binary descriptors cannot be lifted at all.
    let float_descriptors: Option<Vec<&ndarray::Array2<f32>>> = train
        .items
        .iter()
        .map(|p| match &p.features.descriptors {
            featleak_descriptors::Descriptors::Float(d) => Some(d),
            featleak_descriptors::Descriptors::Binary(_) => None,
        })
        .collect();
    let database = float_descriptors
        .filter(|_| lifts && config.lifted.attack == LiftedAttack::Database)
        .map(|own| Database::sample(&own, config.lifted.database_size, config.seed));
    if let Some(scorer) = &scorer {
        observer.stage("leakage: pair queries", pair_features.len() as u64);
        for p in &mut pair_features {
            let image = load_rgb(&p.pair.image_b)?;
            let mut s = scorer.scores(&[(&image, &p.b)], 1)?;
            p.b_leakage = s.pop();
            observer.advance();
        }
    }
    Ok(AttackerData {
        descriptor: threat.extractor.descriptor.name().to_string(),
        threat,
        network: run_config.training.network.clone(),
        base,
        victims,
        train,
        pairs: pair_features,
        mean_colour,
        lpips,
        database,
    })
}

/// Images under `root` with their names, in path order; none is an error.
fn list_images(root: &Path) -> Result<Vec<(PathBuf, String)>, MitigationError> {
    let list = find_named_images(root)
        .map_err(featleak_datasets::FileError::io("list images in", root))?;
    if list.is_empty() {
        return Err(MitigationError::Folder {
            folder: root.to_path_buf(),
            problem: "no images found".into(),
        });
    }
    Ok(list)
}

/// The images of `root` named in `names` (the run's lists); missing ones are an error.
fn named_images(root: &Path, names: &[String]) -> Result<Vec<(PathBuf, String)>, MitigationError> {
    let all = list_images(root)?;
    let found: Vec<(PathBuf, String)> =
        all.into_iter().filter(|(_, n)| names.contains(n)).collect();
    if found.len() < names.len() {
        return Err(MitigationError::Folder {
            folder: root.to_path_buf(),
            problem: format!(
                "{} of the attacker's {} images are gone",
                names.len() - found.len(),
                names.len()
            ),
        });
    }
    Ok(found)
}

/// A per-item seed: `seed` mixed with the item's name or relative path (FNV-1a), so each
/// image or feature file gets its own stable stream.
pub fn item_seed(seed: u64, name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) ^ seed
}

/// A cell's mitigation, ready to apply: the subset, or the fitted defence.
enum Mitigation {
    Subset(Strategy, f32),
    Defended(Box<FittedDefence>),
}

impl Mitigation {
    /// `features` mitigated; `hints` seed the random choices (and rank for `leakage`).
    fn apply(
        &self,
        features: &FeatureSet,
        hints: Hints,
    ) -> Result<crate::defences::Defended, MitigationError> {
        Ok(match self {
            Mitigation::Subset(s, keep) => crate::defences::Defended {
                features: s.apply(features, *keep, hints)?,
                subspaces: None,
            },
            Mitigation::Defended(d) => d.apply(features, hints.seed)?,
        })
    }
}

/// `items` with their features mitigated; lifted ones recovered by the database attack when
/// `database` is given (`own`: the items are the attacker's images the database was drawn
/// from, each kept away from its own rows).
fn mitigate_all(
    items: &Scored<Prepared>,
    mitigation: &Mitigation,
    seed: u64,
    (database, own): (Option<&Database>, bool),
) -> Result<Vec<Prepared>, MitigationError> {
    items
        .items
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let hints = Hints {
                seed: item_seed(seed, &p.name),
                leakage: items.leakage(i),
            };
            let defended = mitigation.apply(&p.features, hints)?;
            let mut features = defended.features;
            if let (Some(db), Some(subspaces)) = (database, &defended.subspaces) {
                features.descriptors = featleak_descriptors::Descriptors::Float(
                    db.recover(subspaces, own.then_some(i))?,
                );
            }
            Ok(Prepared {
                features,
                ..p.clone()
            })
        })
        .collect()
}

/// Mean LPIPS of `pictures` against their `targets`, when the sweep measures it.
fn mean_lpips(
    lpips: Option<&Lpips>,
    targets: &[image::RgbImage],
    pictures: &[image::RgbImage],
) -> Result<Option<f64>, MitigationError> {
    let Some(lpips) = lpips else {
        return Ok(None);
    };
    let mut sum = 0.0;
    for (target, picture) in targets.iter().zip(pictures) {
        sum += lpips.distance(target, picture)?;
    }
    Ok(Some(sum / pictures.len().max(1) as f64))
}

/// Mean PSNR, SSIM and MAE of `model` reconstructing `items` (whole view, every revealed
/// keypoint shown), and the reconstructions of the first `keep_pictures`.
fn compute_cell(
    config: &SweepConfig,
    data: &AttackerData,
    attacker: &Path,
    cell: Cell,
    dir: &SweepDir,
    device: &Device,
    observer: &mut dyn SweepObserver,
) -> Result<CellResult, MitigationError> {
    let started = Instant::now();
    observer.stage(
        &format!("{} {}", data.descriptor, cell.label()),
        config.adaptive.steps + 3,
    );
    let (mitigation, strategy, keep) = match cell {
        Cell::Subset(s, k) => (Mitigation::Subset(s, k), s.name(), k),
        Cell::Defended(d) => {
            let own: Vec<&FeatureSet> = data.victims.items.iter().map(|p| &p.features).collect();
            (
                Mitigation::Defended(Box::new(d.fit(&own, config.seed)?)),
                ALL_KEYPOINTS,
                1.0,
            )
        }
    };
    // Utility: the query (image k) reveals the mitigated subset or its defended features; the
    // map (image 1) keeps all of its own.
    let mut scores = Vec::with_capacity(data.pairs.len());
    let mut query_keypoints = 0.0;
    let matching = MatchConfig::default();
    for p in &data.pairs {
        let hints = Hints {
            seed: item_seed(config.seed, &p.pair.name),
            leakage: p.b_leakage.as_deref(),
        };
        let b = mitigation.apply(&p.b, hints)?;
        query_keypoints += b.features.len() as f64;
        let ransac = RansacConfig::default();
        scores.push(match &mitigation {
            Mitigation::Subset(..) => score_pair(
                &p.pair.name,
                &p.a,
                &b.features,
                &p.pair.homography,
                &matching,
                &ransac,
            )?,
            Mitigation::Defended(d) => {
                // match_query pairs (query, map); the scores want (map, query).
                let matches: Vec<_> = d
                    .match_query(&b, &p.a, &matching)?
                    .into_iter()
                    .map(|m| featleak_eval::Match {
                        a: m.b,
                        b: m.a,
                        ..m
                    })
                    .collect();
                score_matches(
                    &p.pair.name,
                    &p.a,
                    &b.features,
                    &matches,
                    &p.pair.homography,
                    &ransac,
                )
            }
        });
    }
    let utility = summarize(&scores);
    observer.advance();

    // Privacy: the same mitigation on victims and on the attacker's training images.
    let database = data.database.as_ref();
    let victims = mitigate_all(&data.victims, &mitigation, config.seed, (database, false))?;
    let train = mitigate_all(&data.train, &mitigation, config.seed, (database, true))?;
    let gallery = if matches!(cell, Cell::Subset(..)) && (keep - config.gallery.keep).abs() < 1e-6 {
        config.gallery.images
    } else {
        0
    };
    let (nonadaptive, base_pictures) = evaluate(
        &data.base,
        &victims,
        &data.threat,
        (8, victims.len()),
        device,
    )?;
    observer.advance();
    let tuned = fine_tune(
        &data.base,
        &data.network,
        &data.threat,
        &train,
        &FineTuneConfig {
            steps: config.adaptive.steps,
            batch_size: config.adaptive.batch_size,
            learning_rate: config.adaptive.learning_rate,
            seed: config.seed,
        },
        device,
    )?;
    (0..config.adaptive.steps).for_each(|_| observer.advance());
    let (fine_tuned, tuned_pictures) =
        evaluate(&tuned, &victims, &data.threat, (8, victims.len()), device)?;
    observer.advance();
    // What the attacker aims at: each victim's view, as reconstructed.
    let targets: Vec<image::RgbImage> = victims
        .iter()
        .map(|p| p.view(&centre_view(&data.threat)).0)
        .collect();
    // Identification among all victims (their targets are the candidates).
    let candidates: Vec<Vec<f32>> = targets.iter().map(thumbnail).collect();
    let truth: Vec<usize> = (0..victims.len()).collect();
    let rank_1 = |pictures: &[image::RgbImage]| {
        let queries: Vec<Vec<f32>> = pictures.iter().map(thumbnail).collect();
        identify(&queries, &truth, &candidates).rank_1
    };
    let identification_nonadaptive = rank_1(&base_pictures);
    let identification_fine_tuned = rank_1(&tuned_pictures);
    let lpips_nonadaptive = mean_lpips(data.lpips.as_deref(), &targets, &base_pictures)?;
    let adaptive_is_tuned = fine_tuned.ssim >= nonadaptive.ssim;
    let lpips_adaptive = if adaptive_is_tuned {
        mean_lpips(data.lpips.as_deref(), &targets, &tuned_pictures)?
    } else {
        lpips_nonadaptive
    };
    let (adaptive, pictures, identification_adaptive) = if adaptive_is_tuned {
        (fine_tuned, tuned_pictures, identification_fine_tuned)
    } else {
        (nonadaptive, base_pictures, identification_nonadaptive)
    };
    for (i, picture) in pictures.iter().take(gallery).enumerate() {
        save_png(&dir.gallery_picture(&data.descriptor, strategy, i), picture)?;
        save_png(&dir.gallery_original(&data.descriptor, i), &targets[i])?;
    }

    let kept_keypoints =
        victims.iter().map(|p| p.features.len() as f64).sum::<f64>() / victims.len().max(1) as f64;
    Ok(CellResult {
        descriptor: data.descriptor.clone(),
        attacker: attacker.display().to_string(),
        strategy: strategy.into(),
        keep,
        defence: match cell {
            Cell::Subset(..) => NO_DEFENCE.into(),
            Cell::Defended(d) => d.name().into(),
        },
        strength: match cell {
            Cell::Subset(..) => 0.0,
            Cell::Defended(d) => d.strength(),
        },
        adaptive_steps: config.adaptive.steps,
        identification_nonadaptive: Some(identification_nonadaptive),
        identification_adaptive: Some(identification_adaptive),
        lpips_nonadaptive,
        lpips_adaptive,
        psnr_mean_colour: Some(data.mean_colour.0),
        ssim_mean_colour: Some(data.mean_colour.1),
        kept_keypoints,
        query_keypoints: query_keypoints / data.pairs.len().max(1) as f64,
        mma_1: utility.mma[0],
        mma_3: utility.mma[2],
        mma_5: utility.mma[4],
        homography_acc_3: utility.homography_accuracy[1],
        psnr_nonadaptive: nonadaptive.psnr,
        ssim_nonadaptive: nonadaptive.ssim,
        mae_nonadaptive: nonadaptive.mae,
        psnr_adaptive: adaptive.psnr,
        ssim_adaptive: adaptive.ssim,
        mae_adaptive: adaptive.mae,
        psnr_fine_tuned: fine_tuned.psnr,
        ssim_fine_tuned: fine_tuned.ssim,
        seconds: started.elapsed().as_secs_f64(),
        lifted_attack: matches!(cell, Cell::Defended(Defence::Lift { .. }))
            .then(|| config.lifted.attack.name().to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::SweepConfig;

    #[test]
    fn invalid_numbers_are_refused_with_their_field() {
        let example: SweepConfig =
            toml::from_str(include_str!("../../examples/sweep.toml")).unwrap();
        example.validate().unwrap();
        let refused = |edit: &dyn Fn(&mut SweepConfig), needle: &str| {
            let mut c = example.clone();
            edit(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        };
        refused(
            &|c| c.adaptive.learning_rate = f64::NAN,
            "adaptive.learning_rate must be a finite number above 0, got NaN",
        );
        refused(
            &|c| c.adaptive.learning_rate = -1e-3,
            "adaptive.learning_rate must be a finite number above 0",
        );
        refused(
            &|c| c.gallery.keep = 0.0,
            "gallery.keep must be in (0, 1], got 0",
        );
        refused(
            &|c| c.gallery.keep = 2.0,
            "gallery.keep must be in (0, 1], got 2",
        );
        refused(
            &|c| c.leakage_utility_weight = f32::INFINITY,
            "leakage_utility_weight must be a finite number",
        );
        refused(
            &|c| c.keeps = vec![f32::NAN],
            "keep fractions must be in (0, 1]",
        );
    }

    /// Resuming rewrites `results.json` with the finished cells read back from it: they must
    /// come back bit for bit (serde_json needs its `float_roundtrip` feature for that; without
    /// it this value is read one ULP off).
    #[test]
    fn finished_cells_survive_a_rewrite_bit_for_bit() {
        for v in [
            2000.0666666666664f64,
            0.12328543586266331,
            15.553465552379889,
        ] {
            let text = serde_json::to_string(&v).unwrap();
            let back: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{text}");
        }
    }
}
