//! A feature set: an image's keypoints, their descriptors and the extractor that made them.

use crate::Keypoint;
use featleak_datasets::ResizeCrop;
use ndarray::{Array2, Axis};
use serde::{Deserialize, Serialize};

/// Descriptors of a feature set, one row per keypoint.
#[derive(Clone, Debug, PartialEq)]
pub enum Descriptors {
    /// Real-valued descriptors (SIFT, SOSNet): N×D.
    Float(Array2<f32>),
    /// Binary descriptors packed 8 bits per byte (FREAK): N×bytes.
    Binary(Array2<u8>),
}

impl Descriptors {
    /// Number of descriptors (rows).
    pub fn len(&self) -> usize {
        match self {
            Self::Float(d) => d.nrows(),
            Self::Binary(d) => d.nrows(),
        }
    }

    /// True when there are no descriptors.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Values per descriptor: D for float, bits (8 × bytes) for binary.
    pub fn dimension(&self) -> usize {
        match self {
            Self::Float(d) => d.ncols(),
            Self::Binary(d) => d.ncols() * 8,
        }
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        match self {
            Self::Float(d) => Self::Float(d.select(Axis(0), indices)),
            Self::Binary(d) => Self::Binary(d.select(Axis(0), indices)),
        }
    }

    /// "float32" or "uint8": the dtype in feature files.
    pub fn dtype(&self) -> &'static str {
        match self {
            Self::Float(_) => "float32",
            Self::Binary(_) => "uint8",
        }
    }
}

/// Which extractor produced a feature set: its name and full configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExtractorInfo {
    /// Short name such as `sift+dog`.
    pub name: String,
    /// The complete configuration, as serialised by the extractor.
    pub config: serde_json::Value,
}

/// Keypoints and descriptors of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureSet {
    /// Size of the image the features come from: (height, width).
    pub image_size: (u32, u32),
    /// The keypoints, in image pixel coordinates.
    pub keypoints: Vec<Keypoint>,
    /// One row per keypoint, in the same order.
    pub descriptors: Descriptors,
    /// The extractor that made them.
    pub extractor: ExtractorInfo,
}

impl FeatureSet {
    /// Number of keypoints.
    pub fn len(&self) -> usize {
        self.keypoints.len()
    }

    /// True when there are no keypoints.
    pub fn is_empty(&self) -> bool {
        self.keypoints.is_empty()
    }

    /// The keypoints (and descriptors) at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        Self {
            image_size: self.image_size,
            keypoints: indices.iter().map(|&i| self.keypoints[i]).collect(),
            descriptors: self.descriptors.select(indices),
            extractor: self.extractor.clone(),
        }
    }

    /// The features as they would be seen on the image after `t` (resize + crop): positions
    /// mapped with the pixel-centre convention of [`ResizeCrop::map_point`], sizes scaled by the
    /// geometric mean of the two scale factors, keypoints falling outside the crop dropped.
    pub fn transformed(&self, t: &ResizeCrop) -> Self {
        self.transformed_indexed(t).0
    }

    /// [`Self::transformed`], with the index in `self` of every keypoint kept.
    pub fn transformed_indexed(&self, t: &ResizeCrop) -> (Self, Vec<usize>) {
        assert_eq!(
            t.src, self.image_size,
            "ResizeCrop source size differs from the features' image size"
        );
        let (sx, sy) = t.scale();
        let size_scale = (sx * sy).sqrt() as f32;
        let mut kept = Vec::new();
        let mut keypoints = Vec::new();
        for (i, kp) in self.keypoints.iter().enumerate() {
            if let Some((x, y)) = t.map_point(kp.x as f64, kp.y as f64) {
                kept.push(i);
                keypoints.push(Keypoint {
                    x: x as f32,
                    y: y as f32,
                    size: kp.size * size_scale,
                    ..*kp
                });
            }
        }
        let set = Self {
            image_size: t.out,
            keypoints,
            descriptors: self.descriptors.select(&kept),
            extractor: self.extractor.clone(),
        };
        (set, kept)
    }
}
