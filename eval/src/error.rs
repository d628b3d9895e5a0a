//! The eval crate's error for whole evaluations; wraps the narrower metric and matching errors.

/// Why an evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// An image metric could not be computed.
    #[error(transparent)]
    Metric(#[from] crate::MetricError),
    /// Matching failed.
    #[error(transparent)]
    Match(#[from] crate::MatchError),
    /// Homography pairs could not be read.
    #[error(transparent)]
    Pairs(#[from] featleak_datasets::PairError),
    /// One of featleak's own files could not be read or written.
    #[error(transparent)]
    File(#[from] featleak_datasets::FileError),
    /// Features could not be extracted.
    #[error(transparent)]
    Descriptor(#[from] featleak_descriptors::DescriptorError),
    /// An extractor could not be built.
    #[error(transparent)]
    Extract(#[from] featleak_descriptors::ExtractError),
    /// A pair could not be scored.
    #[error("pair {pair}: {source}")]
    Pair {
        /// The pair's name.
        pair: String,
        /// Why.
        source: crate::MatchError,
    },
    /// A plot could not be drawn.
    #[error("cannot draw {what}: {problem}")]
    Plot {
        /// The plot's file name.
        what: &'static str,
        /// The plotting library's reason.
        problem: String,
    },
}
