//! `featleak convert`: features from one store format to another (a folder of .npz, an hloc
//! .h5, a COLMAP .db; chosen by the path).

use clap::Args;
use featleak_descriptors::store::{self, Format};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Clone, Debug)]
pub struct ConvertArgs {
    /// Features to read: a folder of .npz (from `extract`), FILE.h5 (hloc) or FILE.db (COLMAP).
    #[arg(long)]
    pub from: PathBuf,
    /// Where to write them, in the format of its path: FILE.h5, FILE.db or a folder. Must be new,
    /// empty, or a store featleak wrote (which is replaced).
    #[arg(long)]
    pub to: PathBuf,
}

pub fn run(args: &ConvertArgs) -> anyhow::Result<ExitCode> {
    let (from, to) = (Format::of(&args.from)?, Format::of(&args.to)?);
    let n = store::convert(&args.from, &args.to)?;
    println!(
        "converted {n} image(s): {} ({}) → {} ({})",
        args.from.display(),
        from.name(),
        args.to.display(),
        to.name()
    );
    Ok(ExitCode::SUCCESS)
}
