//! The mitigation crate's error: every fallible public function returns [`MitigationError`].

use std::path::PathBuf;

/// Why a mitigation, a sweep or its report failed.
#[derive(Debug, thiserror::Error)]
pub enum MitigationError {
    /// The attacker failed (loading, preparing images, fine-tuning, evaluating).
    #[error(transparent)]
    Attack(#[from] featleak_attack::AttackError),
    /// One of featleak's own files could not be read or written.
    #[error(transparent)]
    File(#[from] featleak_datasets::FileError),
    /// A feature file could not be read or written.
    #[error(transparent)]
    FeatureFile(#[from] featleak_descriptors::FeatureFileError),
    /// An image could not be decoded.
    #[error(transparent)]
    Image(#[from] featleak_datasets::ImageLoadError),
    /// Homography pairs could not be read.
    #[error(transparent)]
    Pairs(#[from] featleak_datasets::PairError),
    /// Matching failed.
    #[error(transparent)]
    Match(#[from] featleak_eval::MatchError),
    /// A descriptor failed (extraction from an image file).
    #[error(transparent)]
    Descriptor(#[from] featleak_descriptors::DescriptorError),
    /// Features could not be extracted from an image.
    #[error("{}: {source}", .path.display())]
    Extract {
        /// The image.
        path: PathBuf,
        /// The extractor's reason.
        source: featleak_descriptors::ExtractError,
    },
    /// A strategy name or its inputs are wrong.
    #[error("{0}")]
    Strategy(String),
    /// A defence's name, strength or inputs are wrong.
    #[error("{0}")]
    Defence(String),
    /// A sweep configuration is wrong (`file`: the TOML it came from).
    #[error("{}{problem}", .file.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Config {
        /// The configuration file, when there is one.
        file: Option<PathBuf>,
        /// What is wrong.
        problem: String,
    },
    /// The attacker's leakage scores could not be computed.
    #[error("leakage scores: {0}")]
    Leakage(String),
    /// A folder lacks what a sweep needs, or holds another sweep.
    #[error("{}: {problem}", .folder.display())]
    Folder {
        /// The folder.
        folder: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// An HTML page could not be rendered.
    #[error(transparent)]
    Render(#[from] featleak_eval::html::RenderError),
    /// LPIPS weights could not be loaded.
    #[error("privacy.lpips: {0}")]
    LpipsWeights(#[from] featleak_descriptors::state_dict::WeightsError),
    /// An image metric could not be computed.
    #[error(transparent)]
    Metric(#[from] featleak_eval::MetricError),
    /// A plot could not be drawn.
    #[error("cannot draw {what}: {problem}")]
    Plot {
        /// The plot.
        what: &'static str,
        /// The plotting library's reason.
        problem: String,
    },
}
