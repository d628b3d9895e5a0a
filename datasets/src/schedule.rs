//! What featleak's trainers share so that a run resumed from a checkpoint makes exactly the
//! choices an uninterrupted one would: seeded random streams, the budget (steps and/or minutes)
//! as progress, and the learning-rate schedule over that progress.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A seeded generator for one purpose of a run (`stream` separates e.g. data order from shares).
pub fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Progress in [0, ∞) through a budget of `steps` and/or `minutes`: the larger of the step and
/// time fractions (so whichever budget runs out first ends the run at 1).
pub fn progress(steps: Option<u64>, minutes: Option<f64>, step: u64, seconds: f64) -> f64 {
    let by_steps = steps.map_or(0.0, |s| step as f64 / s.max(1) as f64);
    let by_time = minutes.map_or(0.0, |m| seconds / (m * 60.0).max(1e-9));
    by_steps.max(by_time)
}

/// Learning rate at `step`, `progress` (0–1) through the budget: linear warm-up over the first
/// `warmup` steps, then cosine decay with progress down to 5 % of `base`.
pub fn learning_rate(base: f64, progress: f64, step: u64, warmup: u64) -> f64 {
    if step < warmup {
        return base * (step + 1) as f64 / warmup as f64;
    }
    let t = progress.clamp(0.0, 1.0);
    base * (0.05 + 0.95 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn schedule_warms_up_then_decays_to_five_percent() {
        assert!((learning_rate(1e-3, 0.0, 0, 100) - 1e-5).abs() < 1e-12);
        assert!((learning_rate(1e-3, 0.1, 99, 100) - 1e-3).abs() < 1e-12);
        assert!((learning_rate(1e-3, 0.0, 100, 100) - 1e-3).abs() < 1e-12);
        assert!((learning_rate(1e-3, 1.0, 1000, 100) - 5e-5).abs() < 1e-12);
        assert!((learning_rate(1e-3, 0.5, 500, 100) - 5.25e-4).abs() < 1e-12);
    }

    #[test]
    fn progress_follows_the_budget_that_runs_out_first() {
        assert_eq!(progress(Some(100), None, 25, 1e6), 0.25);
        assert_eq!(progress(None, Some(2.0), 1_000_000, 60.0), 0.5);
        assert_eq!(progress(Some(100), Some(1.0), 50, 45.0), 0.75);
        assert_eq!(progress(None, None, 10, 10.0), 0.0);
    }

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let draw = |seed, stream| rng(seed, stream).random::<u64>();
        assert_eq!(draw(3, 7), draw(3, 7));
        assert_ne!(draw(3, 7), draw(3, 8));
        assert_ne!(draw(3, 7), draw(4, 7));
    }
}
