//! How long a run trains and at which learning rate: a budget of optimiser steps and/or minutes
//! (summed over resumed sessions), seen as progress in [0, 1], and the learning-rate schedule
//! over that progress (linear warm-up, then cosine decay).

use crate::TrainError;
use serde::{Deserialize, Serialize};

/// A training budget: whichever of `steps` and `minutes` runs out first ends the run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Optimiser steps.
    pub steps: Option<u64>,
    /// Minutes of training, summed over every session of the run.
    pub minutes: Option<f64>,
}

impl Budget {
    /// Checks that the budget ends somewhere and holds sensible numbers.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.steps.is_none() && self.minutes.is_none() {
            return Err(TrainError::NoBudget);
        }
        if let Some(m) = self.minutes
            && !(m.is_finite() && m > 0.0)
        {
            return Err(TrainError::BadBudget(format!(
                "minutes must be a positive number, not {m}"
            )));
        }
        if self.steps == Some(0) {
            return Err(TrainError::BadBudget("steps must be at least 1".into()));
        }
        Ok(())
    }

    /// Progress in [0, ∞) after `step` steps and `seconds` of training: the larger of the step
    /// and time fractions, so whichever budget runs out first ends the run at 1.
    pub fn progress(&self, step: u64, seconds: f64) -> f64 {
        let by_steps = self.steps.map_or(0.0, |s| step as f64 / s.max(1) as f64);
        let by_time = self.minutes.map_or(0.0, |m| seconds / (m * 60.0).max(1e-9));
        by_steps.max(by_time)
    }
}

/// The learning-rate schedule: linear warm-up over the first `warmup_steps` steps, then cosine
/// decay with the budget's progress down to 5 % of `peak`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Peak learning rate.
    pub peak: f64,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
}

impl Schedule {
    /// Checks that the peak learning rate is a positive number.
    pub fn validate(&self) -> Result<(), TrainError> {
        if !(self.peak.is_finite() && self.peak > 0.0) {
            return Err(TrainError::BadBudget(format!(
                "the learning rate must be a positive number, not {}",
                self.peak
            )));
        }
        Ok(())
    }

    /// Learning rate at `step`, `progress` (0–1) through the budget.
    pub fn at(&self, progress: f64, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let t = progress.clamp(0.0, 1.0);
        self.peak * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_five_percent() {
        let s = Schedule {
            peak: 1e-3,
            warmup_steps: 100,
        };
        assert!((s.at(0.0, 0) - 1e-5).abs() < 1e-12);
        assert!((s.at(0.1, 99) - 1e-3).abs() < 1e-12);
        assert!((s.at(0.0, 100) - 1e-3).abs() < 1e-12);
        assert!((s.at(1.0, 1000) - 5e-5).abs() < 1e-12);
        assert!((s.at(0.5, 500) - 5.25e-4).abs() < 1e-12);
    }

    #[test]
    fn progress_follows_the_budget_that_runs_out_first() {
        let b = |steps, minutes| Budget { steps, minutes };
        assert_eq!(b(Some(100), None).progress(25, 1e6), 0.25);
        assert_eq!(b(None, Some(2.0)).progress(1_000_000, 60.0), 0.5);
        assert_eq!(b(Some(100), Some(1.0)).progress(50, 45.0), 0.75);
        assert_eq!(b(None, None).progress(10, 10.0), 0.0);
    }

    #[test]
    fn budgets_without_an_end_or_with_bad_numbers_are_refused() {
        let b = |steps, minutes| Budget { steps, minutes }.validate();
        assert!(matches!(b(None, None), Err(TrainError::NoBudget)));
        assert!(b(Some(0), None).is_err());
        assert!(b(None, Some(f64::NAN)).is_err());
        assert!(b(None, Some(-1.0)).is_err());
        assert!(b(Some(3), Some(0.5)).is_ok());
        let s = |peak| Schedule {
            peak,
            warmup_steps: 0,
        };
        assert!(s(f64::NAN).validate().is_err());
        assert!(s(0.0).validate().is_err());
        assert!(s(1e-3).validate().is_ok());
    }
}
