//! `featleak attack reconstruct` as one library call: a trained attacker turns victims' features
//! (extracted from images, or read from feature files alone: the real attack) into images, with
//! scores against the originals when they are known, and a gallery page (template
//! `attack/templates/reconstruct_gallery.html`). With a [`Shard`] only part of the sorted victim
//! list is reconstructed, and `shard.json` ([`crate::merge::ShardManifest`]) records what
//! `featleak merge` needs to join the parts.

use crate::AttackError;
use crate::data::{centre_view, make_batch};
use crate::device::ComputeDevice;
use crate::merge::{ShardManifest, ShardRow};
use crate::session::{FeatureSource, JobObserver, prepare_all};
use crate::threat::{Share, ThreatModel};
use crate::training::{to_device, to_images};
use crate::zoo::{Attacker, AttackerSource};
use featleak_datasets::FileError;
use featleak_datasets::files::{save_png, write_bytes, write_json};
use featleak_datasets::manifest::Tool;
use featleak_datasets::schedule::rng;
use featleak_datasets::shard::{self, Shard};
use featleak_datasets::{ResizeCrop, find_files, find_named_images, image_name};
use featleak_descriptors::store::{self, Format};
use featleak_descriptors::{FeatureSet, read_features};
use featleak_eval::gallery::{Gallery, GalleryRow, draw_keypoints, png_data_uri};
use featleak_eval::score_report::{NamedScores, ScoreReport, score_images};
use image::RgbImage;
use std::path::{Path, PathBuf};

/// Whose features are reconstructed.
#[derive(Clone, Debug)]
pub enum Victims {
    /// Images: features are extracted as the threat model says, and scores computed.
    Images(PathBuf),
    /// Feature files (.npz) alone, without the images.
    Features(PathBuf),
    /// Images whose features another pipeline made, read from this store (for an attacker
    /// trained on such features): scores computed as with [`Victims::Images`].
    ImagesWithFeatures {
        /// The victim images.
        images: PathBuf,
        /// Their features: an npz folder, an hloc `.h5` or a COLMAP `.db`.
        features: PathBuf,
    },
}

/// A reconstruction job.
#[derive(Clone, Debug)]
pub struct ReconstructConfig {
    /// The attacker: a run folder or a bundled one.
    pub attacker: AttackerSource,
    /// Whose features.
    pub victims: Victims,
    /// Output folder: NAME.png per victim, metrics.json (with images) and index.html.
    pub out: PathBuf,
    /// Share of keypoints revealed (default: the threat model's attack share).
    pub share: Option<f32>,
    /// Seed of the revealed subsets.
    pub seed: u64,
    /// Where the network runs.
    pub device: ComputeDevice,
    /// Reconstruct only this part of the sorted victim list (`None`: all of it).
    pub shard: Option<Shard>,
}

/// The random stream of the keypoints revealed of the victim at position `index` of the sorted
/// victim list: one stream per victim, so that a shard reveals what the whole run reveals.
fn victim_stream(index: usize) -> u64 {
    (99 << 32) + index as u64
}

/// One victim: its position in the sorted victim list, its name, the revealed features on the
/// reconstruction grid, and the reference picture when known.
struct Victim {
    index: usize,
    name: String,
    reference: Option<RgbImage>,
    features: FeatureSet,
}

/// Runs the job; returns the scores when the victims are images.
pub fn reconstruct(
    job: &ReconstructConfig,
    observer: &mut dyn JobObserver,
) -> Result<Option<ScoreReport>, AttackError> {
    let (device, description) = job.device.open()?;
    observer.device(&description);
    let Attacker { threat, model, .. } = job.attacker.load(&device)?;
    let threat = &threat;
    if let Some(s) = job.share
        && !Share::fixed(s).is_valid()
    {
        return Err(AttackError::Recipe(format!(
            "--share must be in (0, 1], got {s}"
        )));
    }
    let share = job.share.map_or(threat.attack_share, Share::fixed);
    if let (Some(_), Victims::Images(_)) = (threat.extractor.external_descriptor(), &job.victims) {
        return Err(AttackError::Recipe(format!(
            "{} was trained on features read from a store ({}): give the victims' features \
             with --features (and --images to score the reconstructions)",
            job.attacker,
            threat.extractor.name()
        )));
    }
    let victims = match &job.victims {
        Victims::Images(dir) => from_images(
            dir,
            job.shard,
            &FeatureSource::Extract {
                cache: &job.attacker.feature_cache(),
                device: device.clone(),
            },
            threat,
            observer,
        )?,
        Victims::ImagesWithFeatures { images, features } => from_images(
            images,
            job.shard,
            &FeatureSource::Stored(features.clone()),
            threat,
            observer,
        )?,
        Victims::Features(dir) => from_feature_files(dir, job.shard, threat, observer)?,
    };
    let r = threat.resolution;
    let tick = observer.stage("reconstruct", victims.len());
    let mut rows = Vec::new();
    let mut scores = Vec::new();
    for chunk in victims.chunks(8) {
        // Victims without a reference get a black placeholder target (unused).
        let items: Vec<_> = chunk
            .iter()
            .map(|v| {
                let target = v.reference.clone().unwrap_or_else(|| RgbImage::new(r, r));
                let mut choice = rng(job.seed, victim_stream(v.index));
                (target, threat.reveal(&v.features, share, &mut choice))
            })
            .collect();
        let batch = make_batch(&items, &threat.sparse_map());
        let (input, _) = to_device(&batch, &device)?;
        let outputs = to_images(model.forward(&input));
        for ((v, out), (_, revealed)) in chunk.iter().zip(outputs).zip(items) {
            save_png(&job.out.join(format!("{}.png", v.name)), &out)?;
            let mut pictures = Vec::new();
            let mut metrics = Vec::new();
            if let Some(reference) = &v.reference {
                let s = score_images(reference, &out)?;
                scores.push(NamedScores::new(&v.name, &s));
                pictures.push(reference.clone());
                metrics = vec![Some(s.psnr), Some(s.ssim), Some(s.mae)];
            }
            pictures.push(draw_keypoints(&revealed));
            pictures.push(out);
            rows.push(GalleryRow {
                name: format!("{} ({} keypoints)", v.name, revealed.len()),
                pictures,
                metrics,
            });
            tick();
        }
    }
    let page = GalleryPage {
        title: format!(
            "featleak reconstructions — {} under {}",
            threat.extractor.name(),
            threat.name
        ),
        with_reference: !matches!(job.victims, Victims::Features(_)),
        run: job.attacker.to_string(),
        threat: threat.name.clone(),
        share_min: share.min.to_string(),
        share_max: share.max.to_string(),
        size: r,
    };
    if let Some(shard) = job.shard {
        let (kind, root) = match &job.victims {
            Victims::Images(dir) | Victims::ImagesWithFeatures { images: dir, .. } => {
                ("images", dir)
            }
            Victims::Features(dir) => ("features", dir),
        };
        let mut scores = scores.iter();
        let manifest = ShardManifest {
            tool: Tool::current(),
            command: crate::merge::COMMAND.into(),
            shard,
            victims: kind.into(),
            victims_root: root.display().to_string(),
            seed: job.seed,
            device: job.device.to_string(),
            page: page.clone(),
            rows: victims
                .iter()
                .zip(&rows)
                .map(|(v, row)| ShardRow {
                    index: v.index,
                    name: v.name.clone(),
                    label: row.name.clone(),
                    pictures: row.pictures.iter().map(png_data_uri).collect(),
                    scores: v.reference.as_ref().and_then(|_| scores.next().cloned()),
                })
                .collect(),
        };
        write_json(&job.out.join(crate::merge::SHARD_MANIFEST), &manifest)?;
    }
    write_pages(&job.out, &page, rows, scores)
}

/// Writes `metrics.json` (victims with references) and `index.html` into `out`; returns the
/// scores.
pub(crate) fn write_pages(
    out: &Path,
    page: &GalleryPage,
    rows: Vec<GalleryRow>,
    scores: Vec<NamedScores>,
) -> Result<Option<ScoreReport>, AttackError> {
    let mut picture_columns = vec!["revealed keypoints".into(), "reconstruction".into()];
    let mut report = None;
    if page.with_reference {
        picture_columns.insert(0, "original".into());
        let scores = ScoreReport::new(scores);
        write_json(&out.join("metrics.json"), &scores)?;
        report = Some(scores);
    }
    let gallery = Gallery {
        title: page.title.clone(),
        picture_columns,
        metric_columns: if page.with_reference {
            vec!["PSNR [dB]".into(), "SSIM".into(), "MAE".into()]
        } else {
            vec![]
        },
        rows,
    };
    let html = gallery.render(
        "reconstruct_gallery.html",
        include_str!("../templates/reconstruct_gallery.html"),
        page,
    )?;
    write_bytes(&out.join("index.html"), html.as_bytes())?;
    Ok(report)
}

/// The gallery page's title, and the variables of `templates/reconstruct_gallery.html` besides
/// the gallery.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GalleryPage {
    /// The page's title.
    pub title: String,
    /// Whether the victims were images (with originals and scores) rather than features alone.
    pub with_reference: bool,
    /// The attacker (run folder or `zoo:NAME`).
    pub run: String,
    /// The threat model's name.
    pub threat: String,
    /// The share of keypoints revealed, lowest.
    pub share_min: String,
    /// The share of keypoints revealed, highest.
    pub share_max: String,
    /// Side of the reconstructions in pixels.
    pub size: u32,
}

/// Victims from images: prepared as the attacker's training images were (features extracted
/// and cached, or read from a store), seen whole.
fn from_images(
    dir: &Path,
    shard: Option<Shard>,
    source: &FeatureSource,
    threat: &ThreatModel,
    observer: &mut dyn JobObserver,
) -> Result<Vec<Victim>, AttackError> {
    let paths = find_named_images(dir).map_err(FileError::io("list images in", dir))?;
    if paths.is_empty() {
        return Err(AttackError::Nothing {
            what: "images",
            folder: dir.to_path_buf(),
        });
    }
    let (indices, paths): (Vec<usize>, Vec<_>) = shard::select(shard, paths).into_iter().unzip();
    let index: std::collections::HashMap<&str, usize> = paths
        .iter()
        .zip(&indices)
        .map(|((_, name), &i)| (name.as_str(), i))
        .collect();
    let (prepared, _) = prepare_all(&paths, threat, source, false, ("extract", observer))?;
    Ok(prepared
        .into_iter()
        .map(|p| {
            let (target, features) = p.view(&centre_view(threat));
            Victim {
                index: index[p.name.as_str()],
                name: p.name,
                reference: Some(target),
                features,
            }
        })
        .collect())
}

/// Victims from feature files alone, checked against the attacker's extractor. Files whose
/// images became grey another way than the attacker's (features of the same kind, rounded
/// differently) are attacked, and the observer told once.
fn from_feature_files(
    dir: &Path,
    shard: Option<Shard>,
    threat: &ThreatModel,
    observer: &mut dyn JobObserver,
) -> Result<Vec<Victim>, AttackError> {
    // An hloc .h5 or COLMAP .db holds images by name; a folder holds one .npz per image.
    let stored = match Format::of(dir)? {
        Format::NpzFolder => None,
        _ => Some(store::open(dir)?),
    };
    let items: Vec<(PathBuf, String, Option<String>)> = match &stored {
        Some(s) => s
            .names()?
            .into_iter()
            .map(|n| {
                (
                    dir.join(&n),
                    image_name(Path::new(&n), Path::new("")),
                    Some(n),
                )
            })
            .collect(),
        None => {
            let files = find_files(dir, |p| p.extension().is_some_and(|e| e == "npz"))
                .map_err(FileError::io("list feature files in", dir))?;
            if files.is_empty() {
                return Err(AttackError::Nothing {
                    what: ".npz feature files",
                    folder: dir.to_path_buf(),
                });
            }
            files
                .into_iter()
                .map(|f| {
                    let name = image_name(&f, dir);
                    (f, name, None)
                })
                .collect()
        }
    };
    let r = threat.resolution;
    let our_gray = threat.extractor.gray.name();
    let mut other_gray = std::collections::BTreeMap::<String, usize>::new();
    let victims = shard::select(shard, items)
        .into_iter()
        .map(|(index, (f, name, stored_name))| {
            let features = match (&stored, &stored_name) {
                (Some(s), Some(n)) => s.read(n)?,
                _ => read_features(&f)?,
            };
            let mismatch = |problem: String| AttackError::Mismatch {
                path: f.clone(),
                problem,
            };
            if let Some(expected) = threat.extractor.external_descriptor() {
                // Trained on another pipeline's features: judged by their source and shape.
                if let Some(problem) = expected.mismatch(&features, "the attacker's") {
                    return Err(mismatch(problem));
                }
            } else if features.extractor.name != "unknown"
                && features.extractor.name != threat.extractor.name()
            {
                return Err(mismatch(format!(
                    "features from {} but the attacker was trained on {}",
                    features.extractor.name,
                    threat.extractor.name()
                )));
            }
            // Same name, other descriptor settings (RootSIFT against SIFT, other SOSNet
            // weights): other values than the attacker learned from.
            if threat.extractor.external_descriptor().is_none() {
                let theirs = features.extractor.config.get("descriptor");
                let ours =
                    serde_json::to_value(&threat.extractor.descriptor).expect("serialisable");
                if let Some(theirs) = theirs
                    && *theirs != ours
                {
                    return Err(mismatch(format!(
                        "descriptors computed with {theirs} but the attacker was trained on {ours}"
                    )));
                }
                if let Some(theirs) = features.extractor.config.get("gray")
                    && theirs.as_str() != Some(our_gray)
                {
                    *other_gray.entry(theirs.to_string()).or_default() += 1;
                }
                let dimension = threat.extractor.descriptor.dimension();
                if features.descriptors.dimension() != dimension {
                    return Err(mismatch(format!(
                        "descriptors of {} values, the attacker expects {dimension}",
                        features.descriptors.dimension(),
                    )));
                }
            }
            let t = ResizeCrop::cover(features.image_size, (r, r));
            Ok(Victim {
                index,
                name,
                reference: None,
                features: features.transformed(&t),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    for (theirs, count) in other_gray {
        observer.note(&format!(
            "{count} feature files in {} come from images made grey by {theirs}, the attacker's \
             by \"{our_gray}\": same features up to rounding, attacked as they are",
            dir.display()
        ));
    }
    Ok(victims)
}
