//! The study crate's error.

use std::path::PathBuf;

/// Why a study could not run.
#[derive(Debug, thiserror::Error)]
pub enum StudyError {
    /// The settings do not make sense.
    #[error("{0}")]
    Settings(String),
    /// The output folder holds another study, or an input folder too few images.
    #[error("{}: {problem}", .folder.display())]
    Folder {
        /// The folder.
        folder: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// One of featleak's own files could not be read or written.
    #[error(transparent)]
    File(#[from] featleak_datasets::FileError),
    /// An image could not be decoded.
    #[error(transparent)]
    Image(#[from] featleak_datasets::ImageLoadError),
    /// Feature extraction failed.
    #[error(transparent)]
    Descriptor(#[from] featleak_descriptors::DescriptorError),
    /// An extractor could not be configured.
    #[error(transparent)]
    Extract(#[from] featleak_descriptors::ExtractError),
    /// Matching evaluation failed.
    #[error(transparent)]
    Eval(#[from] featleak_eval::EvalError),
    /// An attacker could not be trained or run.
    #[error(transparent)]
    Attack(#[from] featleak_attack::AttackError),
    /// The mitigation sweep failed.
    #[error(transparent)]
    Mitigation(#[from] featleak_mitigation::MitigationError),
    /// The report page could not be rendered.
    #[error(transparent)]
    Render(#[from] featleak_eval::html::RenderError),
    /// A run holds no checkpoint, or the training skeleton failed.
    #[error(transparent)]
    Train(#[from] featleak_train::TrainError),
    /// Settings could not be written as JSON for the report.
    #[error("cannot serialise the settings: {0}")]
    Json(#[from] serde_json::Error),
    /// Training was interrupted (Ctrl-C); the run's checkpoint holds `step`.
    #[error("interrupted after step {step} of {}: checkpoint written; rerun the same `featleak demo --out {}` to continue", .run.display(), .out.display())]
    Interrupted {
        /// The run that was training.
        run: PathBuf,
        /// Its last step, in its checkpoint.
        step: u64,
        /// The study's folder.
        out: PathBuf,
    },
}
