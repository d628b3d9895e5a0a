//! ALIKED (Zhao et al., "ALIKED: A Lighter Keypoint and Descriptor Extraction Network via
//! Deformable Transformation", IEEE TIM 2023): a network with deformable convolutions giving a
//! keypoint score map and a feature map, and a descriptor head (SDDH) that samples the feature
//! map at 16 learned offsets around each keypoint. Run in burn on the official `aliked-n16`
//! weights, with the reference's `forward` reproduced: replicate padding to multiples of 32,
//! the DKD detector (iterated 5×5 non-maximum suppression, threshold, soft-argmax refinement in
//! a 5×5 window) and SDDH. Images larger than `resize_max` are first shrunk as hloc's
//! `aliked-n16` configuration does.

pub mod model;
mod sparse;
pub mod weights;

use std::path::Path;

use burn::prelude::*;
use image::GrayImage;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::Keypoint;
use crate::error::ExtractError;
use crate::state_dict::StateDictWeights;
pub use crate::state_dict::WeightsError;
pub use model::{AlikedMaps, AlikedModel};
pub use weights::AlikedWeights;

/// Descriptor length.
pub const DESCRIPTOR_SIZE: usize = weights::DIM;

/// Size recorded for every ALIKED keypoint, in pixels: ALIKED gives no scale; 5 is the window
/// of its non-maximum suppression and sub-pixel refinement.
pub const KEYPOINT_SIZE: f32 = 5.0;

/// Most keypoints the reference keeps when no budget is given (`n_limit_max`).
pub const MAX_KEYPOINTS: usize = 20_000;

/// Name of the bundled weights: the official `aliked-n16.pth` (Shiaoming/ALIKED, BSD-3-Clause;
/// card `descriptors/weights/README.md`).
pub const BUNDLED_WEIGHTS: &str = "aliked-n16-official";

const BUNDLED_BYTES: &[u8] = include_bytes!("../../weights/aliked-n16.safetensors");

/// The bundled weights, parsed.
pub fn bundled_weights() -> AlikedWeights {
    AlikedWeights::from_safetensors_bytes(BUNDLED_BYTES, Path::new(BUNDLED_WEIGHTS))
        .expect("the bundled ALIKED weights are a valid state_dict (checked by a test)")
}

/// One ALIKED on the bundled weights for the whole process (the `aliked` detector under another
/// descriptor), loaded at first use.
pub fn shared_bundled() -> &'static Aliked {
    static NET: std::sync::OnceLock<Aliked> = std::sync::OnceLock::new();
    NET.get_or_init(Aliked::bundled)
}

/// ALIKED's detection settings: the reference's, and hloc's `aliked-n16` image size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlikedDetector {
    /// Scores at or below this are not keypoints (default 0.2); when no local maximum passes,
    /// the image's mean score is the threshold, as in the reference.
    pub detection_threshold: f32,
    /// An image whose longer side exceeds this is resized to it first (OpenCV `INTER_AREA`, size
    /// rounded as hloc does) and its keypoints mapped back with hloc's `(k + 0.5)·s − 0.5`;
    /// 0 runs every image at its own size. Default 1024, hloc's.
    pub resize_max: u32,
}

impl Default for AlikedDetector {
    fn default() -> Self {
        Self {
            detection_threshold: 0.2,
            resize_max: 1024,
        }
    }
}

/// A loaded ALIKED.
#[derive(Debug)]
pub struct Aliked {
    model: AlikedModel,
    weights: AlikedWeights,
    device: Device,
}

/// The dense maps of an image at its own size (padding removed), row-major.
#[derive(Debug)]
pub struct DenseMaps {
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// 128×H×W feature map, unit length per pixel.
    pub features: Vec<f32>,
    /// H×W keypoint scores.
    pub scores: Vec<f32>,
}

impl Aliked {
    /// The bundled weights ([`BUNDLED_WEIGHTS`]) on the flex CPU backend.
    pub fn bundled() -> Self {
        Self::from_weights(bundled_weights(), Device::flex())
    }

    /// Loads an ALIKED-N16 state_dict (the official `aliked-n16.pth`, or `.safetensors`) onto the
    /// flex CPU backend.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        Ok(Self::from_weights(
            AlikedWeights::load(path)?,
            Device::flex(),
        ))
    }

    /// Builds from validated weights, on `device`.
    pub fn from_weights(weights: AlikedWeights, device: Device) -> Self {
        Self {
            model: AlikedModel::from_weights(&weights, &device),
            weights,
            device,
        }
    }

    /// The network's maps for a grey image given as H×W values in [0, 1], replicated into RGB,
    /// padded to multiples of [`model::STRIDE`] by repeating the edge pixels (half on each
    /// side, the extra row or column at the bottom or right, as the reference's `InputPadder`)
    /// and cropped back.
    pub fn maps(&self, gray: &[f32], height: usize, width: usize) -> DenseMaps {
        let pad = |n: usize| (model::STRIDE - n % model::STRIDE) % model::STRIDE;
        let (top, left) = (pad(height) / 2, pad(width) / 2);
        let (hp, wp) = (height + pad(height), width + pad(width));
        let mut plane = Vec::with_capacity(hp * wp);
        for y in 0..hp {
            let row = y.saturating_sub(top).min(height - 1) * width;
            plane.extend((0..wp).map(|x| gray[row + x.saturating_sub(left).min(width - 1)]));
        }
        let x = Tensor::<4>::from_data(
            TensorData::new(plane.repeat(3), [1, 3, hp, wp]),
            &self.device,
        );
        let maps = self.model.forward(x);
        let host = |t: Tensor<4>| {
            t.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 maps")
        };
        let crop = |all: Vec<f32>, channels: usize| {
            let mut out = Vec::with_capacity(channels * height * width);
            for c in 0..channels {
                for y in 0..height {
                    let start = c * hp * wp + (y + top) * wp + left;
                    out.extend_from_slice(&all[start..start + width]);
                }
            }
            out
        };
        DenseMaps {
            height,
            width,
            features: crop(host(maps.features), DESCRIPTOR_SIZE),
            scores: crop(host(maps.scores), 1),
        }
    }

    /// Keypoints and unit-length 128-d descriptors as the reference's `ALIKED.forward` with
    /// `detection_threshold`, `nms_radius=2` and `max_num_keypoints=n` (0: the reference's
    /// limit, [`MAX_KEYPOINTS`]) on the grey image replicated into RGB (intensities / 255):
    /// keypoints in raster order of their pixel, or strongest first when more than the limit
    /// were found. Images larger than [`AlikedDetector::resize_max`] are shrunk first.
    pub fn detect_and_compute(
        &self,
        gray: &GrayImage,
        detector: &AlikedDetector,
        n: usize,
    ) -> Result<(Vec<Keypoint>, Array2<f32>), ExtractError> {
        let detected = self.run_detector(gray, detector, n)?;
        let descriptors = sparse::describe(&detected.maps, &detected.found, &self.weights);
        Ok((detected.keypoints(), descriptors))
    }

    /// The keypoints of [`Self::detect_and_compute`], without computing their descriptors.
    pub fn detect(
        &self,
        gray: &GrayImage,
        detector: &AlikedDetector,
        n: usize,
    ) -> Result<Vec<Keypoint>, ExtractError> {
        Ok(self.run_detector(gray, detector, n)?.keypoints())
    }

    fn run_detector(
        &self,
        gray: &GrayImage,
        detector: &AlikedDetector,
        n: usize,
    ) -> Result<Detected, ExtractError> {
        let (gray, sx, sy) = crate::cv::shrink(gray, detector.resize_max)?;
        let (w, h) = (gray.width() as usize, gray.height() as usize);
        let pixels: Vec<f32> = gray.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
        let maps = self.maps(&pixels, h, w);
        let limit = if n == 0 { MAX_KEYPOINTS } else { n };
        let found = sparse::detect(&maps, detector.detection_threshold, limit);
        Ok(Detected {
            maps,
            found,
            scale: (sx, sy),
        })
    }
}

/// The network's maps of a (possibly shrunk) image and the keypoints found on them.
struct Detected {
    maps: DenseMaps,
    found: Vec<sparse::Found>,
    /// Original size / shrunk size, along x and y.
    scale: (f32, f32),
}

impl Detected {
    /// The keypoints, in the original image's pixels.
    fn keypoints(&self) -> Vec<Keypoint> {
        self.found
            .iter()
            .map(|k| Keypoint {
                x: crate::cv::scale_back(k.x, self.scale.0),
                y: crate::cv::scale_back(k.y, self.scale.1),
                size: KEYPOINT_SIZE,
                angle: -1.0,
                response: k.score,
                octave: 0,
            })
            .collect()
    }
}
