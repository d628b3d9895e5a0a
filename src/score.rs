//! `featleak score`: PSNR, SSIM and MAE of reconstructions against their reference images, and
//! how well each singles out its reference among all of them (identification).

use anyhow::{Context, bail};
use clap::Args;
use featleak_datasets::files::write_json;
use featleak_datasets::{ResizeCrop, find_named_images, load_rgb};
use featleak_eval::identification::{identify, thumbnail};
use featleak_eval::lpips::{Lpips, LpipsNet};
use featleak_eval::score_report::{NamedScores, ScoreReport, score_images};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Args, Clone, Debug)]
pub struct ScoreArgs {
    /// Folder of reference (original) images.
    #[arg(long)]
    pub reference: PathBuf,
    /// Folder of reconstructions; images are paired by relative path without extension.
    #[arg(long)]
    pub reconstructed: PathBuf,
    /// Output JSON file; a Markdown table is written beside it (same name, .md).
    #[arg(long)]
    pub out: PathBuf,
    /// Resize and centre-crop each reference to its reconstruction's size (the attack's
    /// preprocessing) instead of requiring equal sizes.
    #[arg(long)]
    pub fit: bool,
    /// Also measure LPIPS with this ImageNet backbone checkpoint (torchvision's
    /// `alexnet-owt-7be5be79.pth` or `vgg16-397923af.pth`, or `.safetensors` with its names).
    #[arg(long, value_name = "FILE")]
    pub lpips_backbone: Option<PathBuf>,
    /// The LPIPS backbone's architecture: alex or vgg.
    #[arg(long, default_value = "alex", requires = "lpips_backbone")]
    pub lpips_net: LpipsNet,
}

/// Relative path without extension → file, for every image below `root`.
fn by_stem(root: &Path) -> anyhow::Result<BTreeMap<String, PathBuf>> {
    let mut out = BTreeMap::new();
    for (p, key) in find_named_images(root)
        .with_context(|| format!("cannot list images in {}", root.display()))?
    {
        if let Some(other) = out.insert(key.clone(), p.clone()) {
            bail!(
                "{} and {} both pair as '{key}'; keep one",
                other.display(),
                p.display()
            );
        }
    }
    Ok(out)
}

fn score_one(
    name: &str,
    reference: &Path,
    reconstruction: &Path,
    fit: bool,
    lpips: Option<&Lpips>,
) -> anyhow::Result<NamedScores> {
    let rec = load_rgb(reconstruction)?;
    let mut refimg = load_rgb(reference)?;
    if refimg.dimensions() != rec.dimensions() {
        if !fit {
            let ((rw, rh), (cw, ch)) = (refimg.dimensions(), rec.dimensions());
            bail!(
                "{}: {cw}×{ch} but its reference {} is {rw}×{rh} (pass --fit to resize and centre-crop references)",
                reconstruction.display(),
                reference.display()
            );
        }
        refimg = ResizeCrop::cover(
            (refimg.height(), refimg.width()),
            (rec.height(), rec.width()),
        )
        .apply(&refimg);
    }
    let s = score_images(&refimg, &rec).with_context(|| reconstruction.display().to_string())?;
    let mut named = NamedScores::new(name, &s);
    if let Some(lpips) = lpips {
        named.lpips = Some(
            lpips
                .distance(&refimg, &rec)
                .with_context(|| format!("LPIPS of {}", reconstruction.display()))?,
        );
    }
    Ok(named)
}

/// Candidate references below which identification rates are flagged as hard to compare.
const MIN_CANDIDATES: usize = 200;

/// Ranks each scored reconstruction's reference among every reference (each fitted to the
/// reconstructions' size when `fit`); `None` with fewer than two references.
fn identification(
    references: &BTreeMap<String, PathBuf>,
    reconstructions: &BTreeMap<String, PathBuf>,
    report: &ScoreReport,
    fit: bool,
) -> anyhow::Result<Option<featleak_eval::identification::Identification>> {
    if references.len() < 2 || report.images.is_empty() {
        return Ok(None);
    }
    let queries: Vec<(usize, Vec<f32>)> = report
        .images
        .par_iter()
        .map(|s| {
            let truth = references
                .keys()
                .position(|k| *k == s.name)
                .expect("scored");
            Ok((truth, thumbnail(&load_rgb(&reconstructions[&s.name])?)))
        })
        .collect::<anyhow::Result<_>>()?;
    let size = load_rgb(&reconstructions[&report.images[0].name])?.dimensions();
    let candidates: Vec<Vec<f32>> = references
        .par_iter()
        .map(|(_, path)| {
            let image = load_rgb(path)?;
            let image = if fit {
                ResizeCrop::cover((image.height(), image.width()), (size.1, size.0)).apply(&image)
            } else {
                image
            };
            Ok(thumbnail(&image))
        })
        .collect::<anyhow::Result<_>>()?;
    let (truth, queries): (Vec<usize>, Vec<Vec<f32>>) = queries.into_iter().unzip();
    Ok(Some(identify(&queries, &truth, &candidates)))
}

pub fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let references = by_stem(&args.reference)?;
    let reconstructions = by_stem(&args.reconstructed)?;
    let unmatched: Vec<&String> = reconstructions
        .keys()
        .filter(|k| !references.contains_key(*k))
        .collect();
    for k in &unmatched {
        eprintln!(
            "warning: reconstruction '{k}' has no reference image in {}",
            args.reference.display()
        );
    }
    // A victim left out of the mean changes it: say so.
    for k in references
        .keys()
        .filter(|k| !reconstructions.contains_key(*k))
    {
        eprintln!(
            "warning: reference '{k}' has no reconstruction in {}; it is left out of the means",
            args.reconstructed.display()
        );
    }
    let pairs: Vec<(&String, &PathBuf, &PathBuf)> = reconstructions
        .iter()
        .filter_map(|(k, rec)| references.get(k).map(|r| (k, r, rec)))
        .collect();
    if pairs.is_empty() {
        bail!(
            "no reconstruction in {} pairs with an image in {}",
            args.reconstructed.display(),
            args.reference.display()
        );
    }
    let lpips = match &args.lpips_backbone {
        Some(path) => Some(Lpips::load(args.lpips_net, path)?),
        None => None,
    };
    let results: Vec<anyhow::Result<NamedScores>> = pairs
        .par_iter()
        .map(|(k, r, rec)| score_one(k, r, rec, args.fit, lpips.as_ref()))
        .collect();
    let mut scores = Vec::new();
    let mut failed = 0;
    for r in results {
        match r {
            Ok(s) => scores.push(s),
            Err(e) => {
                eprintln!("skipped {e:#}");
                failed += 1;
            }
        }
    }
    let mut report = ScoreReport::new(scores);
    if let Some(lpips) = &lpips {
        report = report.with_lpips(lpips.net());
    }
    report.identification = identification(&references, &reconstructions, &report, args.fit)
        .unwrap_or_else(|e| {
            eprintln!("warning: identification not measured: {e:#}");
            None
        });
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    write_json(&args.out, &report)?;
    let md = args.out.with_extension("md");
    featleak_datasets::atomic::write_bytes_atomic(&md, report.table().to_markdown().as_bytes())
        .with_context(|| format!("cannot write {}", md.display()))?;
    println!(
        "{} image(s): PSNR {:.2} dB, SSIM {:.4}, MAE {:.4} (means) → {}",
        report.images.len(),
        report.mean.psnr,
        report.mean.ssim,
        report.mean.mae,
        args.out.display()
    );
    if let Some(l) = &report.lpips {
        println!("LPIPS ({}): {:.4} (mean)", l.net.name(), l.mean);
    }
    if let Some(id) = &report.identification {
        println!(
            "identification among {} references: rank-1 {:.3}, rank-5 {:.3}, mean rank {:.1} \
             (chance {:.3})",
            id.candidates, id.rank_1, id.rank_5, id.mean_rank, id.chance
        );
        if id.candidates < MIN_CANDIDATES {
            eprintln!(
                "note: only {} candidate references; rank-1 rates compare only at equal counts \
                 (use {MIN_CANDIDATES} or more)",
                id.candidates
            );
        }
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
