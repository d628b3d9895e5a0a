//! Cutting 32×32 patches around keypoints for SOSNet.
//!
//! Geometry (kornia's `extract_patches_from_pyramid` convention, OpenCV keypoints): pixel centres
//! at integer coordinates; cell `(i, j)` (row, column) of a patch of side `S` pixels samples the
//! image at `c + R(θ)·(u_j, u_i)` with `u_k = ((2k + 1)/32 − 1)·S/2`, so the 32×32 cells tile the
//! square of side `S` centred on the keypoint `c`. `R(θ)` turns the patch's x axis onto the image
//! direction `(cos θ, sin θ)` (image y down), θ = `keypoint.angle` in degrees — OpenCV's
//! convention, the one its SIFT descriptor uses; `angle < 0` (OpenCV's -1, "none") means upright.
//! Values are bilinear, cells outside the image read the nearest border pixel (replicate), and
//! intensities are scaled to [0, 1] (kornia's range for SOSNet; its instance norm makes the
//! scale immaterial except on near-flat patches).
//!
//! Anti-aliasing (optional, on by default): like kornia, a patch of side `S ≥ 64` is sampled from
//! pyramid level `floor(log2(S / 32))` (each level a 5-tap Gaussian `[1 4 6 4 1]/16`, reflect-101
//! border, then every other pixel — OpenCV's `pyrDown`; level `l` pixel `p` sits at image
//! position `2^l·p`), built while the shorter side stays ≥ 32. Without it, a large patch shrunk to
//! 32×32 by point sampling aliases.

use image::GrayImage;
use ndarray::Array3;

use crate::Keypoint;

use super::model::PATCH_SIZE;

/// kornia's SIFT-frame convention: its LAF scale is 6σ and a patch covers twice the LAF scale,
/// i.e. 12σ; OpenCV's SIFT `size` is 2σ, hence a patch side of 6 × `size`. (For a DoG keypoint
/// that is about the region OpenCV's SIFT descriptor pools, ~10.6 × `size`... a bit tighter, as in
/// the HardNet/SOSNet evaluation pipelines that use kornia.)
pub const DEFAULT_MAGNIFICATION: f32 = 6.0;
/// The seed paper's setup: 32×32-pixel patches taken as they are.
pub const DEFAULT_FIXED_SIDE: f32 = 32.0;

/// How big and how oriented a keypoint's patch is.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum PatchSampling {
    /// Axis-aligned square of `side` pixels around each keypoint, resampled to 32×32; ignores
    /// `size` and `angle`.
    Fixed {
        /// Patch side in image pixels (default [`DEFAULT_FIXED_SIDE`], 32).
        side: f32,
    },
    /// Square of `magnification × keypoint.size` pixels, rotated by `keypoint.angle`.
    Oriented {
        /// Patch side per pixel of keypoint `size` (default [`DEFAULT_MAGNIFICATION`], 6).
        magnification: f32,
    },
}

impl Default for PatchSampling {
    fn default() -> Self {
        PatchSampling::Fixed {
            side: DEFAULT_FIXED_SIDE,
        }
    }
}

impl PatchSampling {
    /// The scale- and orientation-aware sampling with [`DEFAULT_MAGNIFICATION`].
    pub fn oriented() -> Self {
        PatchSampling::Oriented {
            magnification: DEFAULT_MAGNIFICATION,
        }
    }

    /// Patch side in pixels and (cos θ, sin θ) for a keypoint.
    pub fn frame(&self, kp: &Keypoint) -> (f32, f32, f32) {
        match *self {
            PatchSampling::Fixed { side } => (side, 1.0, 0.0),
            PatchSampling::Oriented { magnification } => {
                let (s, c) = if kp.angle < 0.0 {
                    (0.0, 1.0)
                } else {
                    (kp.angle as f64).to_radians().sin_cos()
                };
                (magnification * kp.size, c as f32, s as f32)
            }
        }
    }
}

/// A grey image as f32 (0–255), one pyramid level.
struct Level {
    w: usize,
    h: usize,
    data: Vec<f32>,
}

impl Level {
    fn from_image(img: &GrayImage) -> Self {
        let (w, h) = img.dimensions();
        Level {
            w: w as usize,
            h: h as usize,
            data: img.as_raw().iter().map(|&v| v as f32).collect(),
        }
    }

    /// OpenCV's pyrDown: 5-tap Gaussian, reflect-101 border, output ((w+1)/2, (h+1)/2).
    fn down(&self) -> Level {
        const K: [f32; 5] = [1.0 / 16.0, 4.0 / 16.0, 6.0 / 16.0, 4.0 / 16.0, 1.0 / 16.0];
        let reflect = |i: isize, n: usize| -> usize {
            let n = n as isize;
            if n == 1 {
                return 0;
            }
            let mut i = i;
            while i < 0 || i >= n {
                i = if i < 0 { -i } else { 2 * n - 2 - i };
            }
            i as usize
        };
        let (w2, h2) = (self.w.div_ceil(2), self.h.div_ceil(2));
        // Horizontal pass at even columns, then vertical pass at even rows.
        let mut tmp = vec![0f32; w2 * self.h];
        for y in 0..self.h {
            let row = &self.data[y * self.w..(y + 1) * self.w];
            for x2 in 0..w2 {
                let x = 2 * x2 as isize;
                tmp[y * w2 + x2] = (0..5)
                    .map(|k| K[k] * row[reflect(x + k as isize - 2, self.w)])
                    .sum();
            }
        }
        let mut data = vec![0f32; w2 * h2];
        for y2 in 0..h2 {
            let y = 2 * y2 as isize;
            for k in 0..5 {
                let src = &tmp[reflect(y + k as isize - 2, self.h) * w2..][..w2];
                for (d, &s) in data[y2 * w2..(y2 + 1) * w2].iter_mut().zip(src) {
                    *d += K[k] * s;
                }
            }
        }
        Level { w: w2, h: h2, data }
    }

    /// Bilinear sample at (x, y) with replicated borders.
    #[inline]
    fn bilinear(&self, x: f32, y: f32) -> f32 {
        let (x0f, y0f) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0f, y - y0f);
        let clamp = |v: f32, n: usize| -> usize { v.clamp(0.0, (n - 1) as f32) as usize };
        let (x0, x1) = (clamp(x0f, self.w), clamp(x0f + 1.0, self.w));
        let (y0, y1) = (clamp(y0f, self.h), clamp(y0f + 1.0, self.h));
        let at = |xx: usize, yy: usize| self.data[yy * self.w + xx];
        let top = at(x0, y0) + fx * (at(x1, y0) - at(x0, y0));
        let bottom = at(x0, y1) + fx * (at(x1, y1) - at(x0, y1));
        top + fy * (bottom - top)
    }
}

/// Patches (N×32×32, values in [0, 1]) around `keypoints`, with the pyramid anti-aliasing.
pub fn sample_patches(
    image: &GrayImage,
    keypoints: &[Keypoint],
    sampling: PatchSampling,
) -> Array3<f32> {
    sample_patches_with(image, keypoints, sampling, true)
}

/// As [`sample_patches`], choosing whether large patches come from a pyramid level (`pyramid`)
/// or straight from the image.
pub fn sample_patches_with(
    image: &GrayImage,
    keypoints: &[Keypoint],
    sampling: PatchSampling,
    pyramid: bool,
) -> Array3<f32> {
    let n = keypoints.len();
    let mut out = Array3::<f32>::zeros((n, PATCH_SIZE, PATCH_SIZE));
    if n == 0 || image.width() == 0 || image.height() == 0 {
        return out;
    }
    let mut levels = vec![Level::from_image(image)];
    let ps = PATCH_SIZE as f32;
    let buf = out.as_slice_mut().expect("standard layout");
    for (kp, patch) in keypoints
        .iter()
        .zip(buf.chunks_exact_mut(PATCH_SIZE * PATCH_SIZE))
    {
        let (side, c, s) = sampling.frame(kp);
        let mut level = 0usize;
        if pyramid && side >= 2.0 * ps {
            let want = (side / ps).log2().floor() as usize;
            while levels.len() <= want {
                let last = levels.last().unwrap();
                if last.w.min(last.h) / 2 < PATCH_SIZE {
                    break;
                }
                let next = last.down();
                levels.push(next);
            }
            level = want.min(levels.len() - 1);
        }
        let lv = &levels[level];
        let inv = 1.0 / (1u32 << level) as f32;
        let half = side / 2.0;
        for i in 0..PATCH_SIZE {
            let v = ((2 * i + 1) as f32 / ps - 1.0) * half;
            for j in 0..PATCH_SIZE {
                let u = ((2 * j + 1) as f32 / ps - 1.0) * half;
                let x = kp.x + c * u - s * v;
                let y = kp.y + s * u + c * v;
                patch[i * PATCH_SIZE + j] = lv.bilinear(x * inv, y * inv) / 255.0;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kp(x: f32, y: f32, size: f32, angle: f32) -> Keypoint {
        Keypoint {
            x,
            y,
            size,
            angle,
            response: 0.0,
            octave: 0,
        }
    }

    /// A non-symmetric smooth test image.
    fn textured(w: u32, h: u32) -> GrayImage {
        GrayImage::from_fn(w, h, |x, y| {
            let (xf, yf) = (x as f32, y as f32);
            let v = 128.0
                + 60.0 * (0.21 * xf + 0.05 * yf).sin()
                + 40.0 * (0.13 * yf - 0.02 * xf * xf / 50.0).cos()
                + if x > 70 && y < 40 { 20.0 } else { 0.0 };
            image::Luma([v.clamp(0.0, 255.0) as u8])
        })
    }

    /// 90° clockwise (as displayed, y down): new (x', y') = (H-1-y, x).
    fn rot90(img: &GrayImage) -> GrayImage {
        let (w, h) = img.dimensions();
        GrayImage::from_fn(h, w, |xp, yp| *img.get_pixel(yp, h - 1 - xp))
    }

    #[test]
    fn fixed_patch_of_a_gradient_is_exact() {
        let img = GrayImage::from_fn(120, 100, |x, y| image::Luma([(x + y) as u8]));
        let k = kp(50.0, 40.0, 7.0, 33.0); // size and angle are ignored by Fixed
        let p = sample_patches(&img, &[k], PatchSampling::Fixed { side: 32.0 });
        for i in 0..32 {
            for j in 0..32 {
                // cell centres at x = 50 - 16 + j + 0.5, y = 40 - 16 + i + 0.5
                let want = ((34.5 + j as f32) + (24.5 + i as f32)) / 255.0;
                assert!(
                    (p[[0, i, j]] - want).abs() < 1e-5,
                    "({i},{j}) {} vs {want}",
                    p[[0, i, j]]
                );
            }
        }
        // A 16-pixel side halves the step.
        let p = sample_patches(&img, &[k], PatchSampling::Fixed { side: 16.0 });
        let want = ((42.0 + 0.25) + (32.0 + 0.25)) / 255.0;
        assert!((p[[0, 0, 0]] - want).abs() < 1e-5);
        assert!((p[[0, 0, 1]] - p[[0, 0, 0]] - 0.5 / 255.0).abs() < 1e-5);
    }

    #[test]
    fn border_is_replicated() {
        let img = GrayImage::from_fn(40, 40, |x, _| image::Luma([(x * 5) as u8]));
        let p = sample_patches(&img, &[kp(0.0, 0.0, 1.0, -1.0)], PatchSampling::default());
        // Left half of the patch lies left of the image: it reads column 0.
        assert_eq!(p[[0, 5, 3]], 0.0);
        assert!((p[[0, 5, 31]] - (15.5 * 5.0) / 255.0).abs() < 1e-5);
    }

    #[test]
    fn oriented_patch_of_a_bar_follows_the_angle() {
        // A horizontal bright bar (rows 48..=52) through (60, 50).
        let img = GrayImage::from_fn(120, 100, |_, y| {
            image::Luma([if (48..=52).contains(&y) { 255 } else { 0 }])
        });
        let s = PatchSampling::Oriented { magnification: 4.0 };
        // angle 0: the bar runs along the patch's rows.
        let p = sample_patches(&img, &[kp(60.0, 50.0, 8.0, 0.0)], s);
        assert!(p[[0, 15, 0]] > 0.99 && p[[0, 15, 31]] > 0.99 && p[[0, 0, 15]] < 0.01);
        // angle 90: the patch's x axis points down the image, so the bar runs down a column.
        let p = sample_patches(&img, &[kp(60.0, 50.0, 8.0, 90.0)], s);
        assert!(
            p[[0, 0, 15]] > 0.99
                && p[[0, 31, 16]] > 0.99
                && p[[0, 15, 0]] < 0.01
                && p[[0, 15, 31]] < 0.01
        );
        // -1 (no orientation) is upright.
        let a = sample_patches(&img, &[kp(60.0, 50.0, 8.0, -1.0)], s);
        let b = sample_patches(&img, &[kp(60.0, 50.0, 8.0, 0.0)], s);
        assert_eq!(a, b);
    }

    #[test]
    fn rotating_the_image_by_90_degrees_gives_the_same_patch() {
        let img = textured(140, 110);
        let r = rot90(&img);
        let h = img.height() as f32;
        for &(x, y, size, angle) in &[
            (60.0f32, 50.0f32, 6.0f32, 30.0f32),
            (71.3, 40.6, 9.0, 200.0),
            (20.0, 90.0, 12.0, 0.0),
        ] {
            let a = sample_patches_with(
                &img,
                &[kp(x, y, size, angle)],
                PatchSampling::oriented(),
                false,
            );
            let b = sample_patches_with(
                &r,
                &[kp(h - 1.0 - y, x, size, angle + 90.0)],
                PatchSampling::oriented(),
                false,
            );
            let d = (&a - &b).iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(d < 1e-3, "max diff {d} at {x},{y},{angle}");
        }
    }

    #[test]
    fn large_patches_use_the_pyramid() {
        // Pixel-wide stripes: sampled straight they alias, from the pyramid they average out.
        let img = GrayImage::from_fn(256, 256, |x, _| {
            image::Luma([if x % 2 == 0 { 255 } else { 0 }])
        });
        let k = [kp(128.5, 128.0, 16.0, 0.0)]; // side 96 → level 1; cells at integer x of both parities
        let smooth = sample_patches(&img, &k, PatchSampling::oriented());
        let (lo, hi) = smooth
            .iter()
            .fold((1f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(lo > 0.4 && hi < 0.6, "{lo}..{hi}");
        let raw = sample_patches_with(&img, &k, PatchSampling::oriented(), false);
        let (lo, hi) = raw
            .iter()
            .fold((1f32, 0f32), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        assert!(lo < 0.1 && hi > 0.9);
    }
}
