//! Errors of extraction and feature files.

use std::path::PathBuf;

/// Why features could not be extracted from an image.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("image is {width}×{height}, smaller than the {min}×{min} this extractor needs")]
    ImageTooSmall { width: u32, height: u32, min: u32 },
    #[error("no keypoints detected")]
    NoKeypoints,
    #[error("invalid extractor configuration: {0}")]
    Config(String),
    #[error("OpenCV: {0}")]
    OpenCv(String),
}

/// Why a feature file could not be written or read; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum FeatureFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a featleak feature file: {problem}")]
    Format { path: PathBuf, problem: String },
}
