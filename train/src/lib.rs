//! The training skeleton every featleak trainer shares (the inversion attacker, SOSNet, and the
//! ones to come): a budget of steps and/or minutes and the learning-rate schedule over it
//! ([`budget`]), run folders that never overwrite a user's files ([`folder`]), checkpoints that
//! are one atomic unit ([`checkpoint`]), the loop itself with validation, progress and exact
//! resume ([`trainer`]), and Ctrl-C handling ([`stop`]).
//!
//! A trainer implements [`Trainee`]: one optimiser step, one validation, and how to save and load
//! its model and optimiser into a checkpoint folder. [`train`] does everything else.

#![deny(missing_docs)]

pub mod budget;
pub mod checkpoint;
pub mod error;
pub mod folder;
pub mod stop;
pub mod trainer;

pub use budget::{Budget, Schedule};
pub use checkpoint::Checkpoint;
pub use error::TrainError;
pub use folder::RunFolder;
pub use trainer::{At, MetricsRow, Observer, Progress, Quiet, Trainee, TrainerConfig, train};
