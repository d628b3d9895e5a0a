//! Keypoint detectors: DoG (OpenCV's SIFT detector), Harris, FAST, and the learned ones (XFeat,
//! DISK, ALIKED).

use crate::Keypoint;
use crate::cv::{from_cv_keypoints, gray_mat};
use crate::error::ExtractError;
use crate::extractor::require_min_side;
use image::GrayImage;
use opencv::core::{BORDER_DEFAULT, Mat, Vector};
use opencv::prelude::*;
use serde::{Deserialize, Serialize};

/// Parameters of OpenCV's SIFT (`cv::SIFT::create`) shared by the DoG detector and the
/// SIFT descriptor; defaults are OpenCV's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiftParams {
    /// DoG layers per octave (`nOctaveLayers`, default 3).
    pub n_octave_layers: i32,
    /// Minimum DoG contrast; larger keeps fewer, stronger keypoints (`contrastThreshold`,
    /// default 0.04, divided by `n_octave_layers` inside OpenCV).
    pub contrast_threshold: f64,
    /// Maximum principal-curvature ratio; edge-like keypoints above it are dropped
    /// (`edgeThreshold`, default 10).
    pub edge_threshold: f64,
    /// Gaussian blur of the input image at octave 0, in pixels (`sigma`, default 1.6).
    pub sigma: f64,
}

impl Default for SiftParams {
    fn default() -> Self {
        Self {
            n_octave_layers: 3,
            contrast_threshold: 0.04,
            edge_threshold: 10.0,
            sigma: 1.6,
        }
    }
}

impl SiftParams {
    /// An OpenCV SIFT object keeping the best `max_keypoints` (0: all).
    pub(crate) fn create(
        &self,
        max_keypoints: usize,
    ) -> Result<opencv::core::Ptr<opencv::features2d::SIFT>, ExtractError> {
        let n = i32::try_from(max_keypoints)
            .map_err(|_| ExtractError::Config("max_keypoints too large".into()))?;
        Ok(opencv::features2d::SIFT::create(
            n,
            self.n_octave_layers,
            self.contrast_threshold,
            self.edge_threshold,
            self.sigma,
        )?)
    }
}

/// Harris corners as in the seed paper's FREAK/SOSNet setup: `cv::cornerHarris` (block 2,
/// aperture 5, k 0.04), 3×3 non-maximum suppression (ties kept, like `R == dilate(R)`), positive
/// response, `border` pixels excluded, then the strongest by response.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HarrisConfig {
    /// Side of the neighbourhood summed into the structure tensor, in pixels (default 2).
    pub block_size: i32,
    /// Sobel aperture for the image derivatives: 1, 3, 5 or 7 (default 5).
    pub aperture: i32,
    /// Harris free parameter in `det − k·trace²` (default 0.04).
    pub k: f64,
    /// Keypoints closer than this many pixels to an image edge are dropped.
    pub border: u32,
    /// Size given to every Harris keypoint. The default, 7, is OpenCV FAST's keypoint size and
    /// FREAK's smallest pattern (about 30 px across, like the seed paper's 32×32 patches).
    pub size: f32,
}

impl Default for HarrisConfig {
    fn default() -> Self {
        Self {
            block_size: 2,
            aperture: 5,
            k: 0.04,
            border: 16,
            size: 7.0,
        }
    }
}

/// OpenCV's FAST-9/16 detector with non-maximum suppression.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FastConfig {
    /// Intensity difference (0–255 grey levels) between the centre and the circle pixels
    /// (default 20).
    pub threshold: i32,
    /// Keep only local maxima of the FAST score (default true).
    pub nonmax_suppression: bool,
    /// Keypoints closer than this many pixels to an image edge are dropped.
    pub border: u32,
}

impl Default for FastConfig {
    fn default() -> Self {
        Self {
            threshold: 20,
            nonmax_suppression: true,
            border: 16,
        }
    }
}

/// Which detector finds the keypoints.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DetectorConfig {
    /// Difference-of-Gaussians extrema: OpenCV's SIFT detector (`dog`).
    Dog(SiftParams),
    /// Harris corners (`harris`).
    Harris(HarrisConfig),
    /// FAST-9/16 corners (`fast`).
    Fast(FastConfig),
    /// XFeat's keypoints (`xfeat`): with the `xfeat` descriptor, from the same network pass; under
    /// another descriptor, from XFeat on its bundled weights. Size 8, no angle.
    Xfeat(crate::xfeat::XfeatDetector),
    /// DISK's keypoints (`disk`): with the `disk` descriptor, from the same network pass; under
    /// another descriptor, from DISK on its bundled weights. Size 5, no angle, raster order.
    Disk(crate::disk::DiskDetector),
    /// ALIKED's keypoints (`aliked`): with the `aliked` descriptor, from the same network pass;
    /// under another descriptor, from ALIKED on its bundled weights. Size 5, no angle, sub-pixel.
    Aliked(crate::aliked::AlikedDetector),
    /// Another pipeline's keypoints, read from feature files, never detected (`external`).
    External,
}

impl DetectorConfig {
    /// Short name used in extractor names and on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dog(_) => "dog",
            Self::Harris(_) => "harris",
            Self::Fast(_) => "fast",
            Self::Xfeat(_) => "xfeat",
            Self::Disk(_) => "disk",
            Self::Aliked(_) => "aliked",
            Self::External => "external",
        }
    }

    /// The default configuration of the detector called `name` (`dog`, `harris`, `fast`,
    /// `xfeat`, `disk`, `aliked`).
    pub fn by_name(name: &str) -> Option<Self> {
        match name {
            "dog" => Some(Self::Dog(SiftParams::default())),
            "harris" => Some(Self::Harris(HarrisConfig::default())),
            "fast" => Some(Self::Fast(FastConfig::default())),
            "xfeat" => Some(Self::Xfeat(crate::xfeat::XfeatDetector::default())),
            "disk" => Some(Self::Disk(crate::disk::DiskDetector::default())),
            "aliked" => Some(Self::Aliked(crate::aliked::AlikedDetector::default())),
            _ => None,
        }
    }

    /// Detects keypoints, strongest first, at most `max_keypoints` (0: all).
    pub fn detect(
        &self,
        gray: &GrayImage,
        max_keypoints: usize,
    ) -> Result<Vec<Keypoint>, ExtractError> {
        match self {
            Self::Dog(p) => {
                let mut kps = Vector::new();
                p.create(max_keypoints)?
                    .detect(&gray_mat(gray)?, &mut kps, &Mat::default())?;
                Ok(from_cv_keypoints(&kps))
            }
            Self::Harris(c) => harris(gray, c, max_keypoints),
            Self::Fast(c) => {
                let mut kps = Vector::new();
                opencv::features2d::fast(
                    &gray_mat(gray)?,
                    &mut kps,
                    c.threshold,
                    c.nonmax_suppression,
                )?;
                let kps = from_cv_keypoints(&kps)
                    .into_iter()
                    .filter(|k| inside_border(k.x, k.y, gray, c.border))
                    .collect();
                Ok(strongest(kps, max_keypoints))
            }
            Self::Xfeat(d) => {
                require_min_side(gray, crate::xfeat::model::STRIDE as u32)?;
                Ok(crate::xfeat::shared_bundled()
                    .detect_and_compute(gray, d, max_keypoints)
                    .0)
            }
            Self::Disk(d) => {
                require_min_side(gray, crate::disk::model::STRIDE as u32)?;
                Ok(crate::disk::shared_bundled()
                    .detect_and_compute(gray, d, max_keypoints)?
                    .0)
            }
            Self::Aliked(d) => crate::aliked::shared_bundled().detect(gray, d, max_keypoints),
            Self::External => Err(ExtractError::Config(
                "external keypoints are read from feature files, never detected".into(),
            )),
        }
    }
}

fn inside_border(x: f32, y: f32, gray: &GrayImage, border: u32) -> bool {
    let b = border as f32;
    x >= b && y >= b && x < (gray.width() as f32 - b) && y < (gray.height() as f32 - b)
}

/// Sorts by response, strongest first; ties keep detection order (stable). Keeps `max` (0: all).
fn strongest(mut kps: Vec<Keypoint>, max: usize) -> Vec<Keypoint> {
    kps.sort_by(|a, b| b.response.total_cmp(&a.response));
    if max > 0 {
        kps.truncate(max);
    }
    kps
}

fn harris(
    gray: &GrayImage,
    c: &HarrisConfig,
    max_keypoints: usize,
) -> Result<Vec<Keypoint>, ExtractError> {
    let mut response = Mat::default();
    opencv::imgproc::corner_harris(
        &gray_mat(gray)?,
        &mut response,
        c.block_size,
        c.aperture,
        c.k,
        BORDER_DEFAULT,
    )?;
    let r = response.data_typed::<f32>()?;
    let (w, h) = (gray.width() as usize, gray.height() as usize);
    let b = c.border as usize;
    let mut kps = Vec::new();
    for y in b..h.saturating_sub(b) {
        for x in b..w.saturating_sub(b) {
            let v = r[y * w + x];
            if v <= 0.0 {
                continue;
            }
            let is_max = (y.saturating_sub(1)..=(y + 1).min(h - 1))
                .all(|yy| (x.saturating_sub(1)..=(x + 1).min(w - 1)).all(|xx| r[yy * w + xx] <= v));
            if is_max {
                kps.push(Keypoint {
                    x: x as f32,
                    y: y as f32,
                    size: c.size,
                    angle: -1.0,
                    response: v,
                    octave: 0,
                });
            }
        }
    }
    Ok(strongest(kps, max_keypoints))
}
