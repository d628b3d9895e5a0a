//! `featleak mitigate`: reveal only part of the features.

use crate::manifest::{Tool, unix_time, write_json};
use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use featleak_datasets::find_files;
use featleak_descriptors::{read_features, write_features};
use featleak_mitigation::Strategy;
use rayon::prelude::*;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand, Clone, Debug)]
pub enum MitigateCommand {
    /// Write mitigated copies of .npz feature files (only the revealed keypoints).
    Apply(ApplyArgs),
}

#[derive(Args, Clone, Debug)]
pub struct ApplyArgs {
    /// Strategy: random, top-response, lowest-response, grid or anms.
    #[arg(long)]
    pub strategy: String,
    /// Fraction of each image's keypoints to reveal (0–1).
    #[arg(long)]
    pub keep: f32,
    /// Folder of .npz feature files (searched recursively).
    #[arg(long)]
    pub features: PathBuf,
    /// Output folder (mirrors the input tree, plus manifest.json).
    #[arg(long)]
    pub out: PathBuf,
    /// Seed of the random choices (each file's seed also depends on its relative path).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Serialize)]
struct FileRecord {
    features: String,
    keypoints: usize,
    revealed: usize,
}

#[derive(Serialize)]
struct Manifest<'a> {
    tool: Tool,
    command: &'static str,
    created_unix: u64,
    seed: u64,
    strategy: Strategy,
    keep: f32,
    source: String,
    files: &'a [FileRecord],
}

/// FNV-1a of a relative path: a stable per-file seed offset.
pub fn path_seed(seed: u64, rel: &str) -> u64 {
    rel.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    }) ^ seed
}

pub fn run(command: &MitigateCommand) -> anyhow::Result<ExitCode> {
    match command {
        MitigateCommand::Apply(args) => apply(args),
    }
}

fn apply(args: &ApplyArgs) -> anyhow::Result<ExitCode> {
    let strategy = Strategy::by_name(&args.strategy).map_err(anyhow::Error::msg)?;
    if !(0.0..=1.0).contains(&args.keep) {
        bail!("--keep must be between 0 and 1 (got {})", args.keep);
    }
    let files = find_files(&args.features, |p| {
        p.extension().is_some_and(|e| e == "npz")
    })
    .with_context(|| format!("cannot list feature files in {}", args.features.display()))?;
    if files.is_empty() {
        bail!("no .npz feature files in {}", args.features.display());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create output folder {}", args.out.display()))?;
    let records = files
        .par_iter()
        .map(|file| {
            let rel = file.strip_prefix(&args.features).expect("below root");
            let features = read_features(file)?;
            let revealed = strategy.apply(
                &features,
                args.keep,
                path_seed(args.seed, &rel.to_string_lossy()),
            );
            let out = args.out.join(rel);
            if let Some(parent) = out.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("cannot create {}", parent.display()))?;
            }
            write_features(&out, &revealed)?;
            Ok(FileRecord {
                features: rel.display().to_string(),
                keypoints: features.len(),
                revealed: revealed.len(),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let manifest = Manifest {
        tool: Tool::current(),
        command: "mitigate apply",
        created_unix: unix_time(),
        seed: args.seed,
        strategy,
        keep: args.keep,
        source: args.features.display().to_string(),
        files: &records,
    };
    write_json(&args.out.join("manifest.json"), &manifest)?;
    let (total, kept): (usize, usize) = records
        .iter()
        .fold((0, 0), |(t, k), r| (t + r.keypoints, k + r.revealed));
    println!(
        "{}: revealed {kept} of {total} keypoints in {} file(s) → {}",
        strategy.name(),
        records.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}
