//! Errors of extraction and feature files.

use std::path::PathBuf;

/// Why features could not be extracted from an image.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// A side of the image is shorter than [`crate::extractor::MIN_IMAGE_SIDE`].
    #[error("image is {width}×{height}, smaller than the {min}×{min} this extractor needs")]
    ImageTooSmall {
        /// Image width in pixels.
        width: u32,
        /// Image height in pixels.
        height: u32,
        /// Smallest side accepted, in pixels.
        min: u32,
    },
    /// The configuration cannot be used: unknown detector or descriptor name, budget too large,
    /// unreadable SOSNet weights.
    #[error("invalid extractor configuration: {0}")]
    Config(String),
    /// An OpenCV call failed (its message), or returned data of an unexpected shape or type.
    #[error("OpenCV: {0}")]
    OpenCv(String),
}

/// Why a feature file could not be written or read; always names the file.
#[derive(Debug, thiserror::Error)]
pub enum FeatureFileError {
    /// The file could not be opened, created or written.
    #[error("{path}: {source}")]
    Io {
        /// The feature file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid featleak feature file (not an `.npz`, or arrays missing or
    /// inconsistent).
    #[error("{path}: not a featleak feature file: {problem}")]
    Format {
        /// The feature file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A feature store (a folder of `.npz`, an hloc `.h5`, a COLMAP `.db`) cannot be used as
    /// asked or holds invalid data: unknown extension, a destination holding files featleak did
    /// not write, arrays of the wrong shape, features the format cannot hold.
    #[error("{path}: {problem}")]
    Store {
        /// The store.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The HDF5 or SQLite library failed on the file.
    #[error("{path}: {library}: {message}")]
    Library {
        /// The file.
        path: PathBuf,
        /// "HDF5" or "SQLite".
        library: &'static str,
        /// The library's message.
        message: String,
    },
}

/// The descriptors crate's error for training and loading descriptor networks; wraps the
/// narrower errors above.
#[derive(Debug, thiserror::Error)]
pub enum DescriptorError {
    /// Extraction failed.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// A feature file could not be read or written.
    #[error(transparent)]
    FeatureFile(#[from] FeatureFileError),
    /// Network weights could not be read or written (boxed: the weights errors are large).
    #[error(transparent)]
    Weights(Box<crate::state_dict::WeightsError>),
    /// An image could not be decoded.
    #[error(transparent)]
    Image(#[from] featleak_datasets::ImageLoadError),
    /// The training skeleton failed (budget, run folder, checkpoint, interruption).
    #[error(transparent)]
    Train(#[from] featleak_train::TrainError),
    /// Work on one image file failed (extraction, pair mining).
    #[error("{}: {source}", .path.display())]
    InFile {
        /// The image.
        path: PathBuf,
        /// Why.
        source: Box<DescriptorError>,
    },
    /// An image gave no keypoints where some were required.
    #[error("{}: no keypoints detected (pass --allow-empty to keep such images)", .path.display())]
    NoKeypoints {
        /// The image.
        path: PathBuf,
    },
    /// A folder holds no image.
    #[error("no images found in {} (looked for {})", .0.display(), featleak_datasets::IMAGE_EXTENSIONS.join(", "))]
    NoImages(PathBuf),
    /// A folder of images or features cannot be used as asked.
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
    /// A shard could not be worked out, or shards not merged.
    #[error(transparent)]
    Shard(#[from] featleak_datasets::ShardError),
    /// OpenCV failed.
    #[error("OpenCV: {0}")]
    OpenCv(String),
    /// A patch-pair cache is damaged.
    #[error("{}: {problem}", .path.display())]
    PairFile {
        /// The cache file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// No training pairs could be mined.
    #[error("no patch pairs could be mined from the training photos (too small or too flat?)")]
    NoPairs,
    /// A saved model or optimiser could not be read.
    #[error("{}: {problem}", .path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A model or optimiser could not be serialised.
    #[error("cannot serialise the {what}: {problem}")]
    Serialise {
        /// "model" or "optimiser".
        what: &'static str,
        /// burn's reason.
        problem: String,
    },
}

impl From<opencv::Error> for DescriptorError {
    fn from(e: opencv::Error) -> Self {
        Self::OpenCv(e.to_string())
    }
}

impl From<crate::state_dict::WeightsError> for DescriptorError {
    fn from(e: crate::state_dict::WeightsError) -> Self {
        Self::Weights(Box::new(e))
    }
}
