//! FREAK (Fast Retina Keypoint) binary descriptor, a bit-exact port of OpenCV 4.6's
//! `cv::xfeatures2d::FREAK` (opencv_contrib `modules/xfeatures2d/src/freak.cpp`).
//!
//! The 43-point retina pattern is precomputed for 64 scales and 256 orientations exactly as
//! `FREAK_Impl::buildPattern` does (same `f64` maths, same `f32` rounding), intensities are box
//! means over an integral image with OpenCV's integer rounding, and the 512 comparisons are packed
//! in the bit order of OpenCV's SSE2 `extractDescriptor` (which its scalar path reproduces).
//!
//! Deliberate deviations, all outside what OpenCV defines: keypoints with a non-finite `x`/`y` are
//! dropped (OpenCV keeps them and reads out of bounds), an empty image drops every keypoint
//! (OpenCV returns early leaving them untouched), and for degenerate configurations
//! (`pattern_scale <= 0` or not finite) samples are clamped to the image instead of read out of
//! bounds. None of these paths is reachable with OpenCV-valid inputs.

use crate::Keypoint;
use image::GrayImage;
use ndarray::Array2;
use rayon::prelude::*;
use std::f64::consts::PI;

/// Number of pattern scales (`FREAK::NB_SCALES`).
const NB_SCALES: usize = 64;
/// Number of selected comparison pairs (`FREAK::NB_PAIRS`), i.e. descriptor bits.
const NB_PAIRS: usize = 512;
/// Number of pairs used to estimate the orientation (`FREAK::NB_ORIENPAIRS`).
const NB_ORIENPAIRS: usize = 45;
/// Number of discrete pattern orientations (`FREAK_NB_ORIENTATION`).
const NB_ORIENTATION: usize = 256;
/// Number of points of the retina pattern (`FREAK_NB_POINTS`).
const NB_POINTS: usize = 43;
/// Keypoint size mapped to scale index 0 (`FREAK_SMALLEST_KP_SIZE`).
const SMALLEST_KP_SIZE: f32 = 7.0;
/// OpenCV's truncated `ln 2` (`FREAK_LOG2`); the exact constant would change scale indices.
#[allow(clippy::approx_constant)]
const FREAK_LOG2: f64 = 0.693147180559945;
/// Descriptor length in bytes.
pub const DESCRIPTOR_BYTES: usize = NB_PAIRS / 8;
/// Fewest keypoints a thread describes at a time.
const PARALLEL_CHUNK: usize = 128;

/// OpenCV's default selected pairs (`FREAK_DEF_PAIRS`), indices into the 903 pairs `(i, j)`,
/// `0 <= j < i < 43`, enumerated with `i` outer and `j` inner.
const DEF_PAIRS: [u16; NB_PAIRS] = [
    404, 431, 818, 511, 181, 52, 311, 874, 774, 543, 719, 230, 417, 205, 11, 560, 149, 265, 39,
    306, 165, 857, 250, 8, 61, 15, 55, 717, 44, 412, 592, 134, 761, 695, 660, 782, 625, 487, 549,
    516, 271, 665, 762, 392, 178, 796, 773, 31, 672, 845, 548, 794, 677, 654, 241, 831, 225, 238,
    849, 83, 691, 484, 826, 707, 122, 517, 583, 731, 328, 339, 571, 475, 394, 472, 580, 381, 137,
    93, 380, 327, 619, 729, 808, 218, 213, 459, 141, 806, 341, 95, 382, 568, 124, 750, 193, 749,
    706, 843, 79, 199, 317, 329, 768, 198, 100, 466, 613, 78, 562, 783, 689, 136, 838, 94, 142,
    164, 679, 219, 419, 366, 418, 423, 77, 89, 523, 259, 683, 312, 555, 20, 470, 684, 123, 458,
    453, 833, 72, 113, 253, 108, 313, 25, 153, 648, 411, 607, 618, 128, 305, 232, 301, 84, 56, 264,
    371, 46, 407, 360, 38, 99, 176, 710, 114, 578, 66, 372, 653, 129, 359, 424, 159, 821, 10, 323,
    393, 5, 340, 891, 9, 790, 47, 0, 175, 346, 236, 26, 172, 147, 574, 561, 32, 294, 429, 724, 755,
    398, 787, 288, 299, 769, 565, 767, 722, 757, 224, 465, 723, 498, 467, 235, 127, 802, 446, 233,
    544, 482, 800, 318, 16, 532, 801, 441, 554, 173, 60, 530, 713, 469, 30, 212, 630, 899, 170,
    266, 799, 88, 49, 512, 399, 23, 500, 107, 524, 90, 194, 143, 135, 192, 206, 345, 148, 71, 119,
    101, 563, 870, 158, 254, 214, 276, 464, 332, 725, 188, 385, 24, 476, 40, 231, 620, 171, 258,
    67, 109, 844, 244, 187, 388, 701, 690, 50, 7, 850, 479, 48, 522, 22, 154, 12, 659, 736, 655,
    577, 737, 830, 811, 174, 21, 237, 335, 353, 234, 53, 270, 62, 182, 45, 177, 245, 812, 673, 355,
    556, 612, 166, 204, 54, 248, 365, 226, 242, 452, 700, 685, 573, 14, 842, 481, 468, 781, 564,
    416, 179, 405, 35, 819, 608, 624, 367, 98, 643, 448, 2, 460, 676, 440, 240, 130, 146, 184, 185,
    430, 65, 807, 377, 82, 121, 708, 239, 310, 138, 596, 730, 575, 477, 851, 797, 247, 27, 85, 586,
    307, 779, 326, 494, 856, 324, 827, 96, 748, 13, 397, 125, 688, 702, 92, 293, 716, 277, 140,
    112, 4, 80, 855, 839, 1, 413, 347, 584, 493, 289, 696, 19, 751, 379, 76, 73, 115, 6, 590, 183,
    734, 197, 483, 217, 344, 330, 400, 186, 243, 587, 220, 780, 200, 793, 246, 824, 41, 735, 579,
    81, 703, 322, 760, 720, 139, 480, 490, 91, 814, 813, 163, 152, 488, 763, 263, 425, 410, 576,
    120, 319, 668, 150, 160, 302, 491, 515, 260, 145, 428, 97, 251, 395, 272, 252, 18, 106, 358,
    854, 485, 144, 550, 131, 133, 378, 68, 102, 104, 58, 361, 275, 209, 697, 582, 338, 742, 589,
    325, 408, 229, 28, 304, 191, 189, 110, 126, 486, 211, 547, 533, 70, 215, 670, 249, 36, 581,
    389, 605, 331, 518, 442, 822,
];

/// The 45 orientation pairs of `buildPattern` (points of the un-rotated pattern, scale 0).
const ORIENTATION_PAIRS: [(u8, u8); NB_ORIENPAIRS] = [
    (0, 3),
    (1, 4),
    (2, 5),
    (0, 2),
    (1, 3),
    (2, 4),
    (3, 5),
    (4, 0),
    (5, 1),
    (6, 9),
    (7, 10),
    (8, 11),
    (6, 8),
    (7, 9),
    (8, 10),
    (9, 11),
    (10, 6),
    (11, 7),
    (12, 15),
    (13, 16),
    (14, 17),
    (12, 14),
    (13, 15),
    (14, 16),
    (15, 17),
    (16, 12),
    (17, 13),
    (18, 21),
    (19, 22),
    (20, 23),
    (18, 20),
    (19, 21),
    (20, 22),
    (21, 23),
    (22, 18),
    (23, 19),
    (24, 27),
    (25, 28),
    (26, 29),
    (30, 33),
    (31, 34),
    (32, 35),
    (36, 39),
    (37, 40),
    (38, 41),
];

/// FREAK parameters, with OpenCV's meaning and defaults (`FREAK::create`).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FreakConfig {
    /// Rotate the pattern to the estimated keypoint orientation (sets `Keypoint::angle`);
    /// otherwise every angle is set to 0.
    pub orientation_normalized: bool,
    /// Pick the pattern scale from `Keypoint::size`; otherwise one fixed scale (that of size 21).
    pub scale_normalized: bool,
    /// Scaling of the description pattern (radius of the outer ring plus its sigma, in pixels,
    /// at scale index 0).
    pub pattern_scale: f32,
    /// Number of octaves covered by the 64 pattern scales.
    pub n_octaves: usize,
}

impl Default for FreakConfig {
    /// OpenCV's defaults: `orientationNormalized = true`, `scaleNormalized = true`,
    /// `patternScale = 22`, `nOctaves = 4`.
    fn default() -> Self {
        Self {
            orientation_normalized: true,
            scale_normalized: true,
            pattern_scale: 22.0,
            n_octaves: 4,
        }
    }
}

/// One pattern point at a given scale and orientation, relative to the keypoint.
#[derive(Clone, Copy, Debug, Default)]
struct PatternPoint {
    x: f32,
    y: f32,
    sigma: f32,
}

/// One orientation pair with OpenCV's fixed-point gradient weights (`dx / |d|^2 * 4096`).
#[derive(Clone, Copy, Debug)]
struct OrientationPair {
    i: u8,
    j: u8,
    weight_dx: i32,
    weight_dy: i32,
}

/// A FREAK descriptor extractor with its precomputed pattern lookup (64 scales x 256
/// orientations x 43 points, about 8.5 MB).
#[derive(Clone, Debug)]
pub struct Freak {
    config: FreakConfig,
    /// `patternLookup`, indexed `(scale * NB_ORIENTATION + orientation) * NB_POINTS + point`.
    pattern: Vec<PatternPoint>,
    /// Half-extent of the pattern at each scale (`patternSizes`), for the border rule.
    pattern_sizes: [i32; NB_SCALES],
    /// Comparison pair for each output bit, in output order (`byte * 8 + bit`).
    bit_pairs: [(u8, u8); NB_PAIRS],
    orientation_pairs: [OrientationPair; NB_ORIENPAIRS],
}

/// Float-to-int truncation as x86 `cvttsd2si` does it (what OpenCV's `int(double)` compiles to):
/// NaN and out-of-range values give `i32::MIN`.
fn trunc_i32(v: f64) -> i32 {
    if v.is_nan() || v >= 2_147_483_648.0 || v <= -2_147_483_649.0 {
        i32::MIN
    } else {
        v as i32
    }
}

/// Orientation-pair weight `w * 4096`, rounded half to even (`cvRound`).
///
/// The freak.cpp text in opencv_contrib reads `int(w * 4096.0 + 0.5)` here and `int(v + 0.5)` /
/// `int(v + 1.5)` for the box borders in `meanIntensity`; truncation would round negative weights
/// towards zero and `.5` ties upwards. The opencv-contrib-python 4.6.0.66 binary is only
/// reproduced (angles and descriptors bit for bit, fixtures included) with round-half-even in both
/// places, as `cvRound` gives, so that is what is implemented.
fn round_weight(w: f32) -> i32 {
    trunc_i32((f64::from(w) * 4096.0).round_ties_even())
}

impl Freak {
    /// Precomputes the pattern lookup for `config` (OpenCV's `buildPattern`) with the default
    /// selected pairs.
    pub fn new(config: FreakConfig) -> Self {
        let pattern_scale = f64::from(config.pattern_scale);
        let scale_step = 2.0f64.powf(config.n_octaves as f64 / NB_SCALES as f64);
        let n: [usize; 8] = [6, 6, 6, 6, 6, 6, 6, 1];
        let big_r = 2.0 / 3.0;
        let small_r = 2.0 / 24.0;
        let unit_space = (big_r - small_r) / 21.0;
        let radius: [f64; 8] = [
            big_r,
            big_r - 6.0 * unit_space,
            big_r - 11.0 * unit_space,
            big_r - 15.0 * unit_space,
            big_r - 18.0 * unit_space,
            big_r - 20.0 * unit_space,
            small_r,
            0.0,
        ];
        let sigma: [f64; 8] = [
            radius[0] / 2.0,
            radius[1] / 2.0,
            radius[2] / 2.0,
            radius[3] / 2.0,
            radius[4] / 2.0,
            radius[5] / 2.0,
            radius[6] / 2.0,
            radius[6] / 2.0,
        ];

        // radius * cos(alpha) and radius * sin(alpha) do not depend on the scale: compute them once
        // per (orientation, point); the products below keep OpenCV's evaluation order
        // ((r * cos) * scalingFactor) * patternScale, so the f32 results are identical.
        let mut unit = vec![(0.0f64, 0.0f64, 0usize); NB_ORIENTATION * NB_POINTS];
        for o in 0..NB_ORIENTATION {
            let theta = o as f64 * 2.0 * PI / NB_ORIENTATION as f64;
            let mut p = 0;
            for (ring, &count) in n.iter().enumerate() {
                for k in 0..count {
                    let beta = PI / count as f64 * (ring % 2) as f64;
                    let alpha = k as f64 * 2.0 * PI / count as f64 + beta + theta;
                    unit[o * NB_POINTS + p] =
                        (radius[ring] * alpha.cos(), radius[ring] * alpha.sin(), ring);
                    p += 1;
                }
            }
        }

        let mut pattern = vec![PatternPoint::default(); NB_SCALES * NB_ORIENTATION * NB_POINTS];
        let mut pattern_sizes = [0i32; NB_SCALES];
        for (scale, size) in pattern_sizes.iter_mut().enumerate() {
            let scaling = scale_step.powf(scale as f64);
            for (&r, &s) in radius.iter().zip(&sigma) {
                // `as` saturates where OpenCV's int() would be undefined (absurd pattern scales).
                let size_max = ((r + s) * scaling * pattern_scale).ceil() as i32;
                *size = (*size).max(size_max.saturating_add(1));
            }
            let lookup =
                &mut pattern[scale * NB_ORIENTATION * NB_POINTS..][..NB_ORIENTATION * NB_POINTS];
            for (point, &(rc, rs, ring)) in lookup.iter_mut().zip(&unit) {
                *point = PatternPoint {
                    x: (rc * scaling * pattern_scale) as f32,
                    y: (rs * scaling * pattern_scale) as f32,
                    sigma: (sigma[ring] * scaling * pattern_scale) as f32,
                };
            }
        }

        let orientation_pairs = ORIENTATION_PAIRS.map(|(i, j)| {
            let (a, b) = (pattern[usize::from(i)], pattern[usize::from(j)]);
            let dx = a.x - b.x;
            let dy = a.y - b.y;
            let norm_sq = dx * dx + dy * dy;
            OrientationPair {
                i,
                j,
                weight_dx: round_weight(dx / norm_sq),
                weight_dy: round_weight(dy / norm_sq),
            }
        });

        let mut all_pairs = Vec::with_capacity(NB_POINTS * (NB_POINTS - 1) / 2);
        for i in 1..NB_POINTS as u8 {
            for j in 0..i {
                all_pairs.push((i, j));
            }
        }
        // OpenCV's SSE2 packing: in 128-bit block b, byte lane L (0..16) of the block holds, in
        // bit m (0..8), the comparison of pair 128 b + 16 m + 15 - L (`_mm_set_epi8` puts its
        // first argument in the highest lane; the mask is 0x80 >> (7 - m)).
        let mut bit_pairs = [(0u8, 0u8); NB_PAIRS];
        for (bit_index, pair) in bit_pairs.iter_mut().enumerate() {
            let (byte, bit) = (bit_index / 8, bit_index % 8);
            let (block, lane) = (byte / 16, byte % 16);
            *pair = all_pairs[usize::from(DEF_PAIRS[128 * block + 16 * bit + 15 - lane])];
        }

        Self {
            config,
            pattern,
            pattern_sizes,
            bit_pairs,
            orientation_pairs,
        }
    }

    /// The configuration this extractor was built with.
    pub fn config(&self) -> FreakConfig {
        self.config
    }

    /// Computes FREAK descriptors of `keypoints` on `gray`.
    ///
    /// Returns the kept keypoints (OpenCV's border rule; angle set when orientation_normalized)
    /// and an N×64 u8 descriptor matrix whose row `k` describes kept keypoint `k`.
    ///
    /// Keypoints are dropped, as OpenCV does, when the pattern at their scale would leave the
    /// image; sizes outside the 64 pattern scales are clamped to the first or last one. Kept
    /// keypoints are otherwise returned unchanged, in input order.
    pub fn compute(&self, gray: &GrayImage, keypoints: &[Keypoint]) -> (Vec<Keypoint>, Array2<u8>) {
        let (w, h) = (gray.width() as usize, gray.height() as usize);
        if w == 0 || h == 0 {
            return (Vec::new(), Array2::zeros((0, DESCRIPTOR_BYTES)));
        }
        let kept = self.select(w, h, keypoints);
        let mut descriptors = Array2::<u8>::zeros((kept.len(), DESCRIPTOR_BYTES));
        if kept.is_empty() {
            return (Vec::new(), descriptors);
        }
        let sampler = Sampler::new(gray);
        // Keypoints in parallel, in chunks large enough to outweigh the scheduling.
        let described: Vec<(Keypoint, [u8; DESCRIPTOR_BYTES])> = kept
            .par_iter()
            .with_min_len(PARALLEL_CHUNK)
            .map(|&(kp, scale)| self.describe(&sampler, kp, scale))
            .collect();
        let out_keypoints = described
            .iter()
            .zip(descriptors.outer_iter_mut())
            .map(|((kp, bytes), mut row)| {
                // Rows of a fresh standard-layout array are contiguous.
                if let Some(dst) = row.as_slice_mut() {
                    dst.copy_from_slice(bytes);
                }
                *kp
            })
            .collect();
        (out_keypoints, descriptors)
    }

    /// Pattern scale index of each keypoint, and OpenCV's border rule (`computeDescriptors`).
    fn select(&self, w: usize, h: usize, keypoints: &[Keypoint]) -> Vec<(Keypoint, usize)> {
        let size_cst = (NB_SCALES as f64 / (FREAK_LOG2 * self.config.n_octaves as f64)) as f32;
        // Scale index as OpenCV computes it: std::log on float (logf), f32 product, then +0.5 in
        // double and int() truncation.
        let scale_of = |size: f32| -> usize {
            let v = if self.config.scale_normalized {
                f64::from((size / SMALLEST_KP_SIZE).ln() * size_cst) + 0.5
            } else {
                // The fixed scale of a keypoint of size 3 * SMALLEST_KP_SIZE (ln 3).
                1.0986122886681 * f64::from(size_cst) + 0.5
            };
            trunc_i32(v).clamp(0, NB_SCALES as i32 - 1) as usize
        };
        let (cols, rows) = (w as i64, h as i64);
        keypoints
            .iter()
            .filter(|kp| kp.x.is_finite() && kp.y.is_finite())
            .filter_map(|kp| {
                let scale = scale_of(kp.size);
                let ps = self.pattern_sizes[scale];
                // OpenCV compares float coordinates with int bounds converted to float.
                let inside = kp.x > ps as f32
                    && kp.y > ps as f32
                    && kp.x < (cols - i64::from(ps)) as f32
                    && kp.y < (rows - i64::from(ps)) as f32;
                inside.then_some((*kp, scale))
            })
            .collect()
    }

    /// Orientation and descriptor of one kept keypoint.
    #[inline]
    fn describe(
        &self,
        sampler: &Sampler,
        mut kp: Keypoint,
        scale: usize,
    ) -> (Keypoint, [u8; DESCRIPTOR_BYTES]) {
        let lookup = |orientation: usize| -> &[PatternPoint] {
            &self.pattern[(scale * NB_ORIENTATION + orientation) * NB_POINTS..][..NB_POINTS]
        };
        let mut values = [0u8; NB_POINTS];
        let theta = if self.config.orientation_normalized {
            for (v, p) in values.iter_mut().zip(lookup(0)) {
                *v = sampler.mean_intensity(kp.x, kp.y, p);
            }
            let (mut d0, mut d1) = (0i32, 0i32);
            for pair in &self.orientation_pairs {
                let delta =
                    i32::from(values[usize::from(pair.i)]) - i32::from(values[usize::from(pair.j)]);
                // Wrapping only matters for degenerate configurations (huge weights).
                d0 = d0.wrapping_add(delta.wrapping_mul(pair.weight_dx) / 2048);
                d1 = d1.wrapping_add(delta.wrapping_mul(pair.weight_dy) / 2048);
            }
            // `atan2` on the float-converted sums resolves to the double ::atan2 in OpenCV's build.
            kp.angle = (f64::from(d1 as f32).atan2(f64::from(d0 as f32)) * (180.0 / PI)) as f32;
            let t = f64::from(NB_ORIENTATION as f32 * kp.angle) * (1.0 / 360.0);
            let theta = if kp.angle < 0.0 {
                trunc_i32(t - 0.5)
            } else {
                trunc_i32(t + 0.5)
            };
            theta.rem_euclid(NB_ORIENTATION as i32) as usize
        } else {
            kp.angle = 0.0;
            0
        };
        for (v, p) in values.iter_mut().zip(lookup(theta)) {
            *v = sampler.mean_intensity(kp.x, kp.y, p);
        }
        let mut bytes = [0u8; DESCRIPTOR_BYTES];
        for (byte, pairs) in bytes.iter_mut().zip(self.bit_pairs.chunks_exact(8)) {
            *byte = pairs.iter().enumerate().fold(0u8, |acc, (bit, &(i, j))| {
                acc | (u8::from(values[usize::from(i)] >= values[usize::from(j)]) << bit)
            });
        }
        (kp, bytes)
    }
}

/// `v.round_ties_even() as i32` without a libm call (x86-64's baseline has no rounding
/// instruction, and this runs four times per sample): adding and subtracting 1.5 · 2^23 rounds in
/// the FPU's default mode, half to even, exactly for |v| < 2^22; larger values take the library.
#[inline(always)]
fn round_half_even(v: f32) -> i32 {
    const MAGIC: f32 = 12_582_912.0;
    if v.abs() < 4_194_304.0 {
        ((v + MAGIC) - MAGIC) as i32
    } else {
        v.round_ties_even() as i32
    }
}

/// The grey image and its integral image (`cv::integral`, one row and column of zeros first),
/// kept as wrapping `u32` so that box sums are exact for any image size.
struct Sampler<'a> {
    pixels: &'a [u8],
    integral: Vec<u32>,
    width: usize,
    height: usize,
}

impl<'a> Sampler<'a> {
    fn new(gray: &'a GrayImage) -> Self {
        let (width, height) = (gray.width() as usize, gray.height() as usize);
        let pixels: &[u8] = gray.as_raw();
        let stride = width + 1;
        let mut integral = vec![0u32; stride * (height + 1)];
        for y in 0..height {
            let (above, below) = integral[y * stride..(y + 2) * stride].split_at_mut(stride);
            let mut row_sum = 0u32;
            for x in 0..width {
                row_sum = row_sum.wrapping_add(u32::from(pixels[y * width + x]));
                below[x + 1] = above[x + 1].wrapping_add(row_sum);
            }
        }
        Self {
            pixels,
            integral,
            width,
            height,
        }
    }

    /// OpenCV's `meanIntensity`: the rounded mean over a box of half-size `sigma` around the
    /// point, or a fixed-point bilinear sample (divided by 4, as OpenCV does) when `sigma < 0.5`.
    #[inline(always)]
    fn mean_intensity(&self, kp_x: f32, kp_y: f32, p: &PatternPoint) -> u8 {
        let xf = p.x + kp_x;
        let yf = p.y + kp_y;
        let radius = p.sigma;
        if radius < 0.5 {
            let (x, y) = (xf as i32, yf as i32);
            // In [0, 1024) whenever the border rule holds; clamped for degenerate configurations.
            let r_x = (((xf - x as f32) * 1024.0) as i32).clamp(0, 1024);
            let r_y = (((yf - y as f32) * 1024.0) as i32).clamp(0, 1024);
            let (r_x_1, r_y_1) = (1024 - r_x, 1024 - r_y);
            // Clamping only matters for degenerate configurations (see the module docs).
            let x0 = (x.max(0) as usize).min(self.width - 1);
            let y0 = (y.max(0) as usize).min(self.height - 1);
            let x1 = (x0 + 1).min(self.width - 1);
            let y1 = (y0 + 1).min(self.height - 1);
            let px = |yy: usize, xx: usize| i32::from(self.pixels[yy * self.width + xx]);
            let ret = (r_x_1 * r_y_1 * px(y0, x0)
                + r_x * r_y_1 * px(y0, x1)
                + r_x_1 * r_y * px(y1, x0)
                + r_x * r_y * px(y1, x1)) as u32;
            return (ret.wrapping_add(2 * 1024 * 1024) / (4 * 1024 * 1024)) as u8;
        }
        // Box borders rounded half to even in f32 (`cvRound(float)`); the integral image is one
        // pixel wider and higher, hence the +1 on the far borders. See `round_weight` on why this is
        // not the `int(x + 0.5)` of the published source.
        let x_left = round_half_even(xf - radius);
        let y_top = round_half_even(yf - radius);
        let x_right = round_half_even(xf + radius + 1.0);
        let y_bottom = round_half_even(yf + radius + 1.0);
        // The border rule keeps these inside [0, width] x [0, height]; the clamps only matter for
        // degenerate configurations.
        let xl = (x_left.max(0) as usize).min(self.width);
        let xr = (x_right.max(0) as usize).min(self.width);
        let yt = (y_top.max(0) as usize).min(self.height);
        let yb = (y_bottom.max(0) as usize).min(self.height);
        let stride = self.width + 1;
        let ii = &self.integral;
        let sum = ii[yb * stride + xr]
            .wrapping_sub(ii[yb * stride + xl])
            .wrapping_add(ii[yt * stride + xl])
            .wrapping_sub(ii[yt * stride + xr]);
        let area = (xr.saturating_sub(xl) * yb.saturating_sub(yt)).max(1) as i64;
        // OpenCV's integer `(sum + area / 2) / area`, as a float division: both are below 2^53,
        // and a quotient's distance to the next integer (≥ 1 / area) is far above f64's rounding,
        // so the floor is exact; 64-bit integer division costs up to 4× more on older x86 cores.
        // (Signed conversions: x86-64's baseline has no unsigned ones.)
        ((i64::from(sum) + area / 2) as f64 / area as f64) as i64 as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(x: f32, y: f32, size: f32) -> Keypoint {
        Keypoint {
            x,
            y,
            size,
            angle: -1.0,
            response: 0.0,
            octave: 0,
        }
    }

    fn textured(w: u32, h: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            image::Luma([((x * 7 + y * 13 + (x * y) % 17) % 256) as u8])
        })
    }

    #[test]
    fn round_half_even_matches_the_library() {
        for v in [
            -2.5f32,
            -1.5,
            -0.5,
            0.5,
            1.5,
            2.5,
            3.4999998,
            7.5000005,
            -7.5,
            1e6 + 0.5,
            -4e6 + 0.5,
            4_194_303.5,
            4_194_304.5,
            3e9,
            -3e9,
            f32::NAN,
        ] {
            assert_eq!(round_half_even(v), v.round_ties_even() as i32, "{v}");
        }
        let mut x = 0.123f32;
        for _ in 0..100_000 {
            x = (x * 1.618 + 0.37) % 2000.0 - 300.0;
            let half = x.floor() + 0.5;
            assert_eq!(round_half_even(x), x.round_ties_even() as i32, "{x}");
            assert_eq!(
                round_half_even(half),
                half.round_ties_even() as i32,
                "{half}"
            );
        }
    }

    #[test]
    fn empty_keypoints_give_empty_matrix() {
        let (kps, d) = Freak::new(FreakConfig::default()).compute(&textured(64, 64), &[]);
        assert!(kps.is_empty());
        assert_eq!(d.dim(), (0, 64));
    }

    #[test]
    fn image_smaller_than_pattern_drops_everything() {
        let freak = Freak::new(FreakConfig::default());
        let (kps, d) = freak.compute(
            &textured(20, 20),
            &[kp(10.0, 10.0, 1.0), kp(10.0, 10.0, 7.0)],
        );
        assert!(kps.is_empty());
        assert_eq!(d.dim(), (0, 64));
        let (kps, d) = freak.compute(&GrayImage::new(0, 0), &[kp(0.0, 0.0, 7.0)]);
        assert!(kps.is_empty());
        assert_eq!(d.dim(), (0, 64));
    }

    #[test]
    fn absurd_sizes_clamp_scale_index() {
        let freak = Freak::new(FreakConfig::default());
        let sel = freak.select(
            2000,
            2000,
            &[
                kp(1000.0, 1000.0, 0.0),
                kp(1000.0, 1000.0, 1.0),
                kp(1000.0, 1000.0, -3.0),
                kp(1000.0, 1000.0, f32::NAN),
                kp(1000.0, 1000.0, 7.0),
                kp(1000.0, 1000.0, 500.0),
                kp(1000.0, 1000.0, 1e30),
            ],
        );
        let scales: Vec<usize> = sel.iter().map(|s| s.1).collect();
        assert_eq!(scales, vec![0, 0, 0, 0, 0, 63, 63]);
        // +inf: x86 int() gives INT_MIN, so OpenCV clamps it to scale 0, not 63.
        assert_eq!(
            freak.select(2000, 2000, &[kp(1000.0, 1000.0, f32::INFINITY)])[0].1,
            0
        );
    }

    #[test]
    fn border_rule_is_strict() {
        let freak = Freak::new(FreakConfig::default());
        let ps = freak.pattern_sizes[0] as f32;
        assert_eq!(ps, 23.0);
        let sel = freak.select(
            100,
            100,
            &[
                kp(ps, 50.0, 7.0),
                kp(ps + 0.01, 50.0, 7.0),
                kp(100.0 - ps, 50.0, 7.0),
                kp(100.0 - ps - 0.01, 50.0, 7.0),
                kp(f32::NAN, 50.0, 7.0),
                kp(50.0, f32::INFINITY, 7.0),
            ],
        );
        let xs: Vec<f32> = sel.iter().map(|s| s.0.x).collect();
        assert_eq!(xs, vec![ps + 0.01, 100.0 - ps - 0.01]);
    }

    #[test]
    fn degenerate_configs_do_not_panic() {
        let img = textured(80, 60);
        let kps = [kp(40.0, 30.0, 7.0), kp(0.0, 0.0, 1.0), kp(79.0, 59.0, 1e6)];
        for config in [
            FreakConfig {
                pattern_scale: 0.0,
                ..FreakConfig::default()
            },
            FreakConfig {
                pattern_scale: -5.0,
                ..FreakConfig::default()
            },
            FreakConfig {
                pattern_scale: f32::NAN,
                ..FreakConfig::default()
            },
            FreakConfig {
                n_octaves: 0,
                ..FreakConfig::default()
            },
            FreakConfig {
                pattern_scale: 2.0,
                scale_normalized: false,
                orientation_normalized: false,
                n_octaves: 1,
            },
        ] {
            let (out, d) = Freak::new(config).compute(&img, &kps);
            assert_eq!(out.len(), d.nrows());
        }
    }

    #[test]
    fn output_bits_are_a_permutation_of_the_pairs() {
        let freak = Freak::new(FreakConfig::default());
        let mut seen: Vec<(u8, u8)> = freak.bit_pairs.to_vec();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), NB_PAIRS);
        // Byte 15, bit 0 is the first selected pair (lane 15 of the first block).
        let first = DEF_PAIRS[0] as usize;
        let (mut i, mut rem) = (1usize, first);
        while rem >= i {
            rem -= i;
            i += 1;
        }
        assert_eq!(freak.bit_pairs[15 * 8], (i as u8, rem as u8));
    }

    #[test]
    fn unnormalized_sets_zero_angle() {
        let config = FreakConfig {
            orientation_normalized: false,
            ..FreakConfig::default()
        };
        let (out, d) = Freak::new(config).compute(&textured(120, 120), &[kp(60.0, 60.0, 7.0)]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].angle, 0.0);
        assert_eq!(d.dim(), (1, 64));
    }
}
