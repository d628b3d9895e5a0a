//! Sparse feature maps: a feature set rasterised into a C×H×W tensor holding each keypoint's
//! descriptor (and optional geometry) at its pixel and zeros elsewhere: the input of the
//! inversion network.
//!
//! Pixel rule: a keypoint at (x, y) lands in row `floor(y + 0.5)`, column `floor(x + 0.5)`
//! (round half up; pixel centres at integer coordinates), clamped to the map. When several
//! keypoints land in one pixel the one with the higher response wins (ties: the first).
//! Channels, in order: descriptor channels (float: D values, optionally L2-normalised; binary:
//! one 0/1 channel per bit, most significant bit of each byte first, like `numpy.unpackbits`),
//! then presence (1), log-scale (`ln(size)` in map pixels), cos and sin of the angle (0, 0 when the
//! keypoint has no orientation).

use crate::features::{Descriptors, FeatureSet};
use featleak_datasets::ResizeCrop;
use ndarray::{Array2, Array3};
use serde::{Deserialize, Serialize};

/// Which channels a sparse feature map holds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SparseMapConfig {
    /// Descriptor channels.
    pub descriptors: bool,
    /// Divide float descriptors by their L2 norm.
    pub l2_normalize: bool,
    /// A channel that is 1 at keypoints.
    pub presence: bool,
    /// A channel holding `ln(size)` (size in map pixels).
    pub log_scale: bool,
    /// Two channels holding cos and sin of the angle.
    pub orientation: bool,
}

impl Default for SparseMapConfig {
    fn default() -> Self {
        Self {
            descriptors: true,
            l2_normalize: true,
            presence: false,
            log_scale: false,
            orientation: false,
        }
    }
}

impl SparseMapConfig {
    /// Number of channels for descriptors of `descriptor_dim` values (bits for binary ones).
    pub fn channels(&self, descriptor_dim: usize) -> usize {
        let d = if self.descriptors { descriptor_dim } else { 0 };
        d + self.presence as usize + self.log_scale as usize + 2 * self.orientation as usize
    }
}

/// A rasterised feature set.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseMap {
    /// C×H×W values.
    pub data: Array3<f32>,
    /// Keypoints that lost their pixel to a stronger one.
    pub collisions: usize,
}

impl SparseMap {
    /// Shape `[C, H, W]` and the values in row-major order, e.g. for `burn::TensorData::new`.
    pub fn into_shape_and_vec(self) -> ([usize; 3], Vec<f32>) {
        let (c, h, w) = self.data.dim();
        let (vec, offset) = self.data.into_raw_vec_and_offset();
        debug_assert_eq!(offset, Some(0));
        ([c, h, w], vec)
    }
}

/// The map pixel (row, column) of a point in an image of `size` (height, width).
pub fn keypoint_pixel(x: f32, y: f32, size: (u32, u32)) -> (usize, usize) {
    let clamp = |v: f32, n: u32| ((v + 0.5).floor().max(0.0) as usize).min(n as usize - 1);
    (clamp(y, size.0), clamp(x, size.1))
}

/// The occupied pixels of a sparse feature map: one row of channel values per pixel.
#[derive(Clone, Debug, PartialEq)]
pub struct SparsePixels {
    /// Map size (height, width).
    pub size: (u32, u32),
    /// Occupied pixels as row-major indices `row * width + column`, ascending.
    pub pixels: Vec<usize>,
    /// K×C channel values, one row per occupied pixel.
    pub values: Array2<f32>,
    /// The keypoint (index in the feature set) whose values each occupied pixel holds.
    pub keypoints: Vec<usize>,

    /// Keypoints that lost their pixel to a stronger one.
    pub collisions: usize,
}

/// The occupied pixels of the map of `features` at their own image size (the form the
/// attack's sparse first layer consumes; [`rasterize`] spreads it into a dense tensor).
pub fn rasterize_sparse(features: &FeatureSet, config: &SparseMapConfig) -> SparsePixels {
    let w = features.image_size.1 as usize;
    // Winning keypoint per occupied pixel (BTreeMap keeps pixels in raster order).
    let mut winner: std::collections::BTreeMap<usize, usize> = Default::default();
    let mut collisions = 0;
    for (i, kp) in features.keypoints.iter().enumerate() {
        let (r, c) = keypoint_pixel(kp.x, kp.y, features.image_size);
        match winner.entry(r * w + c) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                collisions += 1;
                if kp.response > features.keypoints[*e.get()].response {
                    e.insert(i);
                }
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(i);
            }
        }
    }
    let channels = config.channels(features.descriptors.dimension());
    let mut values = Array2::<f32>::zeros((winner.len(), channels));
    for (mut out, &i) in values.rows_mut().into_iter().zip(winner.values()) {
        let mut ch = 0;
        let mut put = |v: f32| {
            out[ch] = v;
            ch += 1;
        };
        if config.descriptors {
            match &features.descriptors {
                Descriptors::Float(d) => {
                    let row = d.row(i);
                    let norm = if config.l2_normalize {
                        row.dot(&row).sqrt().max(f32::EPSILON)
                    } else {
                        1.0
                    };
                    row.iter().for_each(|v| put(v / norm));
                }
                Descriptors::Binary(d) => {
                    for byte in d.row(i) {
                        (0..8).rev().for_each(|bit| put(((byte >> bit) & 1) as f32));
                    }
                }
            }
        }
        let kp = &features.keypoints[i];
        if config.presence {
            put(1.0);
        }
        if config.log_scale {
            put(kp.size.max(f32::MIN_POSITIVE).ln());
        }
        if config.orientation {
            let (s, c) = if kp.has_angle() {
                kp.angle.to_radians().sin_cos()
            } else {
                (0.0, 0.0)
            };
            put(c);
            put(s);
        }
    }
    SparsePixels {
        size: features.image_size,
        pixels: winner.keys().copied().collect(),
        keypoints: winner.into_values().collect(),
        values,
        collisions,
    }
}

/// Rasterises `features` at their own image size.
pub fn rasterize(features: &FeatureSet, config: &SparseMapConfig) -> SparseMap {
    let sparse = rasterize_sparse(features, config);
    let (h, w) = (sparse.size.0 as usize, sparse.size.1 as usize);
    let mut data = Array3::<f32>::zeros((sparse.values.ncols(), h, w));
    for (&p, values) in sparse.pixels.iter().zip(sparse.values.rows()) {
        data.slice_mut(ndarray::s![.., p / w, p % w])
            .assign(&values);
    }
    SparseMap {
        data,
        collisions: sparse.collisions,
    }
}

/// Rasterises `features` at `size` (height, width): the same resize + centre crop as
/// [`ResizeCrop::cover`] applies to the image, so map and resized image stay aligned.
pub fn rasterize_at(
    features: &FeatureSet,
    config: &SparseMapConfig,
    size: (u32, u32),
) -> SparseMap {
    rasterize(
        &features.transformed(&ResizeCrop::cover(features.image_size, size)),
        config,
    )
}
