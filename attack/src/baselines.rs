//! Two trivial "attacks" every reconstruction score is held against: the mean training image of
//! a run (what an attacker knows without any feature), and each victim's own mean colour (what a
//! reconstruction gets by learning only the overall colour). An attacker beats them only by
//! learning something from the features.

use crate::AttackError;
use crate::run::RunConfig;
use featleak_datasets::FileError;
use featleak_datasets::files::write_json;
use featleak_datasets::{ResizeCrop, find_named_images, load_rgb};
use featleak_eval::score_report::{NamedScores, ScoreReport, score_images};
use featleak_train::RunFolder;
use image::{Rgb, RgbImage};
use rayon::prelude::*;
use std::path::{Path, PathBuf};

/// The mean training image baseline's name.
pub const MEAN_IMAGE: &str = "mean-image";
/// Each victim's own mean colour baseline's name.
pub const MEAN_COLOUR: &str = "mean-colour";
/// The baselines' names, as their files in the output folder (`NAME.json`) call them.
pub const BASELINES: [&str; 2] = [MEAN_IMAGE, MEAN_COLOUR];

/// Loads `path` as the attacker sees it: resized and centre-cropped to `r`×`r`.
pub fn load_square(path: &Path, r: u32) -> Result<RgbImage, AttackError> {
    let rgb = load_rgb(path)?;
    Ok(ResizeCrop::cover((rgb.height(), rgb.width()), (r, r)).apply(&rgb))
}

/// The mean of the run's training images at its reconstruction size.
pub fn mean_training_image(config: &RunConfig) -> Result<RgbImage, AttackError> {
    let r = config.threat.resolution;
    let root = PathBuf::from(&config.images_root);
    let train: Vec<PathBuf> = find_named_images(&root)
        .map_err(FileError::io("list images in", &root))?
        .into_iter()
        .filter(|(_, n)| config.train_images.contains(n))
        .map(|(p, _)| p)
        .collect();
    if train.is_empty() {
        return Err(AttackError::Nothing {
            what: "training images of the run",
            folder: root,
        });
    }
    let sums = train
        .par_iter()
        .map(|p| load_square(p, r).map(|img| img.as_raw().iter().map(|&v| v as f64).collect()))
        .try_reduce(
            || vec![0.0; (r * r * 3) as usize],
            |a: Vec<f64>, b| Ok(a.iter().zip(&b).map(|(x, y)| x + y).collect()),
        )?;
    let pixels = sums
        .iter()
        .map(|v| (v / train.len() as f64).round() as u8)
        .collect();
    Ok(RgbImage::from_raw(r, r, pixels).expect("r×r×3 sums"))
}

/// An image of `image`'s size filled with its mean colour.
pub fn mean_colour(image: &RgbImage) -> RgbImage {
    let n = (image.width() * image.height()) as f64;
    let mut mean = [0.0f64; 3];
    for px in image.pixels() {
        (0..3).for_each(|c| mean[c] += px[c] as f64 / n);
    }
    RgbImage::from_pixel(
        image.width(),
        image.height(),
        Rgb(mean.map(|m| m.round() as u8)),
    )
}

/// Scores both baselines on the victim images in `images` at the attacker of `run`'s
/// resolution, writes `mean-image.json` and `mean-colour.json` (the schema of `featleak score`)
/// into `out`, and returns the two reports in [`BASELINES`] order.
pub fn baselines(run: &Path, images: &Path, out: &Path) -> Result<[ScoreReport; 2], AttackError> {
    let config = RunConfig::load(&RunFolder::new(run))?;
    let r = config.threat.resolution;
    let mean_image = mean_training_image(&config)?;
    let victims = find_named_images(images).map_err(FileError::io("list images in", images))?;
    if victims.is_empty() {
        return Err(AttackError::Nothing {
            what: "images",
            folder: images.to_path_buf(),
        });
    }
    let scored: Vec<(NamedScores, NamedScores)> = victims
        .par_iter()
        .map(|(path, name)| -> Result<_, AttackError> {
            let target = load_square(path, r)?;
            let named = |s: featleak_eval::ImageScores| NamedScores::new(name, &s);
            Ok((
                named(score_images(&target, &mean_image)?),
                named(score_images(&target, &mean_colour(&target))?),
            ))
        })
        .collect::<Result<_, _>>()?;
    let (image_scores, colour_scores): (Vec<_>, Vec<_>) = scored.into_iter().unzip();
    let reports = [
        ScoreReport::new(image_scores),
        ScoreReport::new(colour_scores),
    ];
    for (name, report) in BASELINES.iter().zip(&reports) {
        write_json(&out.join(format!("{name}.json")), report)?;
    }
    Ok(reports)
}
