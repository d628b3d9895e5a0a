//! SIFT descriptors through OpenCV (`cv::SIFT`), with optional RootSIFT.

use crate::Keypoint;
use crate::cv::{float_descriptors, from_cv_keypoints, gray_mat, to_cv_keypoints};
use crate::detect::{DetectorConfig, SiftParams};
use crate::error::ExtractError;
use image::GrayImage;
use ndarray::Array2;
use opencv::core::{Mat, Vector};
use opencv::prelude::*;
use serde::{Deserialize, Serialize};

/// SIFT descriptor settings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SiftConfig {
    /// Scale-space parameters used to compute the descriptors (OpenCV's defaults).
    pub params: SiftParams,
    /// Apply RootSIFT (Arandjelović & Zisserman 2012): L1-normalise, then square root.
    pub root_sift: bool,
}

/// Number of values in a SIFT descriptor.
pub const SIFT_DIM: usize = 128;

impl SiftConfig {
    /// Detects with `detector` and describes with SIFT. When the detector is DoG with the same
    /// parameters, this is one `detectAndCompute` call, exactly OpenCV's SIFT.
    /// Keypoints without orientation (angle -1) are described upright and keep angle -1.
    pub fn detect_and_compute(
        &self,
        gray: &GrayImage,
        detector: &DetectorConfig,
        max_keypoints: usize,
    ) -> Result<(Vec<Keypoint>, Array2<f32>), ExtractError> {
        let image = gray_mat(gray)?;
        let mut sift = self.params.create(max_keypoints)?;
        let mut descriptors = Mat::default();
        let keypoints = match detector {
            DetectorConfig::Dog(p) if *p == self.params => {
                let mut kps = Vector::new();
                sift.detect_and_compute(
                    &image,
                    &Mat::default(),
                    &mut kps,
                    &mut descriptors,
                    false,
                )?;
                from_cv_keypoints(&kps)
            }
            _ => {
                let detected = detector.detect(gray, max_keypoints)?;
                let upright: Vec<Keypoint> = detected
                    .iter()
                    .map(|k| Keypoint {
                        angle: if k.has_angle() { k.angle } else { 0.0 },
                        ..*k
                    })
                    .collect();
                let mut kps = to_cv_keypoints(&upright)?;
                sift.detect_and_compute(&image, &Mat::default(), &mut kps, &mut descriptors, true)?;
                if kps.len() != detected.len() {
                    return Err(ExtractError::OpenCv(format!(
                        "SIFT returned {} descriptors for {} keypoints",
                        kps.len(),
                        detected.len()
                    )));
                }
                detected
            }
        };
        let mut desc = float_descriptors(&descriptors, SIFT_DIM)?;
        if self.root_sift {
            root_sift(&mut desc);
        }
        Ok((keypoints, desc))
    }
}

/// RootSIFT in place: each row divided by its L1 norm, then square-rooted (unit L2 norm).
pub fn root_sift(desc: &mut Array2<f32>) {
    for mut row in desc.rows_mut() {
        let l1: f32 = row.iter().map(|v| v.abs()).sum::<f32>().max(f32::EPSILON);
        row.mapv_inplace(|v| (v.max(0.0) / l1).sqrt());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn root_sift_rows_have_unit_l2_norm() {
        let mut d = array![[1.0f32, 3.0, 0.0, 4.0], [0.0, 0.0, 0.0, 0.0]];
        root_sift(&mut d);
        let n: f32 = d.row(0).iter().map(|v| v * v).sum();
        assert!((n - 1.0).abs() < 1e-6);
        assert!((d[[0, 1]] - (3.0f32 / 8.0).sqrt()).abs() < 1e-6);
        assert!(d.row(1).iter().all(|v| *v == 0.0));
    }
}
