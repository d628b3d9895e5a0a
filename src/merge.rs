//! `--shard K/N` of `extract` and `attack reconstruct`, and `featleak merge`, which joins their
//! shard folders into what one unsharded run writes.

use clap::Args;
use featleak_attack::merge::{Merged, merge_shards};
use featleak_datasets::shard::{Shard, TASK_COUNT, TASK_ID};
use std::path::PathBuf;
use std::process::ExitCode;

/// `--shard`, flattened into the commands that take it.
#[derive(Args, Clone, Debug)]
pub struct ShardArg {
    /// Do only part K of N of the sorted inputs (K 0-based, 0 ≤ K < N): the items at positions
    /// i with i % N == K; `featleak merge` joins the N folders. Default: from a Slurm job array,
    /// K = SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN and N = SLURM_ARRAY_TASK_COUNT when
    /// SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT are set (--array=0-(N-1)); 0/1 is a whole
    /// run.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
}

impl ShardArg {
    /// The shard of this process (`None`: everything); says so when it came from Slurm.
    pub fn resolve(&self) -> anyhow::Result<Option<Shard>> {
        let shard = Shard::resolve(self.shard.as_deref(), |v| std::env::var(v).ok())?;
        if let (None, Some(s)) = (&self.shard, shard) {
            eprintln!("note: shard {s} (from {TASK_ID} and {TASK_COUNT}; --shard 0/1 does all)");
        }
        Ok(shard)
    }
}

#[derive(Args, Clone, Debug)]
pub struct MergeArgs {
    /// Output folder (new or empty): what one unsharded run would have written.
    #[arg(long)]
    pub out: PathBuf,
    /// The N shard folders of one run (`extract` or `attack reconstruct` with --shard K/N), in
    /// any order.
    #[arg(required = true, value_name = "SHARD_DIR")]
    pub shards: Vec<PathBuf>,
}

pub fn run(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let n = args.shards.len();
    match merge_shards(&args.shards, &args.out)? {
        Merged::Features(manifest) => println!(
            "merged {n} feature shards into {}: {} image(s) with features, {} failed",
            args.out.display(),
            manifest.images.len(),
            manifest.failures.len()
        ),
        Merged::Reconstructions { victims, report } => {
            println!(
                "merged {n} reconstruction shards into {}: {victims} victim(s)",
                args.out.display()
            );
            if let Some(r) = report {
                println!(
                    "PSNR {:.2} dB, SSIM {:.4}, MAE {:.4} (means)",
                    r.mean.psnr, r.mean.ssim, r.mean.mae
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
