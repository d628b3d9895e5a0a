//! XFeat's sparse extraction after the network (`XFeat.detectAndCompute` of the reference), on
//! host f32 buffers with the reference's float arithmetic: the keypoint heatmap, 5×5
//! non-maximum suppression, scores (nearest heatmap × bilinear reliability), top-k, and
//! descriptors sampled bicubically, each step as PyTorch's `grid_sample(align_corners=False)`
//! computes it on the reference's normalised grid (`2·x/(W−1) − 1`, which is not the pixel-centre
//! grid: kept so that keypoints and descriptors equal the reference's).

use rayon::prelude::*;

/// A C×H×W map in row-major order.
#[derive(Clone, Copy, Debug)]
pub struct MapView<'a> {
    /// The values, channel-major.
    pub data: &'a [f32],
    /// Channels.
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl MapView<'_> {
    fn at(&self, c: usize, y: isize, x: isize) -> f32 {
        if y < 0 || x < 0 || y as usize >= self.height || x as usize >= self.width {
            return 0.0; // grid_sample's zero padding
        }
        self.data[(c * self.height + y as usize) * self.width + x as usize]
    }
}

/// The full-resolution keypoint heatmap (H×W, H = 8·rows) from the 65×rows×cols logits: a softmax
/// over the 65 channels of each cell, the first 64 laid out as the cell's 8×8 pixels.
pub fn keypoint_heatmap(logits: MapView<'_>) -> Vec<f32> {
    let (rows, cols) = (logits.height, logits.width);
    assert_eq!(
        logits.channels, 65,
        "XFeat keypoint logits have 65 channels"
    );
    let w = cols * 8;
    let mut heat = vec![0f32; rows * 8 * w];
    let plane = rows * cols;
    // One band of 8 heatmap rows per row of cells.
    heat.par_chunks_mut(8 * w)
        .enumerate()
        .for_each(|(r, band)| {
            let mut exps = [0f32; 65];
            for c in 0..cols {
                let at = |k: usize| logits.data[k * plane + r * cols + c];
                let max = (0..65).map(at).fold(f32::NEG_INFINITY, f32::max);
                let mut sum = 0f32;
                for (k, e) in exps.iter_mut().enumerate() {
                    *e = (at(k) - max).exp();
                    sum += *e;
                }
                for (k, e) in exps[..64].iter().enumerate() {
                    band[(k / 8) * w + c * 8 + k % 8] = e / sum;
                }
            }
        });
    heat
}

/// Positions (x, y) that are the maximum of their 5×5 neighbourhood and above `threshold`, in
/// row-major order (`nonzero()` of the reference's mask).
pub fn nms_5x5(heat: &[f32], height: usize, width: usize, threshold: f32) -> Vec<(usize, usize)> {
    (0..height)
        .into_par_iter()
        .flat_map_iter(|y| {
            (0..width).filter_map(move |x| {
                let v = heat[y * width + x];
                let is_max = v > threshold
                    && (y.saturating_sub(2)..(y + 3).min(height)).all(|yy| {
                        (x.saturating_sub(2)..(x + 3).min(width))
                            .all(|xx| heat[yy * width + xx] <= v)
                    });
                is_max.then_some((x, y))
            })
        })
        .collect()
}

/// Where the reference's `grid_sample` reads the map of side `size` for pixel `pos` of an image
/// of side `full`: `((2·pos/(full−1) − 1) + 1)·size/2 − 0.5`, in f32 as PyTorch's CPU kernel.
pub fn source_coordinate(pos: usize, full: usize, size: usize) -> f32 {
    let g = 2.0f32 * (pos as f32 / (full - 1) as f32) - 1.0;
    (g + 1.0) * (size as f32 / 2.0) - 0.5
}

/// `grid_sample(mode='nearest')`: rounds half to even, zero outside.
pub fn sample_nearest(map: MapView<'_>, x: f32, y: f32) -> f32 {
    map.at(
        0,
        y.round_ties_even() as isize,
        x.round_ties_even() as isize,
    )
}

/// `grid_sample(mode='bilinear')`, zero padding.
pub fn sample_bilinear(map: MapView<'_>, x: f32, y: f32) -> f32 {
    let (xw, yn) = (x.floor(), y.floor());
    let (w, n) = (x - xw, y - yn);
    let (e, s) = (1.0 - w, 1.0 - n);
    let (x0, y0) = (xw as isize, yn as isize);
    map.at(0, y0, x0) * (s * e)
        + map.at(0, y0, x0 + 1) * (s * w)
        + map.at(0, y0 + 1, x0) * (n * e)
        + map.at(0, y0 + 1, x0 + 1) * (n * w)
}

/// The cubic convolution weights (A = −0.75) of the four taps around fraction `t`.
fn cubic_coefficients(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let far = |x: f32| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    let near = |x: f32| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// `grid_sample(mode='bicubic')` of every channel, zero padding, into `out` (one per channel).
pub fn sample_bicubic(map: MapView<'_>, x: f32, y: f32, out: &mut [f32]) {
    let (ix, iy) = (x.floor(), y.floor());
    let cx = cubic_coefficients(x - ix);
    let cy = cubic_coefficients(y - iy);
    let (x0, y0) = (ix as isize - 1, iy as isize - 1);
    for (c, o) in out.iter_mut().enumerate().take(map.channels) {
        let row = |i: isize| {
            let v = |j: isize| map.at(c, y0 + i, x0 + j);
            v(0) * cx[0] + v(1) * cx[1] + v(2) * cx[2] + v(3) * cx[3]
        };
        *o = row(0) * cy[0] + row(1) * cy[1] + row(2) * cy[2] + row(3) * cy[3];
    }
}

/// Normalises every pixel's C-vector of a C×H×W map (`F.normalize(M1, dim=1)`).
pub fn normalise_channels(data: &mut [f32], channels: usize) {
    let plane = data.len() / channels;
    let mut v = vec![0f32; channels];
    for p in 0..plane {
        for (c, x) in v.iter_mut().enumerate() {
            *x = data[c * plane + p];
        }
        crate::layers::l2_normalise(&mut v);
        for (c, x) in v.iter().enumerate() {
            data[c * plane + p] = *x;
        }
    }
}

/// A detected keypoint on the network's input grid, with its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Detection {
    /// Column on the (resized) network input.
    pub x: usize,
    /// Row on the (resized) network input.
    pub y: usize,
    /// Heatmap × reliability.
    pub score: f32,
}

/// The reference's detection: NMS candidates scored by `nearest(heatmap) · bilinear(reliability)`,
/// sorted by score (stable, descending), the best `top_k` (0: all) kept, and those with a score
/// ≤ 0 dropped — which includes a keypoint at (0, 0), scored −1 by the reference because that is
/// its padding value.
pub fn detect(
    heat: &[f32],
    reliability: MapView<'_>,
    height: usize,
    width: usize,
    threshold: f32,
    top_k: usize,
) -> Vec<Detection> {
    let heat_map = MapView {
        data: heat,
        channels: 1,
        height,
        width,
    };
    let mut found: Vec<Detection> = nms_5x5(heat, height, width, threshold)
        .into_par_iter()
        .map(|(x, y)| {
            let score = if x == 0 && y == 0 {
                -1.0
            } else {
                let near = sample_nearest(
                    heat_map,
                    source_coordinate(x, width, width),
                    source_coordinate(y, height, height),
                );
                let rel = sample_bilinear(
                    reliability,
                    source_coordinate(x, width, reliability.width),
                    source_coordinate(y, height, reliability.height),
                );
                near * rel
            };
            Detection { x, y, score }
        })
        .collect();
    found.sort_by(|a, b| b.score.total_cmp(&a.score));
    if top_k > 0 {
        found.truncate(top_k);
    }
    found.retain(|d| d.score > 0.0);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_weights_sum_to_one_and_interpolate() {
        for t in [0.0f32, 0.25, 0.5, 0.9] {
            let c = cubic_coefficients(t);
            assert!((c.iter().sum::<f32>() - 1.0).abs() < 1e-6, "{t}: {c:?}");
        }
        assert_eq!(cubic_coefficients(0.0), [0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn samplers_read_pixels_exactly_and_zero_outside() {
        let data: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let map = MapView {
            data: &data,
            channels: 1,
            height: 3,
            width: 4,
        };
        assert_eq!(sample_bilinear(map, 2.0, 1.0), 6.0);
        assert_eq!(sample_bilinear(map, 2.5, 1.0), 6.5);
        assert_eq!(sample_nearest(map, 2.5, 1.0), 6.0, "half to even");
        assert_eq!(sample_nearest(map, 3.5, 1.0), 0.0, "rounds to 4: outside");
        let mut out = [0f32];
        sample_bicubic(map, 1.0, 1.0, &mut out);
        assert_eq!(out[0], 5.0);
        // A linear ramp inside the map is reproduced by the cubic kernel.
        sample_bicubic(map, 1.5, 1.0, &mut out);
        assert!((out[0] - 5.5).abs() < 1e-6, "{}", out[0]);
    }

    #[test]
    fn nms_keeps_strict_and_tied_maxima_above_threshold() {
        let (h, w) = (6, 6);
        let mut heat = vec![0.01f32; h * w];
        heat[2 * w + 2] = 0.5;
        heat[2 * w + 3] = 0.4; // suppressed by its neighbour
        heat[5 * w + 5] = 0.2;
        heat[0] = 0.04; // below the threshold
        assert_eq!(nms_5x5(&heat, h, w, 0.05), vec![(2, 2), (5, 5)]);
    }

    #[test]
    fn heatmap_lays_cells_out_row_major() {
        // One cell; logit 10 on channel 8·3 + 5 → pixel (x 5, y 3) is hot.
        let mut logits = vec![0f32; 65];
        logits[29] = 10.0;
        let heat = keypoint_heatmap(MapView {
            data: &logits,
            channels: 65,
            height: 1,
            width: 1,
        });
        let hot = heat
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .unwrap()
            .0;
        assert_eq!((hot % 8, hot / 8), (5, 3));
        let total: f32 = heat.iter().sum();
        assert!(total < 1.0, "the 65th channel takes its share");
    }
}
