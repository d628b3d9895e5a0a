//! `featleak demo`: the whole study on the embedded default (procedural scenes) or on a folder of
//! the user's photos — images → features → matching → attackers → reconstructions → mitigation
//! sweep → one report. Every stage is a `featleak` command run with settings this module picks;
//! `demo.json` records them, and a rerun with the same settings reuses finished work.

use crate::attack::{
    BaselinesArgs, ReconstructArgs, TrainArgs, baselines_command, reconstruct_command,
    train_command,
};
use crate::demo_report::{ReportInputs, write_report};
use crate::extract::{ExtractArgs, extract_folder};
use crate::manifest::Tool;
use crate::match_eval::{MatchEvalArgs, evaluate};
use crate::mitigate::{SweepArgs, sweep};
use crate::progress;
use crate::run_budget::RunBudget;
use anyhow::{Context, bail};
use clap::Args;
use featleak_datasets::atomic::write_bytes_atomic;
use featleak_datasets::files::write_json;
use featleak_datasets::files::{read_json, save_png};
use featleak_datasets::warp::{random_homography, write_sequence};
use featleak_datasets::{ResizeCrop, find_images, load_rgb};
use featleak_descriptors::ExtractorConfig;
use featleak_mitigation::sweep::{
    AdaptiveConfig, GalleryConfig, PrivacyConfig, SweepConfig, UtilityConfig, item_seed,
};
use featleak_mitigation::{DEFAULT_UTILITY_WEIGHT, STRATEGY_NAMES};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DemoArgs {
    /// Your own photos instead of the generated scenes (searched recursively; centre-cropped
    /// to 4:3 and resized to 320×240 like the scenes).
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Output folder; the report is OUT/report/index.html. Rerunning with the same settings
    /// reuses finished stages.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Number of scenes to generate (without --images).
    #[arg(long, default_value_t = 160)]
    pub scenes: usize,
    /// Use at most this many of the --images photos (0: all).
    #[arg(long, default_value_t = 400)]
    pub max_images: usize,
    /// Images held out as victims (never trained on); the first few also make the pairs.
    #[arg(long, default_value_t = 24)]
    pub held_out: usize,
    /// Descriptors the attackers and the sweep cover, comma separated: sift, freak, sosnet
    /// (features and matching accuracy always include SOSNet with the bundled weights).
    #[arg(long, value_delimiter = ',', default_value = "sift,freak")]
    pub descriptors: Vec<String>,
    /// Side of the reconstructions (features come from twice this side).
    #[arg(long, default_value_t = 64)]
    pub size: u32,
    /// First-level width of the attackers' UNets (level i has width·2^i channels; 16 is the
    /// `attack train` default, 8 trains about twice as fast).
    #[arg(long, default_value_t = 8)]
    pub width: usize,
    /// Training steps of each attacker (deterministic: same seed, same tables).
    #[arg(long, default_value_t = 150)]
    pub steps: u64,
    /// Training minutes of each attacker instead of --steps (tables then depend on the
    /// machine's speed).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Fine-tuning steps of the sweep's adaptive attacker.
    #[arg(long, default_value_t = 5)]
    pub adaptive_steps: u64,
    /// Seed of the scenes, splits, warps and every later stage.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Size of the demo's images (scenes are generated at it, photos are cropped and resized to it).
pub const IMAGE_SIZE: (u32, u32) = (320, 240);
/// Held-out images that also become homography sequences, and warps per sequence.
pub const PAIR_SEQUENCES: usize = 6;
pub const WARPS: usize = 5;
/// Corner displacement of the warps, as a share of the image's shorter side.
const WARP_STRENGTH: f64 = 0.1;
/// Keep fractions of the demo's sweep.
const KEEPS: [f32; 3] = [1.0, 0.5, 0.2];

/// `demo.json`: the settings of the demo in a folder.
#[derive(Serialize)]
struct DemoManifest {
    tool: Tool,
    settings: DemoArgs,
}

/// The part of an earlier `demo.json` a rerun checks.
#[derive(Deserialize)]
struct EarlierDemo {
    settings: DemoArgs,
}

/// The folders of a demo run.
pub struct DemoDir {
    pub root: PathBuf,
}

impl DemoDir {
    pub fn train_images(&self) -> PathBuf {
        self.root.join("images/train")
    }
    pub fn held_out(&self) -> PathBuf {
        self.root.join("images/held-out")
    }
    pub fn features(&self, descriptor: &str) -> PathBuf {
        self.root.join("features").join(descriptor)
    }
    pub fn pairs(&self) -> PathBuf {
        self.root.join("pairs")
    }
    pub fn matching(&self) -> PathBuf {
        self.root.join("matching")
    }
    pub fn run(&self, attacker: &str) -> PathBuf {
        self.root.join("runs").join(attacker)
    }
    pub fn reconstructions(&self, attacker: &str) -> PathBuf {
        self.root.join("reconstructions").join(attacker)
    }
    pub fn baselines(&self) -> PathBuf {
        self.root.join("baselines")
    }
    pub fn sweep(&self) -> PathBuf {
        self.root.join("sweep")
    }
    pub fn report(&self) -> PathBuf {
        self.root.join("report")
    }
}

/// The pos-only baseline attacker's run name.
pub const POS_ONLY: &str = "pos-only";

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    validate(args)?;
    let dir = DemoDir {
        root: args.out.clone(),
    };
    claim_folder(&dir, args)?;
    let stages = 8;
    let start = std::time::Instant::now();
    let stage = |k: usize, what: &str| {
        let s = start.elapsed().as_secs();
        println!("[{k}/{stages}] {what} ({}:{:02} elapsed)", s / 60, s % 60)
    };

    stage(1, "images");
    let names = match &args.images {
        None => generate_scenes(&dir, args)?,
        Some(photos) => copy_photos(&dir, photos, args)?,
    };
    println!("    {} training and {} held-out images", names.0, names.1);

    stage(
        2,
        "features of the held-out images (.npz files, what a service receives)",
    );
    for d in &matched_descriptors(args) {
        let summary = extract_folder(&ExtractArgs {
            descriptor: d.clone(),
            detector: ExtractorConfig::default_detector(d).into(),
            max_keypoints: featleak_descriptors::extractor::DEFAULT_MAX_KEYPOINTS,
            root_sift: false,
            weights: None,
            images: dir.held_out(),
            out: dir.features(d),
            threads: None,
            seed: args.seed,
            allow_empty: true,
            overwrite: true,
        })?;
        for f in &summary.failures {
            eprintln!("    failed: {}: {}", f.image, f.error);
        }
    }

    stage(3, "homography pairs from held-out images");
    write_pairs(&dir, args)?;

    stage(4, "matching accuracy on the pairs");
    let matching = evaluate(&MatchEvalArgs {
        descriptor: matched_descriptors(args),
        detector: "dog".into(),
        max_keypoints: featleak_descriptors::extractor::DEFAULT_MAX_KEYPOINTS,
        pairs: dir.pairs(),
        out: dir.matching(),
        weights: None,
        ratio: None,
        one_way: false,
        seed: args.seed,
    })?;
    print!("{}", indent(&matching.to_markdown()));

    stage(
        5,
        "attackers (one per descriptor, and the pos-only baseline)",
    );
    let attackers = attacker_names(args);
    for (name, descriptor, threat) in &attackers {
        println!("    {name}: {descriptor} under {threat}");
        train(&dir, args, name, descriptor, threat)?;
    }

    stage(6, "reconstructions of the held-out images");
    for (name, ..) in &attackers {
        reconstruct_command(&ReconstructArgs {
            run: dir.run(name),
            images: Some(dir.held_out()),
            features: None,
            out: dir.reconstructions(name),
            share: None,
            seed: args.seed,
            device: featleak_attack::ComputeDevice::Cpu,
        })?;
    }
    baselines_command(&BaselinesArgs {
        run: dir.run(&attackers[0].0),
        images: dir.held_out(),
        out: dir.baselines(),
    })?;

    stage(7, "mitigation sweep (privacy against utility)");
    let sweep_config = dir.root.join("sweep.toml");
    write_sweep_config(&dir, args, &sweep_config)?;
    sweep(&SweepArgs {
        config: sweep_config.clone(),
        out: dir.sweep(),
    })?;

    stage(8, "report");
    let index = write_report(&ReportInputs {
        dir: &dir,
        settings: args,
        attackers: &attackers,
        matching: &matching,
        sweep_config: &sweep_config,
    })?;
    let s = start.elapsed().as_secs();
    println!("done in {}:{:02}; open {}", s / 60, s % 60, index.display());
    Ok(ExitCode::SUCCESS)
}

fn validate(args: &DemoArgs) -> anyhow::Result<()> {
    if args.descriptors.is_empty() {
        bail!("--descriptors: give at least one of sift, freak, sosnet");
    }
    for d in &args.descriptors {
        if !["sift", "freak", "sosnet"].contains(&d.as_str()) {
            bail!("--descriptors: unknown descriptor '{d}' (sift, freak or sosnet)");
        }
    }
    if args.held_out < 2 {
        bail!("--held-out must be at least 2");
    }
    Ok(())
}

/// Descriptors whose features and matching accuracy the demo measures: the attacked ones, and
/// SOSNet (bundled weights) in any case.
fn matched_descriptors(args: &DemoArgs) -> Vec<String> {
    let mut v = args.descriptors.clone();
    if !v.iter().any(|d| d == "sosnet") {
        v.push("sosnet".into());
    }
    v
}

/// The demo's attackers: (run name, descriptor, threat preset), the pos-only baseline last.
pub fn attacker_names(args: &DemoArgs) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = args
        .descriptors
        .iter()
        .map(|d| (d.clone(), d.clone(), "desc+pos".into()))
        .collect();
    v.push((
        POS_ONLY.into(),
        args.descriptors[0].clone(),
        POS_ONLY.into(),
    ));
    v
}

/// Writes `demo.json`, or checks that the folder's earlier demo had the same settings.
fn claim_folder(dir: &DemoDir, args: &DemoArgs) -> anyhow::Result<()> {
    let path = dir.root.join("demo.json");
    if path.exists() {
        let earlier: EarlierDemo = read_json(&path)?;
        if earlier.settings != *args {
            bail!(
                "{} holds a demo with other settings ({}); choose another --out or delete it",
                dir.root.display(),
                path.display()
            );
        }
        println!("resuming the demo in {}", dir.root.display());
    }
    std::fs::create_dir_all(&dir.root)
        .with_context(|| format!("cannot create {}", dir.root.display()))?;
    write_json(
        &path,
        &DemoManifest {
            tool: Tool::current(),
            settings: args.clone(),
        },
    )?;
    Ok(())
}

/// Generates the scenes: the last `held_out` become victims. Returns (train, held-out) counts.
fn generate_scenes(dir: &DemoDir, args: &DemoArgs) -> anyhow::Result<(usize, usize)> {
    if args.scenes < args.held_out + 8 {
        bail!(
            "--scenes {} leaves fewer than 8 training scenes after --held-out {}",
            args.scenes,
            args.held_out
        );
    }
    let train = args.scenes - args.held_out;
    let bar = progress::bar(args.scenes as u64, "scenes");
    (0..args.scenes).into_par_iter().try_for_each(|i| {
        let img = featleak_datasets::synthetic::scene(
            IMAGE_SIZE.0,
            IMAGE_SIZE.1,
            item_seed(args.seed, &format!("scene {i}")),
        );
        let folder = if i < train {
            dir.train_images()
        } else {
            dir.held_out()
        };
        bar.inc(1);
        save_png(&folder.join(format!("scene_{i:04}.png")), &img).map_err(anyhow::Error::from)
    })?;
    bar.finish_and_clear();
    Ok((train, args.held_out))
}

/// Copies the user's photos, cropped to 4:3 and resized to [`IMAGE_SIZE`], into a seeded
/// train/held-out split. Unreadable files are reported and skipped.
fn copy_photos(dir: &DemoDir, photos: &Path, args: &DemoArgs) -> anyhow::Result<(usize, usize)> {
    let mut paths = find_images(photos)
        .with_context(|| format!("cannot list images in {}", photos.display()))?;
    paths.shuffle(&mut ChaCha8Rng::seed_from_u64(args.seed));
    if args.max_images > 0 {
        paths.truncate(args.max_images);
    }
    if paths.len() < args.held_out + 8 {
        bail!(
            "{} holds {} images; the demo needs at least {} (--held-out {} plus 8 to train on)",
            photos.display(),
            paths.len(),
            args.held_out + 8,
            args.held_out
        );
    }
    let bar = progress::bar(paths.len() as u64, "photos");
    let failures: Vec<String> = paths
        .par_iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let folder = if i < args.held_out {
                dir.held_out()
            } else {
                dir.train_images()
            };
            let r = load_rgb(p).map_err(|e| e.to_string()).and_then(|rgb| {
                let t =
                    ResizeCrop::cover((rgb.height(), rgb.width()), (IMAGE_SIZE.1, IMAGE_SIZE.0));
                save_png(&folder.join(format!("photo_{i:04}.png")), &t.apply(&rgb))
                    .map_err(|e| format!("{e:#}"))
            });
            bar.inc(1);
            r.err().map(|e| format!("{}: {e}", p.display()))
        })
        .collect();
    bar.finish_and_clear();
    for f in &failures {
        eprintln!("    skipped {f}");
    }
    let held = find_images(&dir.held_out())?.len();
    let train = find_images(&dir.train_images())?.len();
    if held < 2 || train < 8 {
        bail!(
            "too few readable images in {}: {train} to train on, {held} held out",
            photos.display()
        );
    }
    Ok((train, held))
}

/// Warps the first held-out images by seeded random homographies into HPatches-style sequences.
fn write_pairs(dir: &DemoDir, args: &DemoArgs) -> anyhow::Result<()> {
    let held = find_images(&dir.held_out())?;
    for (i, path) in held.iter().take(PAIR_SEQUENCES).enumerate() {
        let img = load_rgb(path)?;
        let mut rng = ChaCha8Rng::seed_from_u64(item_seed(args.seed, &format!("warps {i}")));
        let hs: Vec<_> = (0..WARPS)
            .map(|_| random_homography(img.width(), img.height(), WARP_STRENGTH, &mut rng))
            .collect();
        let seq = dir.pairs().join(format!("seq_{i:02}"));
        write_sequence(&seq, &img, &hs)
            .with_context(|| format!("cannot write {}", seq.display()))?;
    }
    Ok(())
}

fn train(
    dir: &DemoDir,
    args: &DemoArgs,
    name: &str,
    descriptor: &str,
    threat: &str,
) -> anyhow::Result<()> {
    let out = dir.run(name);
    train_command(&TrainArgs {
        descriptor: descriptor.into(),
        threat: threat.into(),
        images: dir.train_images(),
        val_images: None,
        size: args.size,
        feature_size: None,
        budget: RunBudget {
            resume: out.join("run.json").exists(),
            minutes: args.minutes,
            steps: if args.minutes.is_some() {
                None
            } else {
                Some(args.steps)
            },
        },
        out,
        network: crate::attack::Network::Cpu,
        width: Some(args.width),
        depth: None,
        batch_size: 8,
        lr: 3e-3,
        seed: args.seed,
        max_images: 0,
        device: featleak_attack::ComputeDevice::Cpu,
    })?;
    Ok(())
}

/// The sweep's configuration, written beside the outputs so that
/// `featleak mitigate sweep --config OUT/sweep.toml` reruns it.
fn write_sweep_config(dir: &DemoDir, args: &DemoArgs, path: &Path) -> anyhow::Result<()> {
    let config = SweepConfig {
        seed: args.seed,
        strategies: STRATEGY_NAMES.iter().map(|s| s.to_string()).collect(),
        keeps: KEEPS.to_vec(),
        attackers: args.descriptors.iter().map(|d| dir.run(d)).collect(),
        privacy: PrivacyConfig {
            images: dir.held_out(),
            max_images: 0,
        },
        utility: UtilityConfig { pairs: dir.pairs() },
        adaptive: AdaptiveConfig {
            steps: args.adaptive_steps,
            ..AdaptiveConfig::default()
        },
        gallery: GalleryConfig::default(),
        leakage_utility_weight: DEFAULT_UTILITY_WEIGHT,
    };
    let text = format!(
        "# Written by `featleak demo`. Rerun it from the folder the demo ran in with\n\
         # featleak mitigate sweep --config {} --out DIR\n{}",
        path.display(),
        config.to_toml()
    );
    write_bytes_atomic(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("    {l}\n")).collect()
}
