//! `featleak attack train` as one library call: a new run's recipe or a resumed run's
//! configuration, the training and validation images prepared (features extracted once and
//! cached in the run folder), `run.json` written, then the trainer until the budget is spent.

use crate::AttackError;
use crate::data::{FeatureCache, Prepared, prepare, prepare_stored};
use crate::device::ComputeDevice;
use crate::run::{AttackRun, EpochLoss, EpochMetrics, NewRun, RunConfig};
use crate::threat::ThreatModel;
use burn::prelude::Device;
use featleak_datasets::FileError;
use featleak_datasets::{find_named_images, image_name};
use featleak_descriptors::FeatureSet;
use featleak_train::{Budget, Observer, Progress, RunFolder};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// How a training session starts.
#[derive(Clone, Debug)]
pub enum Start {
    /// A new run from this recipe.
    New(Box<NewRun>),
    /// The run already in the folder, with a new budget when one is given.
    Resume(Option<Budget>),
}

/// Hears what an attack job does (progress bars, logs).
pub trait JobObserver {
    /// The compute device is open.
    fn device(&mut self, _description: &str) {}
    /// `total` items are about to be processed in `stage` ("prepare", "validation", "extract",
    /// "reconstruct"); the returned function is called once per item done, from any thread.
    fn stage(&mut self, _stage: &str, _total: usize) -> featleak_datasets::Tick {
        Box::new(|| {})
    }
    /// An image could not be used (the reason names it).
    fn skipped(&mut self, _reason: &str) {}
    /// Something the user should know that does not stop the job.
    fn note(&mut self, _message: &str) {}
}

/// Hears what a training session does: the job, then the trainer's steps.
pub trait SessionObserver: JobObserver + Observer<EpochMetrics> {
    /// Training starts with `config` on `train` prepared images (mirrors included) and `val`
    /// validation images.
    fn starting(&mut self, _config: &RunConfig, _train: usize, _val: usize) {}
}

/// Trains the attacker in `out` (see [`Start`]) on `device` until its budget is spent; returns
/// the run's configuration as written and where training ended.
pub fn train_attacker(
    out: &Path,
    start: Start,
    device: ComputeDevice,
    observer: &mut dyn SessionObserver,
) -> Result<(RunConfig, Progress<EpochMetrics, EpochLoss>), AttackError> {
    let run = RunFolder::prepare(out, matches!(start, Start::Resume(_)), "a run")?;
    let config = match start {
        Start::Resume(budget) => {
            let mut c = RunConfig::load(&run)?;
            // The budget may be extended on resume; nothing else changes.
            if let Some(budget) = budget {
                budget.validate()?;
                c.training.budget = budget;
            }
            c
        }
        Start::New(recipe) => RunConfig::new(&recipe)?,
    };
    // Before the (slow) feature extraction, so that a missing GPU fails fast.
    let (device_handle, description) = device.open_autodiff()?;
    observer.device(&description);
    let images_root = PathBuf::from(&config.images_root);
    let cache = FeatureCache::new(run.cache());
    let (train_source, val_source) = match &config.train_features {
        Some(store) => (
            FeatureSource::Stored(PathBuf::from(store)),
            FeatureSource::Stored(config.val_features().expect("train_features is set")),
        ),
        None => {
            let extract = FeatureSource::Extract {
                cache: &cache,
                device: device_handle.clone().inner(),
            };
            (extract.clone(), extract)
        }
    };
    let (train, mut skipped) = prepare_all(
        &named(&config.train_images, &images_root)?,
        &config.threat,
        &train_source,
        true,
        ("prepare", &mut *observer),
    )?;
    let (val, val_skipped) = prepare_all(
        &named(&config.val_images, &config.val_root())?,
        &config.threat,
        &val_source,
        false,
        ("validation", &mut *observer),
    )?;
    skipped.extend(val_skipped);
    if train.is_empty() {
        return Err(AttackError::Nothing {
            what: "usable training images",
            folder: images_root,
        });
    }
    let config = RunConfig {
        skipped,
        device: Some(device.name().into()),
        ..config
    };
    run.write_config(&config)?;
    observer.starting(&config, train.len(), val.len());
    let progress =
        crate::training::train(&run, &config, &train, &val, &device_handle, &mut *observer)?;
    Ok((config, progress))
}

/// The images of `root` called `names`.
fn named(names: &[String], root: &Path) -> Result<Vec<(PathBuf, String)>, AttackError> {
    Ok(find_named_images(root)
        .map_err(FileError::io("list images in", root))?
        .into_iter()
        .filter(|(_, n)| names.contains(n))
        .collect())
}

/// Where the features of prepared images come from.
#[derive(Clone)]
pub enum FeatureSource<'a> {
    /// Extracted as the threat model says, cached here; a learned extractor's network runs on
    /// `device`.
    Extract {
        /// The feature cache.
        cache: &'a FeatureCache,
        /// Where the extractor's network runs (no autodiff).
        device: Device,
    },
    /// Read from this feature store (any pipeline's), by image name.
    Stored(PathBuf),
}

/// Prepares `paths` (and, with extracted features, their mirror images when `mirrors`) in
/// parallel; images that cannot be used are reported once each and returned as reasons.
/// Stored features of another kind than the threat model's are an error, not a skip.
pub fn prepare_all(
    paths: &[(PathBuf, String)],
    threat: &ThreatModel,
    source: &FeatureSource,
    mirrors: bool,
    (stage, observer): (&str, &mut dyn JobObserver),
) -> Result<(Vec<Prepared>, Vec<String>), AttackError> {
    let results: Vec<Result<Prepared, AttackError>> = match source {
        FeatureSource::Extract { cache, device } => {
            let extractor = threat
                .extractor
                .build_on(device)
                .map_err(|e| AttackError::Recipe(format!("cannot build the extractor: {e}")))?;
            let variants: Vec<(&PathBuf, &String, bool)> = paths
                .iter()
                .flat_map(|(p, n)| {
                    std::iter::once((p, n, false)).chain(mirrors.then_some((p, n, true)))
                })
                .collect();
            let tick = observer.stage(stage, variants.len());
            variants
                .par_iter()
                .map(|(p, n, m)| {
                    let r = prepare(p, n, threat, &extractor, cache, *m);
                    tick();
                    r
                })
                .collect()
        }
        FeatureSource::Stored(store) => {
            let stored = read_stored(paths, threat, store)?;
            let tick = observer.stage(stage, stored.len());
            stored
                .into_par_iter()
                .map(|(p, n, features)| {
                    let r = features.and_then(|f| prepare_stored(p, n, threat, f));
                    tick();
                    r
                })
                .collect()
        }
    };
    let mut ok = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    for r in results {
        match r {
            Ok(p) => ok.push(p),
            // An image's mirrored view fails as the image does: say it once.
            Err(e) if failed.contains(&e.to_string()) => {}
            Err(e) => {
                observer.skipped(&e.to_string());
                failed.push(e.to_string());
            }
        }
    }
    Ok((ok, failed))
}

/// An image (path, name) and its features read from a store, or why it has none.
type StoredImage<'p> = (&'p PathBuf, &'p String, Result<FeatureSet, AttackError>);

/// The features of each image of `paths` in `store` (read in turn: stores are single files):
/// an image the store lacks is an error of that image, to be skipped; a store that cannot be
/// read, or features of another kind than the threat model's extractor, fail the whole job.
fn read_stored<'p>(
    paths: &'p [(PathBuf, String)],
    threat: &ThreatModel,
    store: &Path,
) -> Result<Vec<StoredImage<'p>>, AttackError> {
    let Some(expected) = threat.extractor.external_descriptor() else {
        return Err(AttackError::Recipe(format!(
            "the attacker extracts {} features itself and reads no feature store: give \
             --images or --features alone",
            threat.extractor.name()
        )));
    };
    let reader = featleak_descriptors::store::open(store)?;
    // Stores name images with their extension (`a/one.png`), image folders without.
    let mut by_name = std::collections::HashMap::new();
    for stored in reader.names()? {
        let name = image_name(Path::new(&stored), Path::new(""));
        if let Some(other) = by_name.insert(name, stored.clone()) {
            return Err(AttackError::Mismatch {
                path: store.to_path_buf(),
                problem: format!("images '{other}' and '{stored}' differ only in extension"),
            });
        }
    }
    paths
        .iter()
        .map(|(p, n)| {
            let Some(stored) = by_name.get(n) else {
                let missing = AttackError::Mismatch {
                    path: p.clone(),
                    problem: format!("{} holds no features of it", store.display()),
                };
                return Ok((p, n, Err(missing)));
            };
            let features = reader.read(stored)?;
            if let Some(problem) = expected.mismatch(&features, "the attacker's") {
                return Err(AttackError::Mismatch {
                    path: store.to_path_buf(),
                    problem: format!("image '{stored}': {problem}"),
                });
            }
            Ok((p, n, Ok(features)))
        })
        .collect()
}
