//! Densified input of the inversion network: every pixel takes the (learned projection of the)
//! features of its nearest revealed keypoint, plus where that keypoint lies.
//!
//! A sparse map leaves the network to learn how to carry each keypoint's descriptor over the
//! image region it describes, which takes many optimiser steps. [`NearestFill`] hands it over
//! directly:
//!
//! * each revealed keypoint's `C`-vector is projected to `E` channels by one learned linear map
//!   (`K×C · C×E`, computed at the keypoints only, so the cost does not grow with `C·H·W`);
//! * every pixel gathers the projection of its nearest keypoint (Euclidean, exact:
//!   [`nearest_sites`]) and three geometry channels: the offset `(dx, dy)` to that keypoint and
//!   the distance, in units of [`OFFSET_UNIT`] pixels, the distance capped at [`MAX_DISTANCE`]
//!   (an image with no keypoint gets zeros and the cap);
//! * a 3×3 convolution takes the `E + 3` channels to the first level's width.
//!
//! The gather is burn's `select` (its backward scatter-adds into the keypoints' rows), so the
//! gradient reaches the projection; nearest sites and geometry are constants built on the host.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;

use crate::kernels::conv3x3::Conv3x3;
use crate::kernels::sparse_conv::SparseBatch;

/// Pixels per unit of the offset and distance channels.
pub const OFFSET_UNIT: f32 = 8.0;
/// Largest distance channel value (units of [`OFFSET_UNIT`]); farther keypoints read as this far.
pub const MAX_DISTANCE: f32 = 4.0;

/// Index of the nearest site of every pixel of an `height`×`width` image, or `None` when there
/// is no site. `sites[k]` is the flattened pixel `y·width + x` of site `k`.
///
/// Exact Euclidean nearest neighbours in O(H·W), after Felzenszwalb & Huttenlocher ("Distance
/// transforms of sampled functions", 2012): the nearest site of each column first, then the
/// lower envelope of the parabolas `(x − x')² + g(x')²` along each row. Ties go to the site
/// found first (smaller row, then smaller column).
pub fn nearest_sites(sites: &[usize], height: usize, width: usize) -> Vec<Option<usize>> {
    let (h, w) = (height, width);
    let mut label = vec![usize::MAX; h * w];
    for (k, &p) in sites.iter().enumerate() {
        if label[p] == usize::MAX {
            label[p] = k;
        }
    }
    // Nearest site row within each column (None: the column has none).
    let mut column_row = vec![None::<usize>; h * w];
    for x in 0..w {
        let mut last = None;
        for y in 0..h {
            if label[y * w + x] != usize::MAX {
                last = Some(y);
            }
            column_row[y * w + x] = last;
        }
        let mut next = None;
        for y in (0..h).rev() {
            if label[y * w + x] != usize::MAX {
                next = Some(y);
            }
            let up = column_row[y * w + x];
            column_row[y * w + x] = match (up, next) {
                (Some(u), Some(n)) => Some(if y - u <= n - y { u } else { n }),
                (u, n) => u.or(n),
            };
        }
    }
    let mut out = vec![None; h * w];
    // Lower envelope of the parabolas of the columns that have a site.
    let mut vertices: Vec<usize> = Vec::with_capacity(w);
    let mut bounds: Vec<f64> = Vec::with_capacity(w + 1);
    for y in 0..h {
        let g2 = |x: usize| {
            column_row[y * w + x].map(|r| {
                let d = r.abs_diff(y) as f64;
                d * d
            })
        };
        vertices.clear();
        bounds.clear();
        for q in 0..w {
            let Some(fq) = g2(q) else { continue };
            loop {
                let Some(&v) = vertices.last() else {
                    vertices.push(q);
                    bounds.push(f64::NEG_INFINITY);
                    break;
                };
                let fv = g2(v).expect("vertices have sites");
                let (qf, vf) = (q as f64, v as f64);
                let s = ((fq + qf * qf) - (fv + vf * vf)) / (2.0 * (qf - vf));
                if s <= *bounds.last().expect("one bound per vertex") {
                    vertices.pop();
                    bounds.pop();
                } else {
                    vertices.push(q);
                    bounds.push(s);
                    break;
                }
            }
        }
        if vertices.is_empty() {
            continue;
        }
        let mut j = 0;
        for x in 0..w {
            while j + 1 < vertices.len() && bounds[j + 1] < x as f64 {
                j += 1;
            }
            let v = vertices[j];
            let r = column_row[y * w + v].expect("vertices have sites");
            out[y * w + x] = Some(label[r * w + v]);
        }
    }
    out
}

/// For a batch, the row of every pixel's nearest keypoint in the batch's feature rows (`K`, the
/// extra zero row, where an image has no keypoint) and the B×3×H×W geometry channels
/// (offset x, offset y, distance; see the module documentation).
pub fn nearest_rows(x: &SparseBatch) -> (Vec<i64>, Vec<f32>) {
    let (b, h, w) = (x.batch, x.height, x.width);
    let hw = h * w;
    let index = x.host_index();
    let mut per_image: Vec<Vec<(usize, usize)>> = vec![Vec::new(); b];
    for (row, &p) in index.iter().enumerate() {
        let p = p as usize;
        per_image[p / hw].push((p % hw, row));
    }
    let none = index.len() as i64;
    let mut rows = vec![none; b * hw];
    let mut geometry = vec![0.0f32; b * 3 * hw];
    for (item, sites) in per_image.iter().enumerate() {
        let pixels: Vec<usize> = sites.iter().map(|&(p, _)| p).collect();
        let nearest = nearest_sites(&pixels, h, w);
        let g = &mut geometry[item * 3 * hw..(item + 1) * 3 * hw];
        for (p, site) in nearest.iter().enumerate() {
            let Some(k) = *site else {
                g[2 * hw + p] = MAX_DISTANCE;
                continue;
            };
            let (sp, row) = sites[k];
            rows[item * hw + p] = row as i64;
            let dx = ((sp % w) as f32 - (p % w) as f32) / OFFSET_UNIT;
            let dy = ((sp / w) as f32 - (p / w) as f32) / OFFSET_UNIT;
            g[p] = dx.clamp(-MAX_DISTANCE, MAX_DISTANCE);
            g[hw + p] = dy.clamp(-MAX_DISTANCE, MAX_DISTANCE);
            g[2 * hw + p] = (dx * dx + dy * dy).sqrt().min(MAX_DISTANCE);
        }
    }
    (rows, geometry)
}

/// Geometry channels per pixel.
pub const GEOMETRY_CHANNELS: usize = 3;

/// The densifying first layer: projection at the keypoints, nearest-keypoint fill with geometry,
/// 3×3 convolution (no bias: a batch norm follows).
#[derive(Module, Debug)]
pub struct NearestFill {
    /// Projection of each keypoint's input vector (C → E, with bias).
    pub embed: Linear,
    /// 3×3 convolution of the filled map (E + 3 → C_out).
    pub conv: Conv3x3,
}

impl NearestFill {
    /// A layer from `in_channels` per keypoint through `embed` channels to `out_channels`.
    pub fn new(in_channels: usize, embed: usize, out_channels: usize, device: &Device) -> Self {
        Self {
            embed: LinearConfig::new(in_channels, embed).init(device),
            conv: Conv3x3::new(embed + GEOMETRY_CHANNELS, out_channels, device),
        }
    }

    /// The filled B×(E+3)×H×W map the convolution sees.
    pub fn fill(&self, x: &SparseBatch) -> Tensor<4> {
        let device = x.features.device();
        let (b, h, w) = (x.batch, x.height, x.width);
        let (rows, geometry) = nearest_rows(x);
        let embedded = self.embed.forward(x.features.clone());
        let e = embedded.dims()[1];
        let table = Tensor::cat(vec![embedded, Tensor::zeros([1, e], &device)], 0);
        let rows = Tensor::<1, Int>::from_data(TensorData::new(rows, [b * h * w]), &device);
        let filled = table
            .select(0, rows)
            .reshape([b, h, w, e])
            .permute([0, 3, 1, 2]);
        let geometry = Tensor::<4>::from_data(
            TensorData::new(geometry, [b, GEOMETRY_CHANNELS, h, w]),
            &device,
        );
        Tensor::cat(vec![filled, geometry], 1)
    }

    /// B×C_out×H×W.
    pub fn forward(&self, x: &SparseBatch) -> Tensor<4> {
        self.conv.forward(self.fill(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn brute_force(sites: &[usize], h: usize, w: usize) -> Vec<Option<u64>> {
        (0..h * w)
            .map(|p| {
                sites
                    .iter()
                    .map(|&s| {
                        let dx = (s % w).abs_diff(p % w) as u64;
                        let dy = (s / w).abs_diff(p / w) as u64;
                        dx * dx + dy * dy
                    })
                    .min()
            })
            .collect()
    }

    #[test]
    fn nearest_sites_are_exactly_nearest() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (h, w, n) in [(1, 1, 1), (7, 5, 1), (16, 16, 3), (23, 31, 40), (9, 40, 2)] {
            let mut sites: Vec<usize> = (0..n).map(|_| rng.random_range(0..h * w)).collect();
            sites.push(sites[0]); // a duplicate is harmless
            let got = nearest_sites(&sites, h, w);
            let want = brute_force(&sites, h, w);
            for p in 0..h * w {
                let k = got[p].expect("every pixel has a site");
                let s = sites[k];
                let d = (s % w).abs_diff(p % w).pow(2) + (s / w).abs_diff(p / w).pow(2);
                assert_eq!(Some(d as u64), want[p], "{h}×{w}, pixel {p}");
            }
        }
        assert!(nearest_sites(&[], 4, 4).iter().all(Option::is_none));
    }

    #[test]
    fn rows_and_geometry_of_a_batch() {
        let device = Device::default();
        // Image 0: keypoints at (x 1, y 0) and (x 3, y 3); image 1: none.
        let x = SparseBatch::from_host(2, 4, 4, 1, vec![1.0, 2.0], vec![1, 15], &device).unwrap();
        let (rows, g) = nearest_rows(&x);
        assert_eq!(&rows[..4], &[0, 0, 0, 0]);
        assert_eq!(rows[15], 1);
        assert!(rows[16..].iter().all(|&r| r == 2), "no keypoint: zero row");
        let hw = 16;
        assert_eq!(
            (g[0], g[hw], g[2 * hw]),
            (1.0 / OFFSET_UNIT, 0.0, 1.0 / OFFSET_UNIT)
        );
        assert_eq!(g[3 * hw + 2 * hw], MAX_DISTANCE);
    }
}
