//! featleak's study as a library: from images (generated scenes or the user's photos) to
//! features, matching accuracy, attackers, reconstructions, baselines, a mitigation sweep and
//! one self-contained report. [`StudyConfig`] holds every choice; [`run_study`] runs the stages
//! and writes the report; [`StudyObserver`] hears their progress.
//!
//! Every stage is one of the other crates' jobs with settings this crate picks; `demo.json` in
//! the output folder records them, and a rerun with the same settings reuses finished work.

#![deny(missing_docs)]

pub mod config;
pub mod error;
pub mod folder;
pub mod pipeline;
pub mod report;

pub use config::{POS_ONLY, StudyConfig};
pub use error::StudyError;
pub use folder::StudyDir;
pub use pipeline::{StudyObserver, run_study};
