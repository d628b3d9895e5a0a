//! `featleak datasets`: fetch public benchmark data.

use anyhow::bail;
use clap::{Args, Subcommand};
use featleak_datasets::fetch::{DATASETS, FetchProgress, Fetched, dataset, fetch};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Subcommand, Clone, Debug)]
pub enum DatasetsCommand {
    /// Download and extract a public benchmark: hpatches (HPatches sequences) or
    /// megadepth-sample (MegaDepth-1500). Needs internet access to the official host (machines
    /// without it, like featleak's development machine, cannot fetch; --url takes a mirror).
    /// Interrupted downloads resume on the next run; the archive's SHA-256 is checked with
    /// --sha256 and recorded in DIR/fetch.json.
    Fetch(FetchArgs),
    /// List the datasets `fetch` knows, with their official URLs.
    List,
}

#[derive(Args, Clone, Debug)]
pub struct FetchArgs {
    /// Dataset name: hpatches or megadepth-sample.
    pub name: String,
    /// Folder to extract into (created).
    #[arg(long)]
    pub to: PathBuf,
    /// Download from this URL (a mirror of the same archive) instead of the official one.
    #[arg(long)]
    pub url: Option<String>,
    /// Expected SHA-256 of the archive (hex); a mismatch deletes the download and fails.
    #[arg(long)]
    pub sha256: Option<String>,
    /// Seconds to wait for the server to connect, answer or send more data before giving up
    /// (the download is kept: rerun to continue it).
    #[arg(long, default_value_t = 30.0, value_parser = positive_seconds)]
    pub timeout: f64,
}

/// A number of seconds > 0.
fn positive_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err(format!("'{text}' is not a number of seconds above 0")),
    }
}

pub fn run(command: &DatasetsCommand) -> anyhow::Result<ExitCode> {
    match command {
        DatasetsCommand::List => {
            for d in DATASETS {
                println!("{:<18} {}\n{:<18} {}", d.name, d.about, "", d.url);
            }
            Ok(ExitCode::SUCCESS)
        }
        DatasetsCommand::Fetch(args) => fetch_command(args),
    }
}

struct Bar(ProgressBar);

impl FetchProgress for Bar {
    fn bytes(&mut self, done: u64, total: Option<u64>) {
        if let Some(t) = total {
            self.0.set_length(t);
        }
        self.0.set_position(done);
    }
}

fn fetch_command(args: &FetchArgs) -> anyhow::Result<ExitCode> {
    let known = dataset(&args.name)?;
    if let Some(h) = &args.sha256
        && (h.len() != 64 || !h.chars().all(|c| c.is_ascii_hexdigit()))
    {
        bail!("--sha256 must be 64 hexadecimal digits, got '{h}'");
    }
    let url = args.url.as_deref().unwrap_or(known.url);
    let sha256 = args.sha256.as_deref().or(known.sha256);
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("valid template"),
    );
    bar.set_prefix(known.name);
    let result = fetch(
        known.name,
        url,
        known.archive,
        sha256,
        &args.to,
        Duration::from_secs_f64(args.timeout),
        &mut Bar(bar.clone()),
    );
    bar.finish_and_clear();
    match result? {
        Fetched::Already(r) => println!(
            "{} is already in {} ({} files, SHA-256 {})",
            r.dataset,
            args.to.display(),
            r.files,
            r.sha256
        ),
        Fetched::New {
            record,
            resumed_from,
        } => {
            if resumed_from > 0 {
                println!("resumed a partial download at {resumed_from} bytes");
            }
            println!(
                "{}: {} bytes, SHA-256 {}{}; {} files extracted into {}",
                record.dataset,
                record.bytes,
                record.sha256,
                if sha256.is_some() {
                    " (matches)"
                } else {
                    " (no published checksum to compare; recorded in fetch.json)"
                },
                record.files,
                args.to.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
