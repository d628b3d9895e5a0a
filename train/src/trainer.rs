//! The training loop every featleak trainer runs: steps until the budget is spent, at the
//! schedule's learning rate; validation every `validate_every` steps and at the end; a checkpoint
//! after each validation, at the end, on a stop request and at least every `checkpoint_seconds`;
//! `metrics.csv` rewritten after each checkpoint; exact resume from the checkpoint (every random
//! choice of a [`Trainee`] must derive from the run's seed and the step).

use crate::budget::{Budget, Schedule};
use crate::checkpoint::STATE;
use crate::folder::RunFolder;
use crate::{TrainError, stop};
use featleak_datasets::files::read_json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::time::Instant;

/// How the loop runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainerConfig {
    /// When to stop.
    pub budget: Budget,
    /// The learning rate over the budget.
    pub schedule: Schedule,
    /// Validate (and checkpoint) after every this many steps, and at the end.
    pub validate_every: u64,
    /// Write a checkpoint at least this often (seconds).
    pub checkpoint_seconds: f64,
}

/// Where training stands: saved with every checkpoint as `state.json`, and what [`train`]
/// returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Progress<M, S> {
    /// Optimiser steps done.
    pub step: u64,
    /// Seconds of training so far, over every session of the run.
    pub seconds: f64,
    /// One entry per validation.
    pub history: Vec<M>,
    /// The trainee's own state (loss sums since the last validation, running statistics, ...).
    #[serde(flatten)]
    pub task: S,
}

/// A row of `metrics.csv`.
pub trait MetricsRow {
    /// The header line (column names, comma-separated, no newline).
    const HEADER: &'static str;
    /// The row's values, in the header's order (no newline).
    fn csv_row(&self) -> String;
}

/// When a step or validation happens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct At {
    /// Steps done (the step just taken included).
    pub step: u64,
    /// Seconds of training so far.
    pub seconds: f64,
    /// The learning rate of the last step.
    pub learning_rate: f64,
    /// Whether the budget is spent.
    pub finished: bool,
}

/// What one trainer trains: a model, its optimiser and its data.
pub trait Trainee {
    /// State saved with every checkpoint besides the model and optimiser.
    type State: Serialize + DeserializeOwned;
    /// One validation's results: a row of `metrics.csv`.
    type Metrics: MetricsRow + Serialize + DeserializeOwned + Clone;
    /// The trainer's error type.
    type Error: From<TrainError>;

    /// The state of a run that has not taken a step.
    fn initial_state(&self) -> Self::State;

    /// One optimiser step: the `step`-th (from 0) at `learning_rate`; returns the loss.
    fn step(
        &mut self,
        step: u64,
        learning_rate: f64,
        state: &mut Self::State,
    ) -> Result<f64, Self::Error>;

    /// Validates the model after `at.step` steps.
    fn validate(&mut self, at: At, state: &mut Self::State) -> Result<Self::Metrics, Self::Error>;

    /// Writes the model and optimiser into `folder` (an empty folder that becomes the checkpoint).
    fn save(&self, folder: &Path, state: &Self::State) -> Result<(), Self::Error>;

    /// Loads the model and optimiser from a checkpoint `folder`.
    fn load(&mut self, folder: &Path, state: &Self::State) -> Result<(), Self::Error>;

    /// Called after each checkpoint, and when a run resumes (a crash may have come between a
    /// commit and its exports): writes files derived from it into the run folder (exported
    /// weights, plots). Nothing by default.
    fn exported(
        &self,
        _run: &RunFolder,
        _progress: &Progress<Self::Metrics, Self::State>,
    ) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Hears how training goes (progress bars, logs).
pub trait Observer<M> {
    /// Training continues from a checkpoint at `step`.
    fn resumed(&mut self, _step: u64) {}
    /// A step was taken.
    fn step(&mut self, _at: At, _loss: f64) {}
    /// A validation was done.
    fn validated(&mut self, _metrics: &M) {}
    /// Asked after every step besides Ctrl-C: `true` ends training there, with a checkpoint.
    fn stop_requested(&self) -> bool {
        false
    }
}

/// An observer that hears nothing.
pub struct Quiet;

impl<M> Observer<M> for Quiet {}

/// Trains `trainee` in `run` until the budget is spent, resuming from the run's checkpoint when
/// there is one. A stop request (Ctrl-C or the observer's) ends training after the step in
/// progress, with a checkpoint, as [`TrainError::Interrupted`].
pub fn train<T: Trainee>(
    run: &RunFolder,
    config: &TrainerConfig,
    trainee: &mut T,
    observer: &mut dyn Observer<T::Metrics>,
) -> Result<Progress<T::Metrics, T::State>, T::Error> {
    config.budget.validate()?;
    config.schedule.validate()?;
    let checkpoint = run.checkpoint();
    let mut progress = if checkpoint.recover()? {
        let progress: Progress<T::Metrics, T::State> =
            read_json(&checkpoint.file(STATE)).map_err(TrainError::from)?;
        trainee.load(checkpoint.dir(), &progress.task)?;
        // A crash after the last commit may have left the outputs a checkpoint behind.
        write_outputs(run, trainee, &progress)?;
        observer.resumed(progress.step);
        progress
    } else {
        if run.metrics().exists() {
            return Err(TrainError::DamagedCheckpoint {
                folder: checkpoint.dir().to_path_buf(),
                problem: "the run has metrics but no checkpoint".into(),
            }
            .into());
        }
        Progress {
            step: 0,
            seconds: 0.0,
            history: Vec::new(),
            task: trainee.initial_state(),
        }
    };
    let session = Instant::now();
    let start_seconds = progress.seconds;
    let mut last_checkpoint = Instant::now();
    while config.budget.progress(progress.step, progress.seconds) < 1.0 {
        let lr = config.schedule.at(
            config.budget.progress(progress.step, progress.seconds),
            progress.step,
        );
        let loss = trainee.step(progress.step, lr, &mut progress.task)?;
        if !loss.is_finite() {
            return Err(TrainError::LossNotFinite {
                step: progress.step,
                value: loss,
            }
            .into());
        }
        progress.step += 1;
        progress.seconds = start_seconds + session.elapsed().as_secs_f64();
        let at = At {
            step: progress.step,
            seconds: progress.seconds,
            learning_rate: lr,
            finished: config.budget.progress(progress.step, progress.seconds) >= 1.0,
        };
        observer.step(at, loss);

        let validate = at.finished || progress.step.is_multiple_of(config.validate_every.max(1));
        if validate {
            let m = trainee.validate(at, &mut progress.task)?;
            observer.validated(&m);
            progress.history.push(m);
        }
        let stop = stop::requested() || observer.stop_requested();
        if validate || stop || last_checkpoint.elapsed().as_secs_f64() >= config.checkpoint_seconds
        {
            save(run, trainee, &progress)?;
            last_checkpoint = Instant::now();
        }
        if stop {
            return Err(TrainError::Interrupted {
                step: progress.step,
                folder: run.root().to_path_buf(),
            }
            .into());
        }
    }
    Ok(progress)
}

/// Commits a checkpoint of `progress`, then rewrites `metrics.csv` and the trainee's exports.
fn save<T: Trainee>(
    run: &RunFolder,
    trainee: &T,
    progress: &Progress<T::Metrics, T::State>,
) -> Result<(), T::Error> {
    let mut state = serde_json::to_vec_pretty(progress).map_err(|source| {
        TrainError::File(featleak_datasets::FileError::Json {
            path: run.checkpoint().file(STATE),
            source,
        })
    })?;
    state.push(b'\n');
    run.checkpoint()
        .commit(&state, |folder| trainee.save(folder, &progress.task))?;
    write_outputs(run, trainee, progress)
}

/// Rewrites `metrics.csv` and the trainee's exports from `progress`.
fn write_outputs<T: Trainee>(
    run: &RunFolder,
    trainee: &T,
    progress: &Progress<T::Metrics, T::State>,
) -> Result<(), T::Error> {
    let mut csv = format!("{}\n", T::Metrics::HEADER);
    for m in &progress.history {
        csv.push_str(&m.csv_row());
        csv.push('\n');
    }
    featleak_datasets::files::write_bytes(&run.metrics(), csv.as_bytes())
        .map_err(TrainError::from)?;
    trainee.exported(run, progress)
}
