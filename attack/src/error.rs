//! The attack crate's error: every fallible public function returns [`AttackError`], which names
//! the file involved wherever there is one.

use std::path::PathBuf;

/// Why an attack could not be set up, trained or run.
#[derive(Debug, thiserror::Error)]
pub enum AttackError {
    /// The training skeleton failed (budget, run folder, checkpoint, interruption).
    #[error(transparent)]
    Train(#[from] featleak_train::TrainError),
    /// The network's configuration or input does not fit.
    #[error(transparent)]
    Network(#[from] crate::model::UNetError),
    /// The batch of revealed features is inconsistent.
    #[error(transparent)]
    Sparse(#[from] crate::kernels::sparse_conv::SparseError),
    /// The compute device could not be opened.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// An image could not be decoded.
    #[error(transparent)]
    Image(#[from] featleak_datasets::ImageLoadError),
    /// A feature file could not be read or written.
    #[error(transparent)]
    FeatureFile(#[from] featleak_descriptors::FeatureFileError),
    /// A metric could not be computed.
    #[error(transparent)]
    Metric(#[from] featleak_eval::MetricError),
    /// Features could not be extracted from an image.
    #[error("{}: {source}", .path.display())]
    Extract {
        /// The image.
        path: PathBuf,
        /// The extractor's reason.
        source: featleak_descriptors::ExtractError,
    },
    /// An image is smaller than what the threat model reconstructs.
    #[error("{}: image is {width}×{height}, smaller than the {resolution}×{resolution} the threat model reconstructs", .path.display())]
    ImageTooSmall {
        /// The image.
        path: PathBuf,
        /// Its width.
        width: u32,
        /// Its height.
        height: u32,
        /// The reconstruction side.
        resolution: u32,
    },
    /// A threat model (preset name or TOML file) is unknown or inconsistent.
    #[error("{}{problem}", .file.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Threat {
        /// The TOML file, when the threat model came from one.
        file: Option<PathBuf>,
        /// What is wrong.
        problem: String,
    },
    /// A training recipe (sizes, network, images) does not make sense.
    #[error("{0}")]
    Recipe(String),
    /// A folder holds no usable images or feature files.
    #[error("no {what} found in {}", .folder.display())]
    Nothing {
        /// What was looked for ("images", "usable training images", ".npz feature files").
        what: &'static str,
        /// The folder.
        folder: PathBuf,
    },
    /// Victim features do not fit the attacker.
    #[error("{}: {problem}", .path.display())]
    Mismatch {
        /// The feature file.
        path: PathBuf,
        /// How it differs from what the attacker was trained on.
        problem: String,
    },
    /// A saved model or optimiser could not be read, or belongs to another network.
    #[error("{}: {problem}", .path.display())]
    Checkpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// An export was asked into a folder that already holds an attacker.
    #[error("{} already holds an attacker; choose another --out", .folder.display())]
    ExportExists {
        /// The output folder.
        folder: PathBuf,
    },
    /// A bundled attacker is unknown, or its card or weights are unusable.
    #[error("zoo:{name}: {problem}")]
    Zoo {
        /// The name after `zoo:`.
        name: String,
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
    /// One of featleak's own files could not be read or written.
    #[error(transparent)]
    File(#[from] featleak_datasets::FileError),
    /// An HTML page (the gallery) could not be rendered from its template.
    #[error(transparent)]
    Page(#[from] featleak_eval::html::RenderError),
    /// A shard could not be worked out, or reconstruction shards not merged.
    #[error(transparent)]
    Shard(#[from] featleak_datasets::ShardError),
    /// Feature folders could not be merged.
    #[error(transparent)]
    Features(#[from] featleak_descriptors::DescriptorError),
}
