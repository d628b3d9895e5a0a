//! XFeat (Potje et al., "XFeat: Accelerated Features for Lightweight Image Matching", CVPR 2024):
//! a learned joint detector and 64-d descriptor, run in burn on the official weights, with the
//! reference's sparse extraction (`XFeat.detectAndCompute`) reproduced step by step.

pub mod model;
pub mod sparse;
pub mod weights;

use std::path::Path;

use burn::prelude::*;
use image::GrayImage;
use ndarray::Array2;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::Keypoint;
use crate::state_dict::StateDictWeights;
pub use crate::state_dict::WeightsError;
pub use model::{XfeatMaps, XfeatModel};
pub use weights::XfeatWeights;

use sparse::MapView;

/// Descriptor length.
pub const DESCRIPTOR_SIZE: usize = 64;

/// Size recorded for every XFeat keypoint, in pixels: XFeat gives no scale, and each keypoint is
/// the best pixel of an 8×8 cell of its heatmap.
pub const KEYPOINT_SIZE: f32 = 8.0;

/// Name of the bundled weights: the official `xfeat.pt` (verlab/accelerated_features, Apache-2.0;
/// model card `descriptors/weights/README.md`).
pub const BUNDLED_WEIGHTS: &str = "xfeat-official";

const BUNDLED_BYTES: &[u8] = include_bytes!("../../weights/xfeat.safetensors");

/// The bundled weights, parsed.
pub fn bundled_weights() -> XfeatWeights {
    XfeatWeights::from_safetensors_bytes(BUNDLED_BYTES, Path::new(BUNDLED_WEIGHTS))
        .expect("the bundled XFeat weights are a valid state_dict (checked by a test)")
}

/// One XFeat on the bundled weights for the whole process (the `xfeat` detector under another
/// descriptor), loaded at first use.
pub fn shared_bundled() -> &'static Xfeat {
    static NET: std::sync::OnceLock<Xfeat> = std::sync::OnceLock::new();
    NET.get_or_init(Xfeat::bundled)
}

/// XFeat's detection settings (the reference's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct XfeatDetector {
    /// Keypoint heatmap values at or below this are not keypoints (default 0.05).
    pub detection_threshold: f32,
}

impl Default for XfeatDetector {
    fn default() -> Self {
        Self {
            detection_threshold: 0.05,
        }
    }
}

/// A loaded XFeat.
#[derive(Debug)]
pub struct Xfeat {
    model: XfeatModel,
    device: Device,
}

impl Xfeat {
    /// The bundled weights ([`BUNDLED_WEIGHTS`]) on the flex CPU backend.
    pub fn bundled() -> Self {
        Self::from_weights(&bundled_weights(), Device::flex())
    }

    /// Loads an XFeat state_dict (the official `xfeat.pt`, or `.safetensors`) onto the flex CPU
    /// backend.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, WeightsError> {
        Ok(Self::from_weights(
            &XfeatWeights::load(path)?,
            Device::flex(),
        ))
    }

    /// Builds from validated weights, on `device`.
    pub fn from_weights(weights: &XfeatWeights, device: Device) -> Self {
        Self {
            model: XfeatModel::from_weights(weights, &device),
            device,
        }
    }

    /// The network's three maps for a grey image whose sides are multiples of
    /// [`model::STRIDE`], as host vectors (channel-major): (descriptors 64×h×w, keypoint logits
    /// 65×h×w, reliability 1×h×w) with h, w = height/8, width/8.
    pub fn maps(&self, gray: &[f32], height: usize, width: usize) -> [Vec<f32>; 3] {
        let x = Tensor::<4>::from_data(
            TensorData::new(gray.to_vec(), [1, 1, height, width]),
            &self.device,
        );
        let maps = self.model.forward(x);
        [maps.feats, maps.logits, maps.heatmap].map(|t| {
            t.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .expect("f32 maps")
        })
    }

    /// Keypoints and unit-length 64-d descriptors, strongest first, at most `top_k` (0: all), as
    /// the reference's `detectAndCompute`: the image is resized (bilinear) to the nearest
    /// multiples of 32 below its size, and keypoints are scaled back to the image's pixels.
    /// Needs both sides ≥ 32.
    pub fn detect_and_compute(
        &self,
        gray: &GrayImage,
        detector: &XfeatDetector,
        top_k: usize,
    ) -> (Vec<Keypoint>, Array2<f32>) {
        let (w0, h0) = (gray.width() as usize, gray.height() as usize);
        let (h, w) = (
            h0 / model::STRIDE * model::STRIDE,
            w0 / model::STRIDE * model::STRIDE,
        );
        assert!(h > 0 && w > 0, "XFeat needs images of at least 32×32");
        let pixels: Vec<f32> = gray.as_raw().iter().map(|&v| v as f32).collect();
        let input = if (h, w) == (h0, w0) {
            pixels
        } else {
            resize_bilinear(&pixels, h0, w0, h, w)
        };
        let [mut feats, logits, reliability] = self.maps(&input, h, w);
        let (rows, cols) = (h / model::CELL, w / model::CELL);
        sparse::normalise_channels(&mut feats, DESCRIPTOR_SIZE);
        let heat = sparse::keypoint_heatmap(MapView {
            data: &logits,
            channels: 65,
            height: rows,
            width: cols,
        });
        let reliability = MapView {
            data: &reliability,
            channels: 1,
            height: rows,
            width: cols,
        };
        let found = sparse::detect(
            &heat,
            reliability,
            h,
            w,
            detector.detection_threshold,
            top_k,
        );
        let feats = MapView {
            data: &feats,
            channels: DESCRIPTOR_SIZE,
            height: rows,
            width: cols,
        };
        let mut descriptors = Array2::<f32>::zeros((found.len(), DESCRIPTOR_SIZE));
        descriptors
            .as_slice_mut()
            .expect("standard layout")
            .par_chunks_mut(DESCRIPTOR_SIZE)
            .zip(&found)
            .for_each(|(out, d)| {
                sparse::sample_bicubic(
                    feats,
                    sparse::source_coordinate(d.x, w, cols),
                    sparse::source_coordinate(d.y, h, rows),
                    out,
                );
                crate::layers::l2_normalise(out);
            });
        let (rw, rh) = ((w0 as f64 / w as f64) as f32, (h0 as f64 / h as f64) as f32);
        let keypoints = found
            .iter()
            .map(|d| Keypoint {
                x: d.x as f32 * rw,
                y: d.y as f32 * rh,
                size: KEYPOINT_SIZE,
                angle: -1.0,
                response: d.score,
                octave: 0,
            })
            .collect();
        (keypoints, descriptors)
    }
}

/// `F.interpolate(mode='bilinear', align_corners=False)` of an H×W image to `out_h`×`out_w`,
/// with PyTorch's f32 source indices and weights (within one ulp of its CPU kernel; burn's
/// interpolate computes the weights in f64, which moves values by up to 2e-3 grey levels).
fn resize_bilinear(
    pixels: &[f32],
    height: usize,
    width: usize,
    out_h: usize,
    out_w: usize,
) -> Vec<f32> {
    let taps = |n_in: usize, n_out: usize| -> Vec<(usize, usize, f32, f32)> {
        let scale = n_in as f32 / n_out as f32;
        (0..n_out)
            .map(|d| {
                let src = (scale * (d as f32 + 0.5) - 0.5).max(0.0);
                let i0 = src as usize;
                let i1 = if i0 < n_in - 1 { i0 + 1 } else { i0 };
                let l1 = src - i0 as f32;
                (i0, i1, 1.0 - l1, l1)
            })
            .collect()
    };
    let (rows, cols) = (taps(height, out_h), taps(width, out_w));
    let mut out = Vec::with_capacity(out_h * out_w);
    for &(y0, y1, a0, a1) in &rows {
        let (r0, r1) = (&pixels[y0 * width..], &pixels[y1 * width..]);
        for &(x0, x1, b0, b1) in &cols {
            let t0 = r0[x0] * b0 + r0[x1] * b1;
            let t1 = r1[x0] * b0 + r1[x1] * b1;
            out.push(t0 * a0 + t1 * a1);
        }
    }
    out
}
