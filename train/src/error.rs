//! What can go wrong while setting up, checkpointing or resuming a run.

use std::path::PathBuf;

/// Errors of the training skeleton; each names the file or folder involved.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Neither steps nor minutes were given.
    #[error("give a training budget: --minutes M and/or --steps N")]
    NoBudget,
    /// A budget or schedule number is out of range.
    #[error("bad training budget: {0}")]
    BadBudget(String),
    /// A new run was asked for in a folder that already holds one.
    #[error("{} already holds {what}; pass --resume to continue it, or choose another --out", .folder.display())]
    AlreadyARun {
        /// The run folder.
        folder: PathBuf,
        /// What kind of run it holds.
        what: String,
    },
    /// `--resume` was given for a folder without a run.
    #[error("--resume: {} holds no run (no {})", .folder.display(), .config)]
    NoRun {
        /// The folder given.
        folder: PathBuf,
        /// The configuration file that was looked for.
        config: String,
    },
    /// A new run was asked for in a folder holding files featleak did not write.
    #[error(
        "{} is not empty and holds no featleak run; choose an empty or new folder for --out (featleak never overwrites files it did not write)",
        .0.display()
    )]
    ForeignFolder(PathBuf),
    /// The run has metrics but its checkpoint is gone or damaged: resuming would restart from
    /// step 0 over them.
    #[error("{}: {problem}; resuming would start again from step 0 over the run's metrics: start a new run in another folder", .folder.display())]
    DamagedCheckpoint {
        /// The checkpoint folder.
        folder: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The run's configuration belongs to another kind of run or another version.
    #[error("{}: {problem}", .path.display())]
    Config {
        /// The configuration file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// One of the run's files could not be read or written.
    #[error(transparent)]
    File(#[from] featleak_datasets::FileError),
    /// The loss stopped being a finite number.
    #[error("the loss became {value} at step {step}; lower the learning rate")]
    LossNotFinite {
        /// The step that produced it.
        step: u64,
        /// The loss.
        value: f64,
    },
    /// Training was interrupted (Ctrl-C, SIGTERM); the checkpoint holds `step`.
    #[error("interrupted after step {step}: checkpoint written; continue with --resume --out {}", .folder.display())]
    Interrupted {
        /// The last step done, which the checkpoint holds.
        step: u64,
        /// The run folder.
        folder: PathBuf,
    },
}
