//! `featleak demo`: the study end to end on the embedded default (procedural scenes), so a
//! newcomer sees it work with no data. Today: scenes → SIFT features; later stages (attack,
//! mitigation, report) join as they land.

use crate::extract::{ExtractArgs, extract_folder};
use anyhow::Context;
use clap::Args;
use featleak_datasets::atomic::write_atomic;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Clone, Debug)]
pub struct DemoArgs {
    /// Your own images instead of the generated scenes.
    #[arg(long)]
    pub images: Option<PathBuf>,
    /// Output folder.
    #[arg(long, default_value = "demo-out")]
    pub out: PathBuf,
    /// Number of scenes to generate (without --images).
    #[arg(long, default_value_t = 24)]
    pub scenes: u32,
    /// Seed of the generated scenes and of every later stage.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Scene size: the width and height of the generated images.
const SCENE_SIZE: (u32, u32) = (320, 240);

pub fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let images = match &args.images {
        Some(dir) => dir.clone(),
        None => {
            let dir = args.out.join("scenes");
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            for i in 0..args.scenes {
                let path = dir.join(format!("scene_{i:03}.png"));
                let img = featleak_datasets::synthetic::scene(
                    SCENE_SIZE.0,
                    SCENE_SIZE.1,
                    args.seed.wrapping_add(i as u64),
                );
                write_atomic(&path, |f| {
                    img.write_to(f, image::ImageFormat::Png)
                        .map_err(std::io::Error::other)
                })
                .with_context(|| format!("cannot write {}", path.display()))?;
            }
            println!("generated {} scenes in {}", args.scenes, dir.display());
            dir
        }
    };
    let extract = ExtractArgs {
        descriptor: "sift".into(),
        detector: "dog".into(),
        max_keypoints: featleak_descriptors::extractor::DEFAULT_MAX_KEYPOINTS,
        root_sift: false,
        weights: None,
        images,
        out: args.out.join("features/sift"),
        threads: None,
        seed: args.seed,
        allow_empty: true,
        overwrite: false,
    };
    let summary = extract_folder(&extract)?;
    let total: usize = summary.images.iter().map(|r| r.keypoints).sum();
    println!(
        "SIFT: {} images, {:.0} keypoints per image, features in {}",
        summary.images.len(),
        total as f64 / summary.images.len().max(1) as f64,
        extract.out.display()
    );
    for f in &summary.failures {
        eprintln!("failed: {}: {}", f.image, f.error);
    }
    Ok(if summary.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
