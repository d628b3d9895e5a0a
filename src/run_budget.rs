//! The budget and resume flags every training command takes (`attack train`,
//! `train-descriptor`).

use clap::Args;
use featleak_train::Budget;

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
    /// The budget of a new run (checked).
    pub fn budget(&self) -> anyhow::Result<Budget> {
        let budget = Budget {
            steps: self.steps,
            minutes: self.minutes,
        };
        budget.validate()?;
        Ok(budget)
    }

    /// The budget a resumed run continues with when `--minutes` or `--steps` is given, else
    /// `None` (the run keeps its own).
    pub fn extension(&self) -> anyhow::Result<Option<Budget>> {
        if self.minutes.is_none() && self.steps.is_none() {
            return Ok(None);
        }
        self.budget().map(Some)
    }
}
