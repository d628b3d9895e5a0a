//! The `Extractor` trait and named extractor configurations (hloc style: one config, one name).

use crate::aliked::Aliked;
use crate::detect::DetectorConfig;
use crate::disk::Disk;
use crate::error::ExtractError;
use crate::features::{Descriptors, ExtractorInfo, FeatureSet};
use crate::freak::{Freak, FreakConfig};
use crate::sift::SiftConfig;
use crate::sosnet::{PatchSampling, Sosnet, sample_patches};
use crate::state_dict::StateDictWeights;
use crate::xfeat::Xfeat;
use burn::prelude::Device;
use featleak_datasets::GrayConversion;
use image::GrayImage;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Smallest image side (pixels) the extractors accept.
pub const MIN_IMAGE_SIDE: u32 = 16;

/// Turns a grey image into a feature set.
pub trait Extractor: Send + Sync {
    /// Name and full configuration, recorded in feature files and manifests.
    fn info(&self) -> ExtractorInfo;
    /// Detects keypoints and computes their descriptors.
    fn extract(&self, gray: &GrayImage) -> Result<FeatureSet, ExtractError>;
}

/// SOSNet settings: the weights (a SOSNet32x32 state_dict) and the patch sampling.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SosnetConfig {
    /// Weights file (PyTorch `.pth` or `.safetensors`); `None`: the bundled weights,
    /// [`crate::sosnet::BUNDLED_WEIGHTS`].
    pub weights: Option<PathBuf>,
    /// How each keypoint's 32×32 patch is cut.
    pub sampling: PatchSampling,
}

/// XFeat settings: the weights (an `XFeatModel` state_dict).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XfeatConfig {
    /// Weights file (the official `xfeat.pt`, or `.safetensors`); `None`: the bundled official
    /// weights, [`crate::xfeat::BUNDLED_WEIGHTS`].
    pub weights: Option<PathBuf>,
}

/// DISK settings: the weights (a DISK U-Net state_dict).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskConfig {
    /// Weights file (the official `depth-save.pth`, or `.safetensors`); `None`: the bundled
    /// official `depth` weights, [`crate::disk::BUNDLED_WEIGHTS`].
    pub weights: Option<PathBuf>,
}

/// ALIKED settings: the weights (an ALIKED-N16 state_dict).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlikedConfig {
    /// Weights file (the official `aliked-n16.pth`, or `.safetensors`); `None`: the bundled
    /// official weights, [`crate::aliked::BUNDLED_WEIGHTS`].
    pub weights: Option<PathBuf>,
}

/// Features made by an extractor featleak does not run (another pipeline's, read from feature
/// files): what an attacker trained on them knows of their descriptors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExternalDescriptor {
    /// The extractor name the files record (`unknown` for hloc and COLMAP files, which record
    /// none).
    pub source: String,
    /// Values per descriptor (bits for binary ones).
    pub dimension: usize,
    /// Binary descriptors (packed bits) rather than floats.
    pub binary: bool,
}

impl ExternalDescriptor {
    /// What `features` hold: their extractor name, dimension and type.
    pub fn of(features: &FeatureSet) -> Self {
        Self {
            source: features.extractor.name.clone(),
            dimension: features.descriptors.dimension(),
            binary: matches!(features.descriptors, Descriptors::Binary(_)),
        }
    }

    /// Why `features` are not of this kind (another named extractor, dimension or type), if
    /// they are not, saying `whose` (e.g. "the attacker's") this kind is. Files that record no
    /// extractor (`unknown`) are judged by shape alone.
    pub fn mismatch(&self, features: &FeatureSet, whose: &str) -> Option<String> {
        let theirs = Self::of(features);
        let shape = |e: &Self| {
            let kind = if e.binary { "binary" } else { "float" };
            format!("{kind} descriptors of {} values", e.dimension)
        };
        if theirs.source != "unknown" && self.source != "unknown" && theirs.source != self.source {
            Some(format!(
                "features from {}; {whose} are from {}",
                theirs.source, self.source
            ))
        } else if (theirs.dimension, theirs.binary) != (self.dimension, self.binary) {
            Some(format!("{}; {whose} are {}", shape(&theirs), shape(self)))
        } else {
            None
        }
    }
}

/// Which descriptor describes the keypoints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DescriptorConfig {
    /// SIFT through OpenCV: 128 floats (`sift`).
    Sift(SiftConfig),
    /// FREAK: 512 bits (`freak`).
    Freak(FreakConfig),
    /// SOSNet: 128 floats of unit norm (`sosnet`).
    Sosnet(SosnetConfig),
    /// XFeat: 64 floats of unit norm, on XFeat's own keypoints (`xfeat`, detector `xfeat`).
    Xfeat(XfeatConfig),
    /// DISK: 128 floats of unit norm, on DISK's own keypoints (`disk`, detector `disk`).
    Disk(DiskConfig),
    /// ALIKED-N16: 128 floats of unit norm, on ALIKED's own keypoints (`aliked`, detector
    /// `aliked`).
    Aliked(AlikedConfig),
    /// Another pipeline's descriptors, read from feature files, never computed (`external`,
    /// detector `external`).
    External(ExternalDescriptor),
}

impl DescriptorConfig {
    /// Uses the network weights at `path` instead of the bundled ones (SOSNet and XFeat).
    pub fn set_weights(&mut self, path: PathBuf) -> Result<(), ExtractError> {
        match self {
            Self::Sosnet(c) => c.weights = Some(path),
            Self::Xfeat(c) => c.weights = Some(path),
            Self::Disk(c) => c.weights = Some(path),
            Self::Aliked(c) => c.weights = Some(path),
            other => {
                return Err(ExtractError::Config(format!(
                    "weights apply to the learned descriptors (sosnet, xfeat, disk, aliked), not {}",
                    other.name()
                )));
            }
        }
        Ok(())
    }

    /// Short name used in extractor names and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Sift(_) => "sift",
            Self::Freak(_) => "freak",
            Self::Sosnet(_) => "sosnet",
            Self::Xfeat(_) => "xfeat",
            Self::Disk(_) => "disk",
            Self::Aliked(_) => "aliked",
            Self::External(_) => "external",
        }
    }

    /// Values per descriptor as counted by [`crate::Descriptors::dimension`] (bits for binary ones).
    pub fn dimension(&self) -> usize {
        match self {
            Self::Sift(_) => crate::sift::SIFT_DIM,
            Self::Freak(_) => 8 * crate::freak::DESCRIPTOR_BYTES,
            Self::Sosnet(_) => crate::sosnet::DESCRIPTOR_SIZE,
            Self::Xfeat(_) => crate::xfeat::DESCRIPTOR_SIZE,
            Self::Disk(_) => crate::disk::DESCRIPTOR_SIZE,
            Self::Aliked(_) => crate::aliked::DESCRIPTOR_SIZE,
            Self::External(e) => e.dimension,
        }
    }

    /// The default configuration of the descriptor called `name`.
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "sift" => Some(Self::Sift(SiftConfig::default())),
            "freak" => Some(Self::Freak(FreakConfig::default())),
            "sosnet" => Some(Self::Sosnet(SosnetConfig {
                weights: None,
                sampling: PatchSampling::oriented(),
            })),
            "xfeat" => Some(Self::Xfeat(XfeatConfig::default())),
            "disk" => Some(Self::Disk(DiskConfig::default())),
            "aliked" => Some(Self::Aliked(AlikedConfig::default())),
            _ => None,
        }
    }
}

/// Names accepted by [`DescriptorConfig::by_name`].
pub const DESCRIPTOR_NAMES: &[&str] = &["sift", "freak", "sosnet", "xfeat", "disk", "aliked"];

/// Descriptors computed by the network that also detects their keypoints: each goes with the
/// detector of its own name only.
pub const JOINT_NAMES: &[&str] = &["xfeat", "disk", "aliked"];

/// Names accepted by [`DetectorConfig::by_name`].
pub const DETECTOR_NAMES: &[&str] = &["dog", "harris", "fast", "xfeat", "disk", "aliked"];

/// A complete extractor: detector, descriptor and keypoint budget.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtractorConfig {
    /// What finds the keypoints.
    pub detector: DetectorConfig,
    /// What describes them.
    pub descriptor: DescriptorConfig,
    /// Keep at most this many keypoints, strongest first (0: all).
    pub max_keypoints: usize,
    /// How an image file becomes the grey image extracted from (`cvtcolor` when absent, as in
    /// configurations written before it was recorded).
    #[serde(default)]
    pub gray: GrayConversion,
}

/// Default keypoint budget.
pub const DEFAULT_MAX_KEYPOINTS: usize = 2000;

impl ExtractorConfig {
    /// `descriptor` with `detector` (both by name) and the default budget.
    pub fn named(descriptor: &str, detector: &str) -> Result<Self, ExtractError> {
        let descriptor = DescriptorConfig::by_name(descriptor).ok_or_else(|| {
            ExtractError::Config(format!(
                "unknown descriptor '{descriptor}' (known: {})",
                DESCRIPTOR_NAMES.join(", ")
            ))
        })?;
        let detector = DetectorConfig::by_name(detector).ok_or_else(|| {
            ExtractError::Config(format!(
                "unknown detector '{detector}' (known: {})",
                DETECTOR_NAMES.join(", ")
            ))
        })?;
        if JOINT_NAMES.contains(&descriptor.name()) && detector.name() != descriptor.name() {
            return Err(ExtractError::Config(format!(
                "{0} detects and describes in one network: descriptor {0} goes with detector {0} only (got {0}+{1})",
                descriptor.name(),
                detector.name()
            )));
        }
        Ok(Self {
            detector,
            descriptor,
            max_keypoints: DEFAULT_MAX_KEYPOINTS,
            gray: GrayConversion::default(),
        })
    }

    /// The detector `descriptor` is used with unless told otherwise: Harris for FREAK (binary
    /// descriptors are usually computed on corners), their own for XFeat, DISK and ALIKED, DoG for SIFT
    /// and SOSNet.
    pub fn default_detector(descriptor: &str) -> &'static str {
        match descriptor {
            "freak" => "harris",
            "xfeat" => "xfeat",
            "disk" => "disk",
            "aliked" => "aliked",
            _ => "dog",
        }
    }

    /// `descriptor` on `detector`, or when none is named on DoG — on their own keypoints for
    /// XFeat and DISK, whose detector and descriptor are one network (the command line's
    /// default).
    pub fn named_or_dog(descriptor: &str, detector: Option<&str>) -> Result<Self, ExtractError> {
        let fallback = if JOINT_NAMES.contains(&descriptor) {
            descriptor
        } else {
            "dog"
        };
        Self::named(descriptor, detector.unwrap_or(fallback))
    }

    /// `descriptor` on its [default detector](Self::default_detector).
    pub fn with_default_detector(descriptor: &str) -> Result<Self, ExtractError> {
        Self::named(descriptor, Self::default_detector(descriptor))
    }

    /// Features read from files, of the kind `features` are: detector and descriptor
    /// [`External`](DescriptorConfig::External).
    pub fn external(features: &FeatureSet) -> Self {
        Self {
            detector: DetectorConfig::External,
            descriptor: DescriptorConfig::External(ExternalDescriptor::of(features)),
            max_keypoints: 0,
            gray: GrayConversion::default(),
        }
    }

    /// The external descriptor, when the features are read from files rather than extracted.
    pub fn external_descriptor(&self) -> Option<&ExternalDescriptor> {
        match &self.descriptor {
            DescriptorConfig::External(e) => Some(e),
            _ => None,
        }
    }

    /// `descriptor+detector`, e.g. `sift+dog`; `external:SOURCE` for features read from files.
    pub fn name(&self) -> String {
        match &self.descriptor {
            DescriptorConfig::External(e) => format!("external:{}", e.source),
            d => format!("{}+{}", d.name(), self.detector.name()),
        }
    }
}

impl ExtractorConfig {
    /// The ready-to-run extractor on the flex CPU backend: precomputed tables (FREAK's pattern)
    /// are built and network weights (the learned descriptors) loaded once here.
    pub fn build(&self) -> Result<FeatureExtractor, ExtractError> {
        self.build_on(&Device::flex())
    }

    /// As [`Self::build`], with the learned descriptors' networks on `device` (see
    /// [`crate::device`]); SIFT and FREAK run on the CPU whatever the device. The learned
    /// extractors' keypoint detectors under another descriptor (`--detector xfeat` with FREAK,
    /// say) stay on the CPU.
    pub fn build_on(&self, device: &Device) -> Result<FeatureExtractor, ExtractError> {
        let engine = match &self.descriptor {
            DescriptorConfig::Sift(sift) => Engine::Sift(*sift),
            DescriptorConfig::Freak(freak) => Engine::Freak(Box::new(Freak::new(*freak))),
            DescriptorConfig::Sosnet(c) => {
                let weights = weights(c.weights.as_deref(), crate::sosnet::bundled_weights)?;
                let net = Sosnet::from_weights(&weights, device.clone());
                Engine::Sosnet(Box::new((net, c.sampling)))
            }
            DescriptorConfig::Xfeat(c) => {
                let weights = weights(c.weights.as_deref(), crate::xfeat::bundled_weights)?;
                Engine::Xfeat(Box::new(Xfeat::from_weights(&weights, device.clone())))
            }
            DescriptorConfig::Disk(c) => {
                let weights = weights(c.weights.as_deref(), crate::disk::bundled_weights)?;
                Engine::Disk(Box::new(Disk::from_weights(&weights, device.clone())))
            }
            DescriptorConfig::Aliked(c) => {
                let weights = weights(c.weights.as_deref(), crate::aliked::bundled_weights)?;
                Engine::Aliked(Box::new(Aliked::from_weights(weights, device.clone())))
            }
            DescriptorConfig::External(_) => {
                return Err(ExtractError::Config(format!(
                    "{} features are read from feature files, never extracted: give the \
                     features instead of the images",
                    self.name()
                )));
            }
        };
        Ok(FeatureExtractor {
            config: self.clone(),
            engine,
        })
    }
}

/// A learned descriptor's weights: read from the file given, else the bundled ones.
fn weights<W: StateDictWeights>(
    path: Option<&Path>,
    bundled: impl FnOnce() -> W,
) -> Result<W, ExtractError> {
    match path {
        Some(path) => W::load(path).map_err(|e| ExtractError::Config(e.to_string())),
        None => Ok(bundled()),
    }
}

/// Refuses an image with a side below `min` pixels.
pub(crate) fn require_min_side(gray: &GrayImage, min: u32) -> Result<(), ExtractError> {
    if gray.width() < min || gray.height() < min {
        return Err(ExtractError::ImageTooSmall {
            width: gray.width(),
            height: gray.height(),
            min,
        });
    }
    Ok(())
}

/// What computes the descriptors, with its precomputed state.
enum Engine {
    Sift(SiftConfig),
    Freak(Box<Freak>),
    Sosnet(Box<(Sosnet, PatchSampling)>),
    Xfeat(Box<Xfeat>),
    Disk(Box<Disk>),
    Aliked(Box<Aliked>),
}

/// An [`ExtractorConfig`] made ready to run by [`ExtractorConfig::build`].
pub struct FeatureExtractor {
    config: ExtractorConfig,
    engine: Engine,
}

impl FeatureExtractor {
    /// The configuration this extractor runs.
    pub fn config(&self) -> &ExtractorConfig {
        &self.config
    }
}

impl Extractor for FeatureExtractor {
    fn info(&self) -> ExtractorInfo {
        ExtractorInfo {
            name: self.config.name(),
            config: serde_json::to_value(&self.config).expect("config serialises"),
        }
    }

    fn extract(&self, gray: &GrayImage) -> Result<FeatureSet, ExtractError> {
        let min = match self.engine {
            Engine::Xfeat(_) => crate::xfeat::model::STRIDE as u32,
            Engine::Disk(_) => crate::disk::model::STRIDE as u32,
            _ => MIN_IMAGE_SIDE,
        };
        require_min_side(gray, min)?;
        let (detector, max_keypoints) = (&self.config.detector, self.config.max_keypoints);
        let (keypoints, descriptors) = match &self.engine {
            Engine::Sift(sift) => {
                let (k, d) = sift.detect_and_compute(gray, detector, max_keypoints)?;
                (k, Descriptors::Float(d))
            }
            Engine::Freak(freak) => {
                let (k, d) = freak.compute(gray, &detector.detect(gray, max_keypoints)?);
                (k, Descriptors::Binary(d))
            }
            Engine::Sosnet(engine) => {
                let (net, sampling) = engine.as_ref();
                let k = detector.detect(gray, max_keypoints)?;
                let d = net.describe(sample_patches(gray, &k, *sampling).view());
                (k, Descriptors::Float(d))
            }
            Engine::Xfeat(net) => {
                let DetectorConfig::Xfeat(xfeat) = detector else {
                    return Err(ExtractError::Config(
                        "descriptor xfeat needs detector xfeat".into(),
                    ));
                };
                let (k, d) = net.detect_and_compute(gray, xfeat, max_keypoints);
                (k, Descriptors::Float(d))
            }
            Engine::Disk(net) => {
                let DetectorConfig::Disk(disk) = detector else {
                    return Err(ExtractError::Config(
                        "descriptor disk needs detector disk".into(),
                    ));
                };
                let (k, d) = net.detect_and_compute(gray, disk, max_keypoints)?;
                (k, Descriptors::Float(d))
            }
            Engine::Aliked(net) => {
                let DetectorConfig::Aliked(aliked) = detector else {
                    return Err(ExtractError::Config(
                        "descriptor aliked needs detector aliked".into(),
                    ));
                };
                let (k, d) = net.detect_and_compute(gray, aliked, max_keypoints)?;
                (k, Descriptors::Float(d))
            }
        };
        Ok(FeatureSet {
            image_size: (gray.height(), gray.width()),
            keypoints,
            descriptors,
            extractor: self.info(),
        })
    }
}

/// Features of the image file at `path`, turned into grey as the extractor's configuration says
/// ([`ExtractorConfig::gray`]); errors name the file.
pub fn extract_file(
    extractor: &FeatureExtractor,
    path: &std::path::Path,
) -> Result<FeatureSet, crate::DescriptorError> {
    let gray = extractor.config.gray.load(path)?;
    extractor
        .extract(&gray)
        .map_err(|e| crate::DescriptorError::InFile {
            path: path.to_path_buf(),
            source: Box::new(e.into()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_without_a_grey_conversion_read_as_cvtcolor() {
        let default = ExtractorConfig::named("sift", "dog").unwrap();
        let mut old = serde_json::to_value(&default).unwrap();
        assert_eq!(old["gray"], "cvtcolor", "the choice is recorded");
        old.as_object_mut().unwrap().remove("gray");
        assert_eq!(
            serde_json::from_value::<ExtractorConfig>(old).unwrap(),
            default
        );
        let mut hloc = default.clone();
        hloc.gray = GrayConversion::ImreadGrayscale;
        let text = serde_json::to_string(&hloc).unwrap();
        assert!(text.contains(r#""gray":"imread-grayscale""#), "{text}");
        assert_eq!(
            serde_json::from_str::<ExtractorConfig>(&text).unwrap(),
            hloc
        );
        assert_ne!(hloc, default);
    }

    #[test]
    fn extract_file_converts_to_grey_as_configured() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scene.png");
        featleak_datasets::synthetic::scene(128, 96, 4)
            .save(&path)
            .unwrap();
        for gray in GrayConversion::ALL {
            let mut config = ExtractorConfig::named("sift", "dog").unwrap();
            config.gray = gray;
            let extractor = config.build().unwrap();
            let from_file = extract_file(&extractor, &path).unwrap();
            let expected = extractor.extract(&gray.load(&path).unwrap()).unwrap();
            assert_eq!(from_file, expected, "{gray}");
            assert_eq!(from_file.extractor.config["gray"], gray.name());
        }
    }
}
