//! The training loop on a toy trainee (least squares by SGD on seeded data): budget, validation
//! rows, checkpoints, exact resume after a stop, and refusals.

use featleak_datasets::FileError;
use featleak_datasets::schedule::rng;
use featleak_train::trainer::At;
use featleak_train::{
    Budget, MetricsRow, Observer, Progress, RunFolder, Schedule, TrainError, Trainee,
    TrainerConfig, train,
};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Fits y = 3x − 1 from noisy samples drawn from (seed, step).
struct Line {
    w: [f64; 2],
    /// Adam-like optimiser state, to check it is saved too.
    momentum: [f64; 2],
    seed: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Sums {
    loss: f64,
    steps: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Row {
    step: u64,
    loss: f64,
    error: f64,
}

impl MetricsRow for Row {
    const HEADER: &'static str = "step,loss,error";
    fn csv_row(&self) -> String {
        format!("{},{:.6},{:.6}", self.step, self.loss, self.error)
    }
}

impl Trainee for Line {
    type State = Sums;
    type Metrics = Row;
    type Error = TrainError;

    fn initial_state(&self) -> Sums {
        Sums {
            loss: 0.0,
            steps: 0,
        }
    }

    fn step(&mut self, step: u64, lr: f64, s: &mut Sums) -> Result<f64, TrainError> {
        let mut r = rng(self.seed, step);
        let x: f64 = r.random_range(-1.0..1.0);
        let y = 3.0 * x - 1.0 + r.random_range(-0.1..0.1);
        let e = self.w[0] * x + self.w[1] - y;
        for (k, g) in [e * x, e].into_iter().enumerate() {
            self.momentum[k] = 0.9 * self.momentum[k] + g;
            self.w[k] -= lr * self.momentum[k];
        }
        s.loss += e * e;
        s.steps += 1;
        Ok(e * e)
    }

    fn validate(&mut self, at: At, s: &mut Sums) -> Result<Row, TrainError> {
        let row = Row {
            step: at.step,
            loss: s.loss / s.steps.max(1) as f64,
            error: (self.w[0] - 3.0).abs() + (self.w[1] + 1.0).abs(),
        };
        *s = self.initial_state();
        Ok(row)
    }

    fn save(&self, folder: &Path, _: &Sums) -> Result<(), TrainError> {
        let bytes: Vec<u8> = self
            .w
            .iter()
            .chain(&self.momentum)
            .flat_map(|v| v.to_le_bytes())
            .collect();
        Ok(std::fs::write(folder.join("model.bin"), bytes)
            .map_err(FileError::io("write", folder))?)
    }

    fn load(&mut self, folder: &Path, _: &Sums) -> Result<(), TrainError> {
        let bytes =
            std::fs::read(folder.join("model.bin")).map_err(FileError::io("read", folder))?;
        let v: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        self.w = [v[0], v[1]];
        self.momentum = [v[2], v[3]];
        Ok(())
    }
}

fn line() -> Line {
    Line {
        w: [0.0, 0.0],
        momentum: [0.0, 0.0],
        seed: 7,
    }
}

fn config(steps: u64) -> TrainerConfig {
    TrainerConfig {
        budget: Budget {
            steps: Some(steps),
            minutes: None,
        },
        schedule: Schedule {
            peak: 0.05,
            warmup_steps: 5,
        },
        validate_every: 10,
        checkpoint_seconds: 3600.0,
    }
}

/// Stops after `at` steps.
struct StopAt(u64, u64);

impl Observer<Row> for StopAt {
    fn step(&mut self, at: At, _loss: f64) {
        self.1 = at.step;
    }
    fn stop_requested(&self) -> bool {
        self.1 >= self.0
    }
}

#[test]
fn trains_to_the_budget_and_resumes_exactly_after_a_stop() {
    let dir = tempfile::tempdir().unwrap();
    let whole = RunFolder::prepare(&dir.path().join("whole"), false, "a run").unwrap();
    let mut a = line();
    let done = train(&whole, &config(200), &mut a, &mut featleak_train::Quiet).unwrap();
    assert_eq!(done.step, 200);
    assert_eq!(done.history.len(), 20);
    assert!(
        done.history.last().unwrap().error < 0.2,
        "{:?}",
        done.history.last()
    );
    let csv = std::fs::read_to_string(whole.metrics()).unwrap();
    assert_eq!(csv.lines().count(), 21);
    assert!(csv.starts_with("step,loss,error\n10,"));

    // Stopped after 37 steps (between validations), then resumed by a fresh trainee.
    let parts = RunFolder::prepare(&dir.path().join("parts"), false, "a run").unwrap();
    let e = train(&parts, &config(200), &mut line(), &mut StopAt(37, 0)).unwrap_err();
    assert!(matches!(e, TrainError::Interrupted { step: 37, .. }), "{e}");
    assert!(e.to_string().contains("continue with --resume"), "{e}");
    let saved: Progress<Row, Sums> =
        serde_json::from_slice(&std::fs::read(parts.checkpoint().file("state.json")).unwrap())
            .unwrap();
    assert_eq!(
        (saved.step, saved.history.len(), saved.task.steps),
        (37, 3, 7)
    );
    let mut b = line();
    let resumed = train(&parts, &config(200), &mut b, &mut featleak_train::Quiet).unwrap();
    assert_eq!(resumed.step, 200);
    assert_eq!(b.w, a.w, "the resumed run ends elsewhere");
    let rows = |p: &Progress<Row, Sums>| {
        p.history
            .iter()
            .map(|r| (r.step, r.loss, r.error))
            .collect::<Vec<_>>()
    };
    assert_eq!(rows(&resumed), rows(&done));
    assert_eq!(std::fs::read_to_string(parts.metrics()).unwrap(), csv);

    // A longer budget on resume continues; the same budget is already spent.
    let more = train(
        &parts,
        &config(230),
        &mut line(),
        &mut featleak_train::Quiet,
    )
    .unwrap();
    assert_eq!(more.step, 230);
}

#[test]
fn outputs_a_crash_left_behind_their_checkpoint_are_rewritten_on_resume() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::prepare(&dir.path().join("run"), false, "a run").unwrap();
    train(&run, &config(20), &mut line(), &mut featleak_train::Quiet).unwrap();
    let csv = std::fs::read_to_string(run.metrics()).unwrap();
    // Killed after the last commit, before metrics.csv was rewritten: it lacks the last row.
    let stale: String = csv.lines().take(2).map(|l| format!("{l}\n")).collect();
    std::fs::write(run.metrics(), &stale).unwrap();
    // The budget is spent: resuming trains nothing, but brings the outputs up to date.
    let done = train(&run, &config(20), &mut line(), &mut featleak_train::Quiet).unwrap();
    assert_eq!(done.step, 20);
    assert_eq!(std::fs::read_to_string(run.metrics()).unwrap(), csv);
}

#[test]
fn a_run_whose_checkpoint_is_gone_is_not_restarted_over_its_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::prepare(&dir.path().join("run"), false, "a run").unwrap();
    train(&run, &config(20), &mut line(), &mut featleak_train::Quiet).unwrap();
    std::fs::remove_dir_all(run.checkpoint().dir()).unwrap();
    let e = train(&run, &config(40), &mut line(), &mut featleak_train::Quiet).unwrap_err();
    assert!(
        e.to_string()
            .contains("the run has metrics but no checkpoint"),
        "{e}"
    );
}

#[test]
fn a_loss_that_is_not_finite_ends_training_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let run = RunFolder::prepare(&dir.path().join("run"), false, "a run").unwrap();
    let mut c = config(50);
    c.schedule.peak = 1e150;
    let e = train(&run, &c, &mut line(), &mut featleak_train::Quiet).unwrap_err();
    assert!(e.to_string().contains("lower the learning rate"), "{e}");
    c.budget = Budget::default();
    let e = train(&run, &c, &mut line(), &mut featleak_train::Quiet).unwrap_err();
    assert!(matches!(e, TrainError::NoBudget), "{e}");
}
