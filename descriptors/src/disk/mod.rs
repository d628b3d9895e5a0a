//! DISK (Tyszkiewicz, Fua, Trulls: "DISK: Learning local features with policy gradient",
//! NeurIPS 2020): a U-Net giving a keypoint heatmap and 128-d dense descriptors, run in burn on
//! the official `depth` weights, with kornia's `DISK.forward` reproduced (padding to multiples of
//! 16, strict 5×5 maxima above the threshold, the best `n` in raster order). Images larger than
//! `resize_max` are first shrunk as hloc's `disk` configuration does.

pub mod model;
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
pub use model::DiskModel;
pub use weights::DiskWeights;

/// Descriptor length.
pub const DESCRIPTOR_SIZE: usize = 128;

/// Size recorded for every DISK keypoint, in pixels: DISK gives no scale; 5 is its
/// non-maximum-suppression window.
pub const KEYPOINT_SIZE: f32 = 5.0;

/// Side of the non-maximum-suppression window (kornia's and the paper's default).
pub const NMS_WINDOW: usize = 5;

/// Name of the bundled weights: the official `depth-save.pth` (cvlab-epfl/disk, Apache-2.0; card
/// `descriptors/weights/README.md`).
pub const BUNDLED_WEIGHTS: &str = "disk-depth-official";

const BUNDLED_BYTES: &[u8] = include_bytes!("../../weights/disk-depth.safetensors");

/// The bundled weights, parsed.
pub fn bundled_weights() -> DiskWeights {
    DiskWeights::from_safetensors_bytes(BUNDLED_BYTES, Path::new(BUNDLED_WEIGHTS))
        .expect("the bundled DISK weights are a valid state_dict (checked by a test)")
}

/// One DISK on the bundled weights for the whole process (the `disk` detector under another
/// descriptor), loaded at first use.
pub fn shared_bundled() -> &'static Disk {
    static NET: std::sync::OnceLock<Disk> = std::sync::OnceLock::new();
    NET.get_or_init(Disk::bundled)
}

/// DISK's detection settings: kornia's, and hloc's `disk` configuration's image size.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiskDetector {
    /// Heatmap values at or below this are not keypoints (default 0).
    pub score_threshold: f32,
    /// An image whose longer side exceeds this is resized to it first (OpenCV `INTER_AREA`, size
    /// rounded as hloc does) and its keypoints mapped back with hloc's `(k + 0.5)·s − 0.5`;
    /// 0 runs every image at its own size. Default 1600, hloc's: the U-Net's memory grows with
    /// the pixels (a 12-megapixel photo at its own size needs about 14 GB).
    pub resize_max: u32,
}

impl Default for DiskDetector {
    fn default() -> Self {
        Self {
            score_threshold: 0.0,
            resize_max: 1600,
        }
    }
}

/// A loaded DISK.
#[derive(Debug)]
pub struct Disk {
    model: DiskModel,
    device: Device,
}

impl Disk {
    /// The bundled weights ([`BUNDLED_WEIGHTS`]) on the flex CPU backend.
    pub fn bundled() -> Self {
        Self::from_weights(&bundled_weights(), Device::flex())
    }

    /// Loads a DISK state_dict (the official `depth-save.pth`, or `.safetensors`) onto the flex
    /// CPU backend.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        Ok(Self::from_weights(
            &DiskWeights::load(path)?,
            Device::flex(),
        ))
    }

    /// Builds from validated weights, on `device`.
    pub fn from_weights(weights: &DiskWeights, device: Device) -> Self {
        Self {
            model: DiskModel::from_weights(weights, &device),
            device,
        }
    }

    /// The network's output for a grey image given as H×W values in [0, 1], replicated into RGB
    /// and zero-padded at the bottom and right to multiples of [`model::STRIDE`]: 129 channels
    /// of the padded size (128 descriptor channels, then the heatmap), and that size.
    pub fn maps(&self, gray: &[f32], height: usize, width: usize) -> (Vec<f32>, usize, usize) {
        let pad = |n: usize| n.div_ceil(model::STRIDE) * model::STRIDE;
        let (hp, wp) = (pad(height), pad(width));
        let mut plane = vec![0f32; hp * wp];
        for (row, src) in plane.chunks_mut(wp).zip(gray.chunks(width)) {
            row[..width].copy_from_slice(src);
        }
        let rgb = plane.repeat(3);
        let x = Tensor::<4>::from_data(TensorData::new(rgb, [1, 3, hp, wp]), &self.device);
        let out = self
            .model
            .forward(x)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .expect("f32 maps");
        (out, hp, wp)
    }

    /// Keypoints and unit-length 128-d descriptors as kornia's `DISK.forward(images, n,
    /// window_size=5, score_threshold, pad_if_not_divisible=True)` on the grey image replicated
    /// into RGB (intensities / 255): the strict 5×5 maxima of the heatmap above the threshold,
    /// at most `n` (0: all) of the strongest, ties at the cut in raster order, **listed in raster
    /// order**. Images larger than [`DiskDetector::resize_max`] are shrunk first. Needs both
    /// sides ≥ 16.
    pub fn detect_and_compute(
        &self,
        gray: &GrayImage,
        detector: &DiskDetector,
        n: usize,
    ) -> Result<(Vec<Keypoint>, Array2<f32>), ExtractError> {
        let (gray, sx, sy) = crate::cv::shrink(gray, detector.resize_max)?;
        let gray = &gray;
        let (w, h) = (gray.width() as usize, gray.height() as usize);
        let pixels: Vec<f32> = gray.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
        let (maps, hp, wp) = self.maps(&pixels, h, w);
        let plane = hp * wp;
        let heat = &maps[DESCRIPTOR_SIZE * plane..];
        let at = |y: usize, x: usize| heat[y * wp + x];
        let r = NMS_WINDOW / 2;
        let mut found: Vec<(usize, usize, f32)> = Vec::new();
        for y in r..h.saturating_sub(r) {
            for x in r..w.saturating_sub(r) {
                let v = at(y, x);
                let strict_max = v > detector.score_threshold
                    && (y - r..=y + r)
                        .all(|yy| (x - r..=x + r).all(|xx| (yy, xx) == (y, x) || v > at(yy, xx)));
                if strict_max {
                    found.push((x, y, v));
                }
            }
        }
        if n > 0 && found.len() > n {
            let mut scores: Vec<f32> = found.iter().map(|f| f.2).collect();
            scores.sort_by(|a, b| b.total_cmp(a));
            let threshold = scores[n - 1];
            let above = found.iter().filter(|f| f.2 > threshold).count();
            let mut ties_left = n - above;
            found.retain(|f| {
                if f.2 > threshold {
                    true
                } else if f.2 == threshold && ties_left > 0 {
                    ties_left -= 1;
                    true
                } else {
                    false
                }
            });
        }
        let mut descriptors = Array2::<f32>::zeros((found.len(), DESCRIPTOR_SIZE));
        for (row, &(x, y, _)) in descriptors.rows_mut().into_iter().zip(&found) {
            let mut row = row;
            let out = row.as_slice_mut().expect("standard layout");
            for (c, o) in out.iter_mut().enumerate() {
                *o = maps[c * plane + y * wp + x];
            }
            crate::layers::l2_normalise(out);
        }
        let keypoints = found
            .iter()
            .map(|&(x, y, score)| Keypoint {
                x: crate::cv::scale_back(x as f32, sx),
                y: crate::cv::scale_back(y as f32, sy),
                size: KEYPOINT_SIZE,
                angle: -1.0,
                response: score,
                octave: 0,
            })
            .collect();
        Ok((keypoints, descriptors))
    }
}
