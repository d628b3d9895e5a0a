//! Conversions between our types and OpenCV's (through the `opencv` crate).

use crate::Keypoint;
use crate::error::ExtractError;
use image::GrayImage;
use ndarray::Array2;
use opencv::boxed_ref::BoxedRef;
use opencv::core::{self as cvcore, KeyPoint, KeyPointTraitConst, Mat, Vector};
use opencv::prelude::*;

impl From<opencv::Error> for ExtractError {
    fn from(e: opencv::Error) -> Self {
        ExtractError::OpenCv(e.to_string())
    }
}

/// Sets the number of threads OpenCV's own parallel loops use (process-wide).
pub fn set_opencv_threads(n: usize) -> Result<(), ExtractError> {
    Ok(cvcore::set_num_threads(n.try_into().unwrap_or(i32::MAX))?)
}

/// Borrows a grey image as an 8-bit single-channel OpenCV matrix (no copy).
pub fn gray_mat(gray: &GrayImage) -> Result<BoxedRef<'_, Mat>, ExtractError> {
    Ok(Mat::new_rows_cols_with_data(
        gray.height() as i32,
        gray.width() as i32,
        gray.as_raw(),
    )?)
}

/// Our keypoint as an OpenCV keypoint.
pub fn to_cv_keypoint(kp: &Keypoint) -> Result<KeyPoint, ExtractError> {
    Ok(KeyPoint::new_coords(
        kp.x,
        kp.y,
        kp.size,
        kp.angle,
        kp.response,
        kp.octave,
        -1,
    )?)
}

/// Our keypoints as an OpenCV vector.
pub fn to_cv_keypoints(kps: &[Keypoint]) -> Result<Vector<KeyPoint>, ExtractError> {
    kps.iter().map(to_cv_keypoint).collect()
}

/// OpenCV keypoints as ours.
pub fn from_cv_keypoints(kps: &Vector<KeyPoint>) -> Vec<Keypoint> {
    kps.iter()
        .map(|k| {
            let pt = k.pt();
            Keypoint {
                x: pt.x,
                y: pt.y,
                size: k.size(),
                angle: k.angle(),
                response: k.response(),
                octave: k.octave(),
            }
        })
        .collect()
}

/// A float descriptor matrix (CV_32F, N×D) as an ndarray; an empty Mat gives N=0 rows of `dim`.
pub fn float_descriptors(mat: &Mat, dim: usize) -> Result<Array2<f32>, ExtractError> {
    if mat.empty() {
        return Ok(Array2::zeros((0, dim)));
    }
    if mat.typ() != cvcore::CV_32F || !mat.is_continuous() {
        return Err(ExtractError::OpenCv(format!(
            "expected a continuous CV_32F descriptor matrix, got type {}",
            mat.typ()
        )));
    }
    let (rows, cols) = (mat.rows() as usize, mat.cols() as usize);
    let data = mat.data_typed::<f32>()?.to_vec();
    Ok(Array2::from_shape_vec((rows, cols), data).expect("Mat size matches its data"))
}

/// `gray` with its longer side brought to `max` (if longer; 0: never) as hloc's `ImageDataset`
/// does for `resize_max`: `round(side · max / longer)` (half to even, Python's `round`), OpenCV
/// `INTER_AREA`. Returns the image and the scale back (original / resized) along x and y.
pub(crate) fn shrink(gray: &GrayImage, max: u32) -> Result<(GrayImage, f32, f32), ExtractError> {
    let (w, h) = gray.dimensions();
    if max == 0 || w.max(h) <= max {
        return Ok((gray.clone(), 1.0, 1.0));
    }
    let scale = max as f64 / w.max(h) as f64;
    let side = |s: u32| ((s as f64 * scale).round_ties_even() as u32).max(1);
    let (nw, nh) = (side(w), side(h));
    let mut out = Mat::default();
    opencv::imgproc::resize(
        &gray_mat(gray)?,
        &mut out,
        cvcore::Size::new(nw as i32, nh as i32),
        0.0,
        0.0,
        opencv::imgproc::INTER_AREA,
    )?;
    let bytes = out.data_bytes()?.to_vec();
    let small = GrayImage::from_raw(nw, nh, bytes).expect("OpenCV wrote nw×nh grey pixels");
    Ok((small, w as f32 / nw as f32, h as f32 / nh as f32))
}

/// A coordinate of an image [`shrink`]-ed by `scale` mapped back to the original as hloc does,
/// `(v + 0.5)·scale − 0.5` (the identity when not resized).
pub(crate) fn scale_back(v: f32, scale: f32) -> f32 {
    if scale == 1.0 {
        v
    } else {
        (v + 0.5) * scale - 0.5
    }
}
