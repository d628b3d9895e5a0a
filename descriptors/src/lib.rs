//! Local features for featleak: keypoint detectors (DoG, Harris, FAST), descriptors (SIFT through
//! OpenCV, FREAK bit-exact with OpenCV's in Rust, SOSNet in burn with its trainer, XFeat and DISK
//! in burn on their official weights), the
//! [`FeatureSet`] they produce, `.npz` feature files and folders of them, feature stores in
//! hloc's `.h5` and COLMAP's `.db` formats ([`store`]), and sparse feature maps (C×H×W tensors
//! with each descriptor at its keypoint) for the attack.

#![deny(missing_docs)]

pub mod aliked;
pub mod cv;
pub mod detect;
pub mod device;
pub mod disk;
pub mod error;
pub mod extractor;
pub mod features;
pub mod folder;
pub mod freak;
pub mod keypoint;
pub mod layers;
pub mod merge;
pub mod npz;
pub mod sift;
pub mod sosnet;
pub mod sparse_map;
pub mod state_dict;
pub mod store;
pub mod xfeat;

pub use detect::{DetectorConfig, FastConfig, HarrisConfig, SiftParams};
pub use device::{ComputeDevice, DeviceError};
pub use error::{DescriptorError, ExtractError, FeatureFileError};
pub use extractor::{
    AlikedConfig, DESCRIPTOR_NAMES, DETECTOR_NAMES, DescriptorConfig, DiskConfig,
    ExternalDescriptor, Extractor, ExtractorConfig, FeatureExtractor, SosnetConfig, XfeatConfig,
    extract_file,
};
pub use features::{Descriptors, ExtractorInfo, FeatureSet};
pub use freak::{Freak, FreakConfig};
pub use keypoint::Keypoint;
pub use npz::{read_features, write_features};
pub use sift::SiftConfig;
pub use sparse_map::{
    SparseMap, SparseMapConfig, SparsePixels, rasterize, rasterize_at, rasterize_sparse,
};
