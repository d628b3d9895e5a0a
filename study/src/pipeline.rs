//! The study's stages: images → features → pairs → matching → attackers → reconstructions and
//! baselines → mitigation sweep → report.

use crate::config::{
    FINE_TUNE_LEARNING_RATE, IMAGE_SIZE, KEEPS, PAIR_SEQUENCES, WARP_STRENGTH, WARPS,
};
use crate::{StudyConfig, StudyDir, StudyError};
use featleak_attack::baselines::baselines;
use featleak_attack::reconstruct::{ReconstructConfig, Victims, reconstruct};
use featleak_attack::run::{DEFAULT_LEARNING_RATE, NewRun};
use featleak_attack::session::{SessionObserver, Start, train_attacker};
use featleak_attack::zoo::ZooEntry;
use featleak_attack::{AttackError, AttackerSource, ComputeDevice};
use featleak_datasets::FileError;
use featleak_datasets::files::{read_json, save_png, write_bytes, write_json};
use featleak_datasets::manifest::Tool;
use featleak_datasets::warp::{random_homography, write_sequence};
use featleak_datasets::{ResizeCrop, find_images, load_rgb};
use featleak_descriptors::ExtractorConfig;
use featleak_descriptors::device::Device;
use featleak_descriptors::folder::{ExtractFolder, FolderObserver, extract_folder};
use featleak_eval::MatchConfig;
use featleak_eval::match_eval::{MatchEval, evaluate};
use featleak_eval::table::Table;
use featleak_mitigation::report::write_report;
use featleak_mitigation::sweep::{
    AdaptiveConfig, GalleryConfig, PrivacyConfig, SweepConfig, SweepDir, SweepObserver,
    UtilityConfig, item_seed, run_sweep,
};
use featleak_mitigation::{DEFAULT_UTILITY_WEIGHT, STRATEGY_NAMES};
use featleak_train::{Budget, TrainError};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Stages of a study.
pub const STAGES: usize = 8;

/// Hears a study's progress.
pub trait StudyObserver {
    /// Stage `k` of [`STAGES`] starts.
    fn stage(&mut self, k: usize, what: &str);
    /// A line about the stage in progress.
    fn note(&mut self, line: &str);
    /// What hears feature extraction.
    fn extraction(&self) -> &dyn FolderObserver;
    /// `total` images of `descriptor` are about to be matched; the returned function is called
    /// per image.
    fn matching(&mut self, descriptor: &str, total: usize) -> featleak_datasets::Tick;
    /// What hears the attackers' training and reconstructions.
    fn attack(&mut self) -> &mut dyn SessionObserver;
    /// What hears the sweep.
    fn sweep(&mut self) -> &mut dyn SweepObserver;
}

/// `demo.json`: the settings of the study in a folder.
#[derive(Serialize)]
struct Manifest<'a> {
    tool: Tool,
    settings: &'a StudyConfig,
}

/// The part of an earlier `demo.json` a rerun checks.
#[derive(Deserialize)]
struct EarlierStudy {
    settings: StudyConfig,
}

/// Runs (or resumes) the study of `config` into `config.out`; returns the report's
/// `index.html`.
pub fn run_study(
    config: &StudyConfig,
    observer: &mut dyn StudyObserver,
) -> Result<PathBuf, StudyError> {
    config.validate()?;
    let dir = StudyDir {
        root: config.out.clone(),
    };
    claim_folder(&dir, config, observer)?;

    observer.stage(1, "images");
    let (train, held) = match &config.images {
        None => generate_scenes(&dir, config)?,
        Some(photos) => {
            let (train, held, skipped) = copy_photos(&dir, photos, config)?;
            for s in &skipped {
                observer.note(&format!("skipped {s}"));
            }
            (train, held)
        }
    };
    observer.note(&format!("{train} training and {held} held-out images"));

    observer.stage(
        2,
        "features of the held-out images (.npz files, what a service receives)",
    );
    for d in &config.matched_descriptors() {
        let summary = extract_folder(
            &ExtractFolder {
                extractor: ExtractorConfig::with_default_detector(d)?,
                images: dir.held_out(),
                out: dir.features(d),
                threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
                seed: config.seed,
                allow_empty: true,
                overwrite: true,
                shard: None,
                device: Device::flex(),
            },
            observer.extraction(),
        )?;
        for f in &summary.failures {
            observer.note(&format!("failed: {}: {}", f.image, f.error));
        }
    }

    observer.stage(3, "homography pairs from held-out images");
    write_pairs(&dir, config)?;

    observer.stage(4, "matching accuracy on the pairs");
    let matching = match_pairs(&dir, config, observer)?;
    for line in matching.to_markdown().lines() {
        observer.note(line);
    }

    observer.stage(
        5,
        "attackers (one per descriptor, and the pos-only baseline)",
    );
    let attackers = config.attackers();
    for a in &attackers {
        let init = config.zoo_start(a)?;
        let start = match init {
            Some(entry) => format!(", fine-tuned from zoo:{}", entry.name),
            None => String::new(),
        };
        observer.note(&format!(
            "{}: {} under {}{start}",
            a.name, a.descriptor, a.threat
        ));
        train_one(&dir, config, a, init, observer.attack())?;
    }

    observer.stage(6, "reconstructions of the held-out images");
    for a in &attackers {
        let job = ReconstructConfig {
            attacker: AttackerSource::Run(dir.run(&a.name)),
            victims: Victims::Images(dir.held_out()),
            out: dir.reconstructions(&a.name),
            share: None,
            seed: config.seed,
            device: ComputeDevice::Cpu,
            shard: None,
        };
        if let Some(s) = reconstruct(&job, observer.attack())? {
            observer.note(&format!(
                "{}: {} images, PSNR {:.2} dB, SSIM {:.4}, MAE {:.4} (means)",
                a.name,
                s.images.len(),
                s.mean.psnr,
                s.mean.ssim,
                s.mean.mae
            ));
        }
    }
    baselines(
        &dir.run(&attackers[0].name),
        &dir.held_out(),
        &dir.baselines(),
    )?;

    observer.stage(7, "mitigation sweep (privacy against utility)");
    write_sweep_config(&dir, config)?;
    // Read back as `featleak mitigate sweep --config` would: the file is the configuration.
    let sweep_config = SweepConfig::from_file(&dir.sweep_config())?;
    let results = run_sweep(&sweep_config, &dir.sweep(), observer.sweep())?;
    write_report(&SweepDir { root: dir.sweep() }, &results)?;

    observer.stage(8, "report");
    crate::report::write_report(&crate::report::ReportInputs {
        dir: &dir,
        settings: config,
        attackers: &attackers,
        matching: &matching,
    })
}

/// Writes `demo.json`, or checks that the folder's earlier study had the same settings.
fn claim_folder(
    dir: &StudyDir,
    config: &StudyConfig,
    observer: &mut dyn StudyObserver,
) -> Result<(), StudyError> {
    let path = dir.manifest();
    if path.exists() {
        let earlier: EarlierStudy = read_json(&path)?;
        if earlier.settings != *config {
            return Err(StudyError::Folder {
                folder: dir.root.clone(),
                problem: format!(
                    "holds a demo with other settings ({}); choose another --out or delete it",
                    path.display()
                ),
            });
        }
        observer.note(&format!("resuming the demo in {}", dir.root.display()));
    }
    write_json(
        &path,
        &Manifest {
            tool: Tool::current(),
            settings: config,
        },
    )?;
    Ok(())
}

/// Generates the scenes: the last `held_out` become victims. Returns (train, held-out) counts.
fn generate_scenes(dir: &StudyDir, config: &StudyConfig) -> Result<(usize, usize), StudyError> {
    if config.scenes < config.held_out + 8 {
        return Err(StudyError::Settings(format!(
            "--scenes {} leaves fewer than 8 training scenes after --held-out {}",
            config.scenes, config.held_out
        )));
    }
    let train = config.scenes - config.held_out;
    (0..config.scenes).into_par_iter().try_for_each(|i| {
        let img = featleak_datasets::synthetic::scene(
            IMAGE_SIZE.0,
            IMAGE_SIZE.1,
            item_seed(config.seed, &format!("scene {i}")),
        );
        let folder = if i < train {
            dir.train_images()
        } else {
            dir.held_out()
        };
        save_png(&folder.join(format!("scene_{i:04}.png")), &img)
    })?;
    Ok((train, config.held_out))
}

/// Copies the user's photos, cropped to 4:3 and resized to [`IMAGE_SIZE`], into a seeded
/// train/held-out split; returns the training and held-out counts and why each unusable file
/// (unreadable, corrupt, truncated) was skipped.
fn copy_photos(
    dir: &StudyDir,
    photos: &Path,
    config: &StudyConfig,
) -> Result<(usize, usize, Vec<String>), StudyError> {
    let mut paths = find_images(photos).map_err(FileError::io("list images in", photos))?;
    paths.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed));
    if config.max_images > 0 {
        paths.truncate(config.max_images);
    }
    let needed = config.held_out + 8;
    if paths.len() < needed {
        return Err(StudyError::Folder {
            folder: photos.to_path_buf(),
            problem: format!(
                "holds {} images; the demo needs at least {needed} (--held-out {} plus 8 to train on)",
                paths.len(),
                config.held_out
            ),
        });
    }
    let failures: Vec<String> = paths
        .par_iter()
        .enumerate()
        .filter_map(|(i, p)| {
            let folder = if i < config.held_out {
                dir.held_out()
            } else {
                dir.train_images()
            };
            let copied = load_rgb(p).map_err(StudyError::from).and_then(|rgb| {
                let t =
                    ResizeCrop::cover((rgb.height(), rgb.width()), (IMAGE_SIZE.1, IMAGE_SIZE.0));
                Ok(save_png(
                    &folder.join(format!("photo_{i:04}.png")),
                    &t.apply(&rgb),
                )?)
            });
            copied.err().map(|e| e.to_string())
        })
        .collect();
    let count = |d: &Path| -> Result<usize, StudyError> {
        Ok(find_images(d)
            .map_err(FileError::io("list images in", d))?
            .len())
    };
    let (held, train) = (count(&dir.held_out())?, count(&dir.train_images())?);
    if held < 2 || train < 8 {
        return Err(StudyError::Folder {
            folder: photos.to_path_buf(),
            problem: format!("too few readable images: {train} to train on, {held} held out"),
        });
    }
    Ok((train, held, failures))
}

/// Warps the first held-out images by seeded random homographies into HPatches-style sequences.
fn write_pairs(dir: &StudyDir, config: &StudyConfig) -> Result<(), StudyError> {
    let held = dir.held_out();
    let held = find_images(&held).map_err(FileError::io("list images in", &held))?;
    for (i, path) in held.iter().take(PAIR_SEQUENCES).enumerate() {
        let img = load_rgb(path)?;
        let mut rng = ChaCha8Rng::seed_from_u64(item_seed(config.seed, &format!("warps {i}")));
        let hs: Vec<_> = (0..WARPS)
            .map(|_| random_homography(img.width(), img.height(), WARP_STRENGTH, &mut rng))
            .collect();
        let seq = dir.pairs().join(format!("seq_{i:02}"));
        write_sequence(&seq, &img, &hs).map_err(FileError::io("write", &seq))?;
    }
    Ok(())
}

/// Matching accuracy of every matched descriptor on DoG keypoints.
fn match_pairs(
    dir: &StudyDir,
    config: &StudyConfig,
    observer: &mut dyn StudyObserver,
) -> Result<Table, StudyError> {
    let extractors = config
        .matched_descriptors()
        .iter()
        .map(|d| ExtractorConfig::named(d, "dog"))
        .collect::<Result<_, _>>()?;
    let job = MatchEval {
        extractors,
        pairs: dir.pairs(),
        out: dir.matching(),
        matching: MatchConfig {
            mutual: true,
            ratio: None,
        },
        seed: config.seed,
    };
    let observer = std::cell::RefCell::new(observer);
    let stage = |name: &str, total: usize| -> featleak_datasets::Tick {
        observer.borrow_mut().matching(name, total)
    };
    Ok(evaluate(&job, &stage)?.0)
}

/// Trains (or, in a rerun, resumes) one attacker, fine-tuning `init` when given.
fn train_one(
    dir: &StudyDir,
    config: &StudyConfig,
    attacker: &crate::config::Attacker,
    init: Option<&'static ZooEntry>,
    observer: &mut dyn SessionObserver,
) -> Result<(), StudyError> {
    let out = dir.run(&attacker.name);
    let budget = Budget {
        minutes: config.minutes,
        steps: if config.minutes.is_some() {
            None
        } else {
            Some(config.steps)
        },
    };
    let start = if out.join(featleak_train::RunFolder::CONFIG).exists() {
        Start::Resume(Some(budget))
    } else {
        Start::New(Box::new(NewRun {
            descriptor: attacker.descriptor.clone(),
            threat: attacker.threat.clone(),
            size: config.size,
            width: Some(config.width),
            init: init.map(AttackerSource::Zoo),
            learning_rate: if init.is_some() {
                FINE_TUNE_LEARNING_RATE
            } else {
                DEFAULT_LEARNING_RATE
            },
            seed: config.seed,
            ..NewRun::defaults(dir.train_images(), budget)
        }))
    };
    match train_attacker(&out, start, ComputeDevice::Cpu, observer) {
        // The study resumes its runs itself: say how to continue it, not the run.
        Err(AttackError::Train(TrainError::Interrupted { step, .. })) => {
            Err(StudyError::Interrupted {
                run: out,
                step,
                out: config.out.clone(),
            })
        }
        other => other.map(|_| ()).map_err(StudyError::from),
    }
}

/// The sweep's configuration, written beside the outputs so that
/// `featleak mitigate sweep --config OUT/sweep.toml` reruns it.
fn write_sweep_config(dir: &StudyDir, config: &StudyConfig) -> Result<(), StudyError> {
    let sweep = SweepConfig {
        seed: config.seed,
        strategies: STRATEGY_NAMES.iter().map(|s| s.to_string()).collect(),
        keeps: KEEPS.to_vec(),
        attackers: config.descriptors.iter().map(|d| dir.run(d)).collect(),
        privacy: PrivacyConfig {
            images: dir.held_out(),
            max_images: 0,
            lpips: None,
        },
        utility: UtilityConfig { pairs: dir.pairs() },
        adaptive: AdaptiveConfig {
            steps: config.adaptive_steps,
            ..AdaptiveConfig::default()
        },
        // The gallery shows the strongest mitigation of the sweep.
        gallery: GalleryConfig {
            keep: KEEPS[KEEPS.len() - 1],
            ..GalleryConfig::default()
        },
        leakage_utility_weight: DEFAULT_UTILITY_WEIGHT,
        defences: Vec::new(),
        lifted: Default::default(),
    };
    let path = dir.sweep_config();
    let text = format!(
        "# Written by `featleak demo`. Rerun it from the folder the demo ran in with\n\
         # featleak mitigate sweep --config {} --out DIR\n{}",
        path.display(),
        sweep.to_toml()
    );
    Ok(write_bytes(&path, text.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn photos_that_cannot_be_used_are_skipped_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        std::fs::create_dir_all(&photos).unwrap();
        for i in 0..12 {
            featleak_datasets::synthetic::scene(160, 120, i)
                .save(photos.join(format!("p{i:02}.jpg")))
                .unwrap();
        }
        // A JPEG cut in half: decoders would fill the rest with grey.
        let bytes = std::fs::read(photos.join("p00.jpg")).unwrap();
        std::fs::write(photos.join("cut.jpg"), &bytes[..bytes.len() / 2]).unwrap();
        let config = StudyConfig {
            held_out: 3,
            ..StudyConfig::default()
        };
        let study = StudyDir {
            root: dir.path().join("study"),
        };
        let (train, held, skipped) = copy_photos(&study, &photos, &config).unwrap();
        assert_eq!(train + held, 12);
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(
            skipped[0].contains("cut.jpg") && skipped[0].contains("truncated JPEG"),
            "{skipped:?}"
        );
    }
}
