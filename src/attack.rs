//! `featleak attack`: train an inversion network under a threat model, and reconstruct images
//! from their features.

use crate::interrupt;
use crate::manifest::Tool;
use crate::progress;
use crate::run_budget::RunBudget;
use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use featleak_attack::data::{
    FeatureCache, Prepared, centre_view, make_batch, prepare, reveal_items,
};
use featleak_attack::model::UNetConfig;
use featleak_attack::run::{EpochMetrics, RunConfig, RunDir, write_json};
use featleak_attack::threat::Share;
use featleak_attack::training::{Observer, TrainConfig, load_model, to_device, to_images, train};
use featleak_attack::{ComputeDevice, ThreatModel};
use featleak_datasets::schedule::rng;
use featleak_datasets::{ResizeCrop, SplitFractions, find_files, find_images, split_seeded};
use featleak_descriptors::{FeatureSet, read_features};
use featleak_eval::gallery::{Gallery, GalleryRow, draw_keypoints};
use featleak_eval::plot::{Axes, Series, line_plot_svg};
use featleak_eval::score_report::{NamedScores, ScoreReport, score_images};
use featleak_mitigation::sweep::image_name;
use indicatif::ProgressBar;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Subcommand, Clone, Debug)]
pub enum AttackCommand {
    /// Train an inversion network on images you own, under a threat model.
    Train(TrainArgs),
    /// Reconstruct images from their features with a trained network.
    Reconstruct(ReconstructArgs),
    /// Score two trivial "attacks" on victim images: the mean training image of a run, and
    /// each image's own mean colour — what an attacker beats only by learning something.
    Baselines(BaselinesArgs),
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

#[derive(Args, Clone, Debug)]
pub struct TrainArgs {
    /// Descriptor the victim sends: sift, freak or sosnet (bundled weights).
    #[arg(long, default_value = "sift")]
    pub descriptor: String,
    /// Threat model: a preset (desc+pos, desc+pos+geom, pos-only) or a TOML file.
    #[arg(long, default_value = "desc+pos")]
    pub threat: String,
    /// The attacker's training images (searched recursively).
    #[arg(long)]
    pub images: PathBuf,
    /// Validation images (default: 10 % of --images, seeded).
    #[arg(long)]
    pub val_images: Option<PathBuf>,
    /// Side of the square reconstruction (pixels, multiple of 16).
    #[arg(long, default_value_t = 128)]
    pub size: u32,
    /// Side of the square the features are extracted from (default: twice --size).
    #[arg(long)]
    pub feature_size: Option<u32>,
    /// Run folder: configuration, checkpoints, metrics.csv, curves.svg.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub budget: RunBudget,
    /// Network size: cpu (widths 16–256) or paper (64–1024).
    #[arg(long, default_value = "cpu")]
    pub network: String,
    /// Override the network's first-level width (level i has width·2^i channels).
    #[arg(long)]
    pub width: Option<usize>,
    /// Override the network's number of 2× poolings.
    #[arg(long)]
    pub depth: Option<usize>,

    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Peak learning rate (Adam; warm-up, then cosine decay over the budget).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,

    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Use at most this many training images (0: all).
    #[arg(long, default_value_t = 0)]
    pub max_images: usize,
    /// Where the network trains: cpu, or wgpu (a GPU; needs a build with `--features wgpu`).
    /// Not part of the run's identity: a run resumes on either.
    #[arg(long, default_value_t = ComputeDevice::Cpu)]
    pub device: ComputeDevice,
}

#[derive(Args, Clone, Debug)]
pub struct ReconstructArgs {
    /// Run folder written by `featleak attack train`.
    #[arg(long)]
    pub run: PathBuf,
    /// Victim images: features are extracted as the threat model says, and scores computed.
    #[arg(
        long,
        conflicts_with = "features",
        required_unless_present = "features"
    )]
    pub images: Option<PathBuf>,
    /// Victim feature files (.npz) alone: the real attack, without access to the images.
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
}

struct BarObserver {
    bar: ProgressBar,
}

impl Observer for BarObserver {
    fn step(&mut self, step: u64, loss: f64, lr: f64, seconds: f64) {
        self.bar.set_position(step);
        self.bar
            .set_message(format!("loss {loss:.4} lr {lr:.1e} {:.0} s", seconds));
    }
    fn epoch(&mut self, m: &EpochMetrics) {
        self.bar.suspend(|| {
            eprintln!(
                "epoch {:>3} step {:>6}: train loss {:.4}, val PSNR {:.2} dB, SSIM {:.4}",
                m.epoch, m.step, m.train_loss, m.val_psnr, m.val_ssim
            )
        });
    }
    fn stop_requested(&self) -> bool {
        interrupt::requested()
    }
}

pub fn run(command: &AttackCommand) -> anyhow::Result<ExitCode> {
    match command {
        AttackCommand::Train(args) => train_command(args),
        AttackCommand::Reconstruct(args) => reconstruct_command(args),
        AttackCommand::Baselines(args) => baselines_command(args),
    }
}

/// Prepares images in parallel; failures are printed one per line and returned by name.
fn prepare_all(
    paths: &[(PathBuf, String)],
    threat: &ThreatModel,
    cache: &FeatureCache,
    mirrors: bool,
    what: &str,
) -> anyhow::Result<(Vec<Prepared>, Vec<String>)> {
    let extractor = threat.extractor.build()?;

    let variants: Vec<(&PathBuf, &String, bool)> = paths
        .iter()
        .flat_map(|(p, n)| std::iter::once((p, n, false)).chain(mirrors.then_some((p, n, true))))
        .collect();
    let bar = progress::bar(variants.len() as u64, what);
    let results: Vec<Result<Prepared, String>> = variants
        .par_iter()
        .map(|(p, n, m)| {
            let r = prepare(p, n, threat, &extractor, cache, *m);
            bar.inc(1);
            r
        })
        .collect();
    bar.finish_and_clear();
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for r in results {
        match r {
            Ok(p) => ok.push(p),
            Err(e) => {
                eprintln!("skipped {e}");
                failed.push(e);
            }
        }
    }
    Ok((ok, failed))
}

/// `attack train`.
pub fn train_command(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let run = RunDir::new(&args.out);
    args.budget.check_out(&args.out, &run.config(), "a run")?;
    let config: RunConfig = if args.budget.resume {
        let mut c = RunConfig::load(&run).map_err(anyhow::Error::msg)?;

        // The budget may be extended on resume; nothing else changes.
        if let Some((minutes, steps)) = args.budget.extension() {
            c.training.minutes = minutes;
            c.training.steps = steps;
        }
        c
    } else {
        new_run_config(args)?
    };
    // Before the (slow) feature extraction, so that a missing GPU fails fast.
    let (device, device_info) = args.device.open_autodiff()?;
    println!("device: {device_info}");
    let images_root = PathBuf::from(&config.images_root);
    let to_paths = |names: &[String], root: &Path| -> anyhow::Result<Vec<(PathBuf, String)>> {
        let all = find_images(root)
            .with_context(|| format!("cannot list images in {}", root.display()))?;
        Ok(all
            .into_iter()
            .map(|p| (image_name(&p, root), p))
            .filter(|(n, _)| names.contains(n))
            .map(|(n, p)| (p, n))
            .collect())
    };
    let val_root = config
        .val_root
        .as_ref()
        .map_or_else(|| images_root.clone(), PathBuf::from);

    let cache = FeatureCache::new(run.cache());
    let (train_set, mut skipped) = prepare_all(
        &to_paths(&config.train_images, &images_root)?,
        &config.threat,
        &cache,
        true,
        "prepare",
    )?;
    let (val_set, val_skipped) = prepare_all(
        &to_paths(&config.val_images, &val_root)?,
        &config.threat,
        &cache,
        false,
        "validation",
    )?;
    skipped.extend(val_skipped);
    if train_set.is_empty() {
        bail!("no usable training images in {}", images_root.display());
    }
    let config = RunConfig {
        skipped,
        device: Some(args.device.name().into()),
        ..config
    };
    write_json(&run.config(), &config).map_err(anyhow::Error::msg)?;
    interrupt::install();
    println!(
        "training {} under '{}' on {} images ({} with mirrors), validating on {}; run folder {}",
        config.threat.extractor.name(),
        config.threat.name,
        config.train_images.len(),
        train_set.len(),
        val_set.len(),
        args.out.display()
    );
    let bar = match config.training.steps {
        Some(s) => progress::bar(s, "train"),
        None => progress::bar(0, "train"),
    };
    let state = train(
        &run,
        &config.threat,
        &config.training,
        &train_set,
        &val_set,
        &device,
        &mut BarObserver { bar: bar.clone() },
    )
    .map_err(anyhow::Error::msg)?;
    bar.finish_and_clear();
    write_curves(&run, &state.history)?;
    interrupt::stopped_at(state.step, &args.out)?;
    if let Some(last) = state.history.last() {
        println!(
            "done: {} steps in {:.1} min; validation PSNR {:.2} dB, SSIM {:.4}",
            state.step,
            state.seconds / 60.0,
            last.val_psnr,
            last.val_ssim
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn new_run_config(args: &TrainArgs) -> anyhow::Result<RunConfig> {
    let mut threat =
        ThreatModel::resolve(&args.threat, &args.descriptor).map_err(anyhow::Error::msg)?;
    threat.resolution = args.size;
    threat.feature_resolution = args.feature_size.unwrap_or(2 * args.size);
    threat.validate().map_err(anyhow::Error::msg)?;
    let channels = threat
        .sparse_map()
        .channels(threat.extractor.descriptor.dimension());
    let mut network = match args.network.as_str() {
        "cpu" => UNetConfig::cpu_default(channels),
        "paper" => UNetConfig::paper(channels),
        other => bail!("unknown --network '{other}' (cpu or paper)"),
    };
    network.base_width = args.width.unwrap_or(network.base_width);
    network.depth = args.depth.unwrap_or(network.depth);
    network.validate()?;
    let multiple = 1u32 << network.depth;
    if !args.size.is_multiple_of(multiple) {
        bail!(
            "--size {} is not a multiple of 2^depth = {multiple}",
            args.size
        );
    }

    let mut images: Vec<String> = find_images(&args.images)
        .with_context(|| format!("cannot list images in {}", args.images.display()))?
        .iter()
        .map(|p| image_name(p, &args.images))
        .collect();
    if images.is_empty() {
        bail!("no images found in {}", args.images.display());
    }
    let (train_images, val_images) = match &args.val_images {
        Some(dir) => {
            let val: Vec<String> = find_images(dir)
                .with_context(|| format!("cannot list images in {}", dir.display()))?
                .iter()
                .map(|p| image_name(p, dir))
                .collect();
            if val.is_empty() {
                bail!("no images found in {}", dir.display());
            }
            (images, val)
        }
        None => {
            if images.len() < 2 {
                bail!(
                    "need at least 2 images to hold some out for validation (or give --val-images)"
                );
            }
            let split = split_seeded(
                &images,
                SplitFractions {
                    train: 0.9,
                    val: 0.1,
                    test: 0.0,
                },
                args.seed,
            )
            .map_err(anyhow::Error::msg)?;
            images = split.train;
            (images, split.val)
        }
    };
    let mut train_images = train_images;
    if args.max_images > 0 {
        train_images.truncate(args.max_images);
    }
    Ok(RunConfig {
        tool: Tool::current().name.into(),
        version: Tool::current().version.into(),
        threat,
        training: TrainConfig {
            network,
            steps: args.budget.steps,
            minutes: args.budget.minutes,
            batch_size: args.batch_size,
            learning_rate: args.lr,
            warmup_steps: 50,
            checkpoint_seconds: 60.0,
            seed: args.seed,
        },
        images_root: args.images.display().to_string(),
        train_images,
        val_images,
        val_root: args.val_images.as_ref().map(|p| p.display().to_string()),
        skipped: Vec::new(),
        device: None,
    })
}

fn write_curves(run: &RunDir, history: &[EpochMetrics]) -> anyhow::Result<()> {
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
    .map_err(|e| anyhow!("cannot draw curves: {e}"))?;
    featleak_attack::run::write_bytes(&run.curves(), svg.as_bytes()).map_err(anyhow::Error::msg)
}

/// One victim image to reconstruct: its name, the revealed features on the reconstruction grid,
/// and the reference picture when known.
struct Victim {
    name: String,
    reference: Option<image::RgbImage>,
    features: FeatureSet,
}

/// `attack reconstruct`.
pub fn reconstruct_command(args: &ReconstructArgs) -> anyhow::Result<ExitCode> {
    let run = RunDir::new(&args.run);
    let config = RunConfig::load(&run).map_err(anyhow::Error::msg)?;

    let threat = &config.threat;
    let (device, device_info) = args.device.open()?;
    println!("device: {device_info}");
    let model = load_model(&run, &config.training.network, &device).map_err(anyhow::Error::msg)?;
    let share = args.share.map_or(threat.attack_share, Share::fixed);
    let r = threat.resolution;
    let mut victims = Vec::new();
    if let Some(dir) = &args.images {
        let paths: Vec<(PathBuf, String)> = find_images(dir)
            .with_context(|| format!("cannot list images in {}", dir.display()))?
            .into_iter()
            .map(|p| {
                let n = image_name(&p, dir);
                (p, n)
            })
            .collect();
        if paths.is_empty() {
            bail!("no images found in {}", dir.display());
        }
        let (prepared, _) = prepare_all(
            &paths,
            threat,
            &FeatureCache::new(run.cache()),
            false,
            "extract",
        )?;
        for p in prepared {
            let (target, features) = p.view(&centre_view(threat));
            victims.push(Victim {
                name: p.name,
                reference: Some(target),
                features,
            });
        }
    } else if let Some(dir) = &args.features {
        let files = find_files(dir, |p| p.extension().is_some_and(|e| e == "npz"))
            .with_context(|| format!("cannot list feature files in {}", dir.display()))?;
        if files.is_empty() {
            bail!("no .npz feature files in {}", dir.display());
        }
        for f in files {
            let features = read_features(&f)?;
            if features.extractor.name != "unknown"
                && features.extractor.name != threat.extractor.name()
            {
                bail!(
                    "{}: features from {} but the attacker was trained on {}",
                    f.display(),
                    features.extractor.name,
                    threat.extractor.name()
                );
            }
            if features.descriptors.dimension() != threat.extractor.descriptor.dimension() {
                bail!(
                    "{}: descriptors of {} values, the attacker expects {}",
                    f.display(),
                    features.descriptors.dimension(),
                    threat.extractor.descriptor.dimension()
                );
            }
            let t = ResizeCrop::cover(features.image_size, (r, r));
            victims.push(Victim {
                name: image_name(&f, dir),
                reference: None,
                features: features.transformed(&t),
            });
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let bar = progress::bar(victims.len() as u64, "reconstruct");
    let mut rows = Vec::new();
    let mut scores = Vec::new();
    let mut choice = rng(args.seed, 99);
    for chunk in victims.chunks(8) {
        // Images without a reference get a black placeholder target (unused).
        let views = chunk
            .iter()
            .map(|v| {
                (
                    v.reference
                        .clone()
                        .unwrap_or_else(|| image::RgbImage::new(r, r)),
                    v.features.clone(),
                )
            })
            .collect();
        let items = reveal_items(views, threat, share, &mut choice);
        let batch = make_batch(&items, &threat.sparse_map());
        let (input, _) = to_device(&batch, &device).map_err(anyhow::Error::msg)?;
        for ((v, out), f) in chunk
            .iter()
            .zip(to_images(model.forward(&input)))
            .zip(items.into_iter().map(|(_, f)| f))
        {
            let path = args.out.join(format!("{}.png", v.name));
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            let mut png = Vec::new();
            out.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
            featleak_datasets::atomic::write_bytes_atomic(&path, &png)
                .with_context(|| format!("cannot write {}", path.display()))?;
            let mut pictures = Vec::new();
            let mut metrics = Vec::new();
            if let Some(reference) = &v.reference {
                let s = score_images(reference, &out).map_err(|e| anyhow!("{}: {e}", v.name))?;
                scores.push(NamedScores {
                    name: v.name.clone(),
                    psnr: s.psnr,
                    ssim: s.ssim,
                    mae: s.mae,
                });
                pictures.push(reference.clone());
                metrics = vec![Some(s.psnr), Some(s.ssim), Some(s.mae)];
            }
            pictures.push(draw_keypoints(&f));
            pictures.push(out);
            rows.push(GalleryRow {
                name: format!("{} ({} keypoints)", v.name, f.len()),
                pictures,
                metrics,
            });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let with_reference = args.images.is_some();
    let mut picture_columns = vec![
        "revealed keypoints".to_string(),
        "reconstruction".to_string(),
    ];
    if with_reference {
        picture_columns.insert(0, "original".into());
        let report = ScoreReport::new(scores);
        crate::manifest::write_json(&args.out.join("metrics.json"), &report)?;
        println!(
            "{} images: PSNR {:.2} dB, SSIM {:.4}, MAE {:.4} (means)",
            report.images.len(),
            report.mean.psnr,
            report.mean.ssim,
            report.mean.mae
        );
    }
    let gallery = Gallery {
        title: format!(
            "featleak reconstructions — {} under {}",
            threat.extractor.name(),
            threat.name
        ),
        intro_html: format!(
            "<p>Run <code>{}</code>; threat model <code>{}</code>; share of keypoints revealed {}–{}; {}×{} pixels.</p>",
            featleak_eval::gallery::escape(&args.run.display().to_string()),
            featleak_eval::gallery::escape(&threat.name),
            share.min,
            share.max,
            r,
            r
        ),
        picture_columns,
        metric_columns: if with_reference {
            vec!["PSNR [dB]".into(), "SSIM".into(), "MAE".into()]
        } else {
            vec![]
        },
        rows,
    };
    featleak_datasets::atomic::write_bytes_atomic(
        &args.out.join("index.html"),
        gallery.to_html().as_bytes(),
    )?;
    println!("reconstructions and index.html in {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Loads `path` as the attacker sees it: resized and centre-cropped to `r`×`r`.
pub fn load_square(path: &Path, r: u32) -> anyhow::Result<image::RgbImage> {
    let rgb = featleak_datasets::load_rgb(path)?;
    Ok(ResizeCrop::cover((rgb.height(), rgb.width()), (r, r)).apply(&rgb))
}

/// `attack baselines`.
pub fn baselines_command(args: &BaselinesArgs) -> anyhow::Result<ExitCode> {
    let run = RunDir::new(&args.run);
    let config = RunConfig::load(&run).map_err(anyhow::Error::msg)?;
    let r = config.threat.resolution;

    let root = PathBuf::from(&config.images_root);
    let train: Vec<PathBuf> = find_images(&root)
        .with_context(|| format!("cannot list images in {}", root.display()))?
        .into_iter()
        .filter(|p| config.train_images.contains(&image_name(p, &root)))
        .collect();
    if train.is_empty() {
        bail!("the run's training images are gone from {}", root.display());
    }
    let sums = train
        .par_iter()
        .map(|p| {
            load_square(p, r)
                .map(|img| img.as_raw().iter().map(|&v| v as f64).collect::<Vec<f64>>())
        })
        .try_reduce(
            || vec![0.0; (r * r * 3) as usize],
            |a, b| Ok(a.iter().zip(&b).map(|(x, y)| x + y).collect()),
        )?;
    let mean_image = image::RgbImage::from_raw(
        r,
        r,
        sums.iter()
            .map(|v| (v / train.len() as f64).round() as u8)
            .collect(),
    )
    .expect("size matches");
    let victims = find_images(&args.images)
        .with_context(|| format!("cannot list images in {}", args.images.display()))?;
    if victims.is_empty() {
        bail!("no images found in {}", args.images.display());
    }
    let scored: Vec<(NamedScores, NamedScores)> = victims
        .par_iter()
        .map(|p| -> anyhow::Result<_> {
            let target = load_square(p, r)?;
            let n = (r * r) as f64;
            let mut mean = [0.0f64; 3];
            for px in target.pixels() {
                (0..3).for_each(|c| mean[c] += px[c] as f64 / n);
            }
            let flat = image::RgbImage::from_pixel(r, r, image::Rgb(mean.map(|m| m.round() as u8)));
            let named = |s: featleak_eval::ImageScores| NamedScores {
                name: image_name(p, &args.images),
                psnr: s.psnr,
                ssim: s.ssim,
                mae: s.mae,
            };
            Ok((
                named(score_images(&target, &mean_image)?),
                named(score_images(&target, &flat)?),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let (image_scores, colour_scores): (Vec<_>, Vec<_>) = scored.into_iter().unzip();
    for (name, scores) in [("mean-image", image_scores), ("mean-colour", colour_scores)] {
        let report = ScoreReport::new(scores);
        crate::manifest::write_json(&args.out.join(format!("{name}.json")), &report)?;
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
