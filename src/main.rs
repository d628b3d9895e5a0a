//! `featleak`: measure how much local features leak about the images they come from.

mod attack;
mod choices;
mod convert;
mod datasets_cmd;
mod demo;
mod extract;
mod match_eval;
mod merge;
mod mitigate;
mod progress;
mod run_budget;
mod score;
mod train_descriptor;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Measure how much a localization service learns about your photos from the local features
/// (keypoints + descriptors) it is sent, and how to send less.
#[derive(Parser)]
#[command(name = "featleak", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Extract local features from a folder of images into one .npz file per image (or an hloc
    /// .h5, a COLMAP .db).
    Extract(extract::ExtractArgs),
    /// Convert features between a folder of .npz, an hloc features.h5 and a COLMAP database.db.
    Convert(convert::ConvertArgs),
    /// Train an inversion network, or reconstruct images from features with one.
    #[command(subcommand)]
    Attack(attack::AttackCommand),
    /// Matching accuracy (MMA, homography accuracy) of descriptors on homography pairs.
    MatchEval(match_eval::MatchEvalArgs),
    /// PSNR, SSIM and MAE of reconstructions against the original images.
    Score(score::ScoreArgs),
    /// Reveal only part of the features (mitigations).
    #[command(subcommand)]
    Mitigate(mitigate::MitigateCommand),
    /// Run the study end to end on generated scenes (or your own --images) into one folder.
    Demo(demo::DemoArgs),
    /// Train a learned descriptor (SOSNet) on patch pairs mined from your photos.
    TrainDescriptor(train_descriptor::TrainDescriptorArgs),
    /// Join the shard folders of one `extract` or `attack reconstruct` run (--shard K/N) into
    /// what one unsharded run writes.
    Merge(merge::MergeArgs),
    /// Fetch public benchmark data (HPatches, MegaDepth-1500).
    #[command(subcommand)]
    Datasets(datasets_cmd::DatasetsCommand),
}

fn main() -> ExitCode {
    featleak_attack::kernels::allocator::keep_freed_memory();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Extract(args) => extract::run(&args),
        Command::Convert(args) => convert::run(&args),
        Command::MatchEval(args) => match_eval::run(&args),
        Command::Attack(command) => attack::run(&command),
        Command::Score(args) => score::run(&args),
        Command::Mitigate(command) => mitigate::run(&command),
        Command::Demo(args) => demo::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Datasets(command) => datasets_cmd::run(&command),
        Command::TrainDescriptor(args) => train_descriptor::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once: the libraries' messages already name their cause
/// (`cannot read F: reason`), so a cause whose text is already there is not repeated.
fn message(e: &anyhow::Error) -> String {
    let mut text = e.to_string();
    for cause in e.chain().skip(1) {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
    }
    text
}
