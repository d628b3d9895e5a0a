//! ALIKED's sparse steps after the network, as the reference computes them: the DKD detector
//! (`simple_nms`, border, threshold, soft-argmax in a 5×5 window, the score sampled at the
//! refined position) and the SDDH descriptor head (offsets from a 3×3 patch of the feature map,
//! 16 bilinear samples, a 1×1 conv + SELU, the learned aggregation, L2 normalisation).
//! Positions go through the reference's normalised coordinates ([-1, 1], corners aligned) in
//! f32, as it does.

use ndarray::{Array2, ArrayView2, Axis};

use super::DenseMaps;
use super::weights::{AlikedWeights, Conv, DIM, PATCH, SAMPLES};

/// Radius of the non-maximum suppression and of the soft-argmax window (`nms_radius`).
const RADIUS: usize = 2;
/// Temperature of the soft-argmax.
const TEMPERATURE: f32 = 0.1;

/// A detected keypoint.
#[derive(Clone, Copy, Debug)]
pub struct Found {
    /// Column in pixels (sub-pixel).
    pub x: f32,
    /// Row in pixels (sub-pixel).
    pub y: f32,
    /// Position normalised to [-1, 1] (corners aligned): what the descriptor head reads.
    normalised: (f32, f32),
    /// The score map at the position (bilinear).
    pub score: f32,
}

/// PyTorch's SELU (`x·λ` above 0, `λα·(eˣ − 1)` below).
pub(crate) fn selu(x: f32) -> f32 {
    const ALPHA: f32 = 1.673_263_2;
    const SCALE: f32 = 1.050_701;
    if x > 0.0 {
        x * SCALE
    } else {
        x.exp_m1() * (ALPHA * SCALE)
    }
}

/// Max over the (2r+1)² window around each pixel, the window cut at the borders (max-pooling
/// with −∞ padding).
fn max_pool(v: &[f32], h: usize, w: usize) -> Vec<f32> {
    let window = |i: usize, n: usize| i.saturating_sub(RADIUS)..(i + RADIUS + 1).min(n);
    let mut rows = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            rows[y * w + x] = window(x, w)
                .map(|xx| v[y * w + xx])
                .fold(f32::NEG_INFINITY, f32::max);
        }
    }
    let mut out = vec![0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            out[y * w + x] = window(y, h)
                .map(|yy| rows[yy * w + x])
                .fold(f32::NEG_INFINITY, f32::max);
        }
    }
    out
}

/// The reference's `simple_nms`: local maxima, then twice more the maxima among what the
/// maxima found so far do not suppress.
fn simple_nms(scores: &[f32], h: usize, w: usize) -> Vec<f32> {
    let pooled = max_pool(scores, h, w);
    let mut max_mask: Vec<bool> = scores.iter().zip(&pooled).map(|(s, m)| s == m).collect();
    for _ in 0..2 {
        let as_float: Vec<f32> = max_mask.iter().map(|&m| m as u8 as f32).collect();
        let suppressed: Vec<bool> = max_pool(&as_float, h, w).iter().map(|&v| v > 0.0).collect();
        let kept: Vec<f32> = scores
            .iter()
            .zip(&suppressed)
            .map(|(&s, &sup)| if sup { 0.0 } else { s })
            .collect();
        let pooled = max_pool(&kept, h, w);
        for i in 0..h * w {
            max_mask[i] |= kept[i] == pooled[i] && !suppressed[i];
        }
    }
    scores
        .iter()
        .zip(&max_mask)
        .map(|(&s, &m)| if m { s } else { 0.0 })
        .collect()
}

/// `grid_sample(mode="bilinear", align_corners=True, padding_mode="zeros")` of the `channels`
/// planes of `map` (each h×w) at the normalised point (nx, ny), into `out`.
fn sample(map: &[f32], (h, w): (usize, usize), (nx, ny): (f32, f32), out: &mut [f32]) {
    let ix = (nx + 1.0) / 2.0 * (w - 1) as f32;
    let iy = (ny + 1.0) / 2.0 * (h - 1) as f32;
    let (x0, y0) = (ix.floor(), iy.floor());
    let (x1, y1) = (x0 + 1.0, y0 + 1.0);
    let corners = [
        (x0, y0, (x1 - ix) * (y1 - iy)),
        (x1, y0, (ix - x0) * (y1 - iy)),
        (x0, y1, (x1 - ix) * (iy - y0)),
        (x1, y1, (ix - x0) * (iy - y0)),
    ];
    let plane = h * w;
    out.fill(0.0);
    for (cx, cy, weight) in corners {
        if cx < 0.0 || cy < 0.0 || cx >= w as f32 || cy >= h as f32 {
            continue;
        }
        let at = cy as usize * w + cx as usize;
        for (c, o) in out.iter_mut().enumerate() {
            *o += map[c * plane + at] * weight;
        }
    }
}

/// DKD: the keypoints of the score map, in raster order, or the `limit` strongest (strongest
/// first) when more were found.
pub fn detect(maps: &DenseMaps, threshold: f32, limit: usize) -> Vec<Found> {
    let (h, w) = (maps.height, maps.width);
    let scores = &maps.scores;
    let mut nms = simple_nms(scores, h, w);
    for y in 0..h {
        for x in 0..w {
            if y < RADIUS || x < RADIUS || y + RADIUS >= h || x + RADIUS >= w {
                nms[y * w + x] = 0.0;
            }
        }
    }
    let mut picked: Vec<usize> = (0..h * w).filter(|&i| nms[i] > threshold).collect();
    if picked.is_empty() {
        let mean = (scores.iter().map(|&s| s as f64).sum::<f64>() / scores.len() as f64) as f32;
        picked = (0..h * w).filter(|&i| nms[i] > mean).collect();
    }
    if picked.len() > limit {
        picked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        picked.truncate(limit);
    }
    let (wm1, hm1) = ((w - 1) as f32, (h - 1) as f32);
    picked
        .into_iter()
        .map(|i| {
            let (px, py) = (i % w, i / w);
            let mut patch = [0f32; (2 * RADIUS + 1) * (2 * RADIUS + 1)];
            for (k, p) in patch.iter_mut().enumerate() {
                let (yy, xx) = (py + k / 5, px + k % 5);
                *p = scores[(yy - RADIUS) * w + xx - RADIUS];
            }
            let max = patch.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let (mut sum, mut dx, mut dy) = (0f32, 0f32, 0f32);
            for (k, &p) in patch.iter().enumerate() {
                let e = ((p - max) / TEMPERATURE).exp();
                sum += e;
                dx += e * ((k % 5) as f32 - RADIUS as f32);
                dy += e * ((k / 5) as f32 - RADIUS as f32);
            }
            let nx = (px as f32 + dx / sum) / wm1 * 2.0 - 1.0;
            let ny = (py as f32 + dy / sum) / hm1 * 2.0 - 1.0;
            let mut score = [0f32];
            sample(scores, (h, w), (nx, ny), &mut score);
            Found {
                x: wm1 * (nx + 1.0) / 2.0,
                y: hm1 * (ny + 1.0) / 2.0,
                normalised: (nx, ny),
                score: score[0],
            }
        })
        .collect()
}

fn matrix(c: &Conv) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((c.c_out, c.c_in * c.kernel * c.kernel), &c.weight)
        .expect("checked shape")
}

/// `x · Wᵀ + b` for the rows of `x`, then SELU when asked.
fn linear(x: &Array2<f32>, c: &Conv, gate: bool) -> Array2<f32> {
    let mut y = x.dot(&matrix(c).t());
    for mut row in y.axis_iter_mut(Axis(0)) {
        for (v, b) in row.iter_mut().zip(&c.bias) {
            *v += b;
            if gate {
                *v = selu(*v);
            }
        }
    }
    y
}

/// SDDH: the unit-length descriptor of each keypoint.
pub fn describe(maps: &DenseMaps, found: &[Found], weights: &AlikedWeights) -> Array2<f32> {
    let (h, w) = (maps.height, maps.width);
    let (wm1, hm1) = ((w - 1) as f32, (h - 1) as f32);
    let max_offset = h.max(w) as f32 / 4.0;
    let plane = h * w;
    let n = found.len();
    // Each keypoint's PATCH×PATCH patch, channels first, at the reference's corner.
    let mut patches = Array2::<f32>::zeros((n, DIM * PATCH * PATCH));
    let at_pixel: Vec<(f32, f32)> = found
        .iter()
        .map(|k| {
            (
                (k.normalised.0 / 2.0 + 0.5) * wm1,
                (k.normalised.1 / 2.0 + 0.5) * hm1,
            )
        })
        .collect();
    for (mut row, &(kx, ky)) in patches.axis_iter_mut(Axis(0)).zip(&at_pixel) {
        let corner = |v: f32, n: usize| {
            ((v.trunc() - PATCH as f32 / 2.0 + 1.0).trunc().max(0.0) as usize).min(n - 1 - PATCH)
        };
        let (cx, cy) = (corner(kx, w), corner(ky, h));
        for c in 0..DIM {
            for a in 0..PATCH {
                for b in 0..PATCH {
                    row[(c * PATCH + a) * PATCH + b] =
                        maps.features[c * plane + (cy + a) * w + cx + b];
                }
            }
        }
    }
    let [first, second] = &weights.offset_head;
    let offsets = linear(&linear(&patches, first, true), second, false);
    // The features at the SAMPLES positions of each keypoint, one row per (keypoint, sample).
    let mut sampled = Array2::<f32>::zeros((n * SAMPLES, DIM));
    for (i, &(kx, ky)) in at_pixel.iter().enumerate() {
        let o = offsets.row(i);
        for p in 0..SAMPLES {
            let clamp = |v: f32| v.clamp(-max_offset, max_offset);
            let (px, py) = (kx + clamp(o[p]), ky + clamp(o[SAMPLES + p]));
            let mut row = sampled.row_mut(i * SAMPLES + p);
            let out = row.as_slice_mut().expect("standard layout");
            sample(
                &maps.features,
                (h, w),
                (2.0 * px / wm1 - 1.0, 2.0 * py / hm1 - 1.0),
                out,
            );
        }
    }
    let gated = linear(&sampled, &weights.sample_conv, true);
    let flat = gated
        .into_shape_with_order((n, SAMPLES * DIM))
        .expect("rows are (keypoint, sample)");
    let aggregation =
        ArrayView2::from_shape((SAMPLES * DIM, DIM), &weights.aggregation).expect("checked shape");
    let mut descriptors = flat.dot(&aggregation);
    for mut row in descriptors.axis_iter_mut(Axis(0)) {
        crate::layers::l2_normalise(row.as_slice_mut().expect("standard layout"));
    }
    descriptors
}
