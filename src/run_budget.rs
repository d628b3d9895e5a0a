//! The budget and resume flags every training command takes (`attack train`,
//! `train-descriptor`), and the check that `--out` is used the way they say.

use anyhow::bail;
use clap::Args;
use std::path::Path;

/// `--minutes`, `--steps` and `--resume`.
#[derive(Args, Clone, Debug, Default)]
pub struct RunBudget {
    /// Training budget in minutes (summed over resumed sessions).
    #[arg(long)]
    pub minutes: Option<f64>,
    /// Training budget in optimiser steps.
    #[arg(long)]
    pub steps: Option<u64>,
    /// Continue the run in --out from its last checkpoint.
    #[arg(long)]
    pub resume: bool,
}

impl RunBudget {
    /// Checks `out` against `--resume`: a new run must not overwrite `what` already there
    /// (recognised by its configuration file `config`) and needs a budget; a resume needs a run.
    pub fn check_out(&self, out: &Path, config: &Path, what: &str) -> anyhow::Result<()> {
        let existing = config.exists();
        if existing && !self.resume {
            bail!(
                "{} already holds {what}; pass --resume to continue it, or choose another --out",
                out.display()
            );
        }
        if self.resume && !existing {
            bail!(
                "--resume: {} holds no run (no {})",
                out.display(),
                config.file_name().unwrap_or_default().to_string_lossy()
            );
        }
        if !self.resume && self.minutes.is_none() && self.steps.is_none() {
            bail!("give a training budget: --minutes M and/or --steps N");
        }
        Ok(())
    }

    /// The budget a resumed run continues with: `(minutes, steps)` when either is given, else
    /// `None` (the run keeps its own).
    pub fn extension(&self) -> Option<(Option<f64>, Option<u64>)> {
        (self.minutes.is_some() || self.steps.is_some()).then_some((self.minutes, self.steps))
    }
}
