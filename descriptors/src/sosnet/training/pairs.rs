//! Self-supervised patch pairs for descriptor training: each photo is warped by random
//! homographies (perspective, rotation, scale) and photometric changes, DoG keypoints are detected
//! independently in both views, and a keypoint of the original whose projection lands on a
//! keypoint of the warped view with a consistent scale and orientation gives a pair. Both
//! patches are cut with the keypoint frames the detector gave, so the network learns the
//! detector's real localisation, scale and orientation noise.

use std::path::{Path, PathBuf};

use featleak_datasets::warp::{Mat3, random_homography};
use image::GrayImage;
use opencv::core::{BORDER_REFLECT_101, Mat, Scalar, Size};
use opencv::imgproc::{INTER_LINEAR, warp_perspective};
use opencv::prelude::*;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::cv::gray_mat;
use crate::detect::DetectorConfig;
use crate::sosnet::model::PATCH_SIZE;
use crate::sosnet::patches::{PatchSampling, sample_patches};
use crate::{DescriptorError, Keypoint};

/// Values per patch.
pub const PATCH_VALUES: usize = PATCH_SIZE * PATCH_SIZE;

/// How pairs are made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairConfig {
    /// Photos are shrunk so their longer side is at most this.
    pub max_side: u32,
    /// Random views per photo.
    pub views_per_image: usize,
    /// At most this many pairs per view (a random subset).
    pub max_pairs_per_view: usize,
    /// DoG keypoints detected per view.
    pub max_keypoints: usize,
    /// Corner displacement of the perspective part, as a share of the shorter side.
    pub perspective: f64,
    /// In-plane rotation up to ± this many degrees.
    pub max_rotation_deg: f64,
    /// Zoom drawn log-uniformly in [1/max_zoom, max_zoom].
    pub max_zoom: f64,
    /// A keypoint of the warped view matches a projected one within this many pixels,
    pub match_radius: f32,
    /// with a size ratio within this factor of the expected one,
    pub size_tolerance: f32,
    /// and an orientation within this many degrees of the expected one.
    pub angle_tolerance_deg: f32,
    /// Patch frames (the keypoint's scale and orientation by default).
    pub sampling: PatchSampling,
}

impl Default for PairConfig {
    fn default() -> Self {
        Self {
            max_side: 480,
            views_per_image: 6,
            max_pairs_per_view: 120,
            max_keypoints: 1000,
            perspective: 0.12,
            max_rotation_deg: 25.0,
            max_zoom: 1.4,
            match_radius: 2.0,
            size_tolerance: 1.3,
            angle_tolerance_deg: 20.0,
            sampling: PatchSampling::oriented(),
        }
    }
}

/// Patch pairs as 8-bit grey: pair `i` is `patches[2i]` (original view) and `patches[2i + 1]`
/// (warped view), each 32×32 row-major; `image[i]` is the index of its photo.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PatchPairs {
    /// All patches, two per pair, 32×32 grey levels (0–255) each.
    pub patches: Vec<u8>,
    /// For each pair, the index of the photo it was mined from.
    pub image: Vec<u32>,
}

const MAGIC: &[u8; 8] = b"FLPAIRS1";

impl PatchPairs {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        self.image.len()
    }

    /// True when there are no pairs.
    pub fn is_empty(&self) -> bool {
        self.image.is_empty()
    }

    /// Patch `side` (0 original, 1 warped) of pair `i`.
    pub fn patch(&self, i: usize, side: usize) -> &[u8] {
        let at = (2 * i + side) * PATCH_VALUES;
        &self.patches[at..at + PATCH_VALUES]
    }

    fn push(&mut self, image: u32, a: &[f32], b: &[f32]) {
        let q = |v: &f32| (v * 255.0).round().clamp(0.0, 255.0) as u8;
        self.patches.extend(a.iter().map(q));
        self.patches.extend(b.iter().map(q));
        self.image.push(image);
    }

    /// Serialises the pairs (a small header, the photo indices, then the patches).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + 4 * self.len() + self.patches.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        for i in &self.image {
            out.extend_from_slice(&i.to_le_bytes());
        }
        out.extend_from_slice(&self.patches);
        out
    }

    /// The inverse of [`PatchPairs::to_bytes`]; `path` (where the bytes come from) is named in
    /// errors.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, DescriptorError> {
        let damaged = |problem: String| DescriptorError::PairFile {
            path: path.to_path_buf(),
            problem,
        };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(damaged("not a featleak patch-pair file".into()));
        }
        let n = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
        // Checked in u128: a damaged count must not overflow into a plausible size.
        let want = 16 + 4 * n as u128 + 2 * n as u128 * PATCH_VALUES as u128;
        if bytes.len() as u128 != want {
            return Err(damaged(format!(
                "truncated patch-pair file: {} bytes, {want} expected for {n} pairs",
                bytes.len()
            )));
        }
        let n = n as usize;
        let image = bytes[16..16 + 4 * n]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
            .collect();
        Ok(Self {
            patches: bytes[16 + 4 * n..].to_vec(),
            image,
        })
    }
}

/// Loads a photo as grey, shrunk to `max_side`.
pub fn load_gray(path: &Path, max_side: u32) -> Result<GrayImage, DescriptorError> {
    let rgb = featleak_datasets::load_rgb(path)?;
    let gray = featleak_datasets::rgb_to_gray(&rgb);
    let (w, h) = gray.dimensions();
    let long = w.max(h);
    if long <= max_side {
        return Ok(gray);
    }
    let s = max_side as f64 / long as f64;
    let (nw, nh) = (
        ((w as f64 * s).round() as u32).max(1),
        ((h as f64 * s).round() as u32).max(1),
    );
    Ok(image::imageops::resize(
        &gray,
        nw,
        nh,
        image::imageops::FilterType::Triangle,
    ))
}

fn mul(a: &Mat3, b: &Mat3) -> Mat3 {
    std::array::from_fn(|r| std::array::from_fn(|c| (0..3).map(|k| a[r][k] * b[k][c]).sum()))
}

/// A random view: rotation and zoom about the centre, then a perspective corner jitter.
fn random_view(w: u32, h: u32, config: &PairConfig, rng: &mut ChaCha8Rng) -> Mat3 {
    let (cx, cy) = ((w - 1) as f64 / 2.0, (h - 1) as f64 / 2.0);
    let angle = rng
        .random_range(-config.max_rotation_deg..=config.max_rotation_deg)
        .to_radians();
    let zoom = config.max_zoom.max(1.0).ln();
    let s = rng.random_range(-zoom..=zoom).exp();
    let (sn, cs) = angle.sin_cos();
    let similarity = [
        [s * cs, -s * sn, cx - s * (cs * cx - sn * cy)],
        [s * sn, s * cs, cy - s * (sn * cx + cs * cy)],
        [0.0, 0.0, 1.0],
    ];
    mul(
        &random_homography(w, h, config.perspective, rng),
        &similarity,
    )
}

fn project(h: &Mat3, x: f64, y: f64) -> (f64, f64) {
    let w = h[2][0] * x + h[2][1] * y + h[2][2];
    (
        (h[0][0] * x + h[0][1] * y + h[0][2]) / w,
        (h[1][0] * x + h[1][1] * y + h[1][2]) / w,
    )
}

/// Gain, bias, gamma and noise, drawn from `rng`.
fn photometric(img: &mut GrayImage, rng: &mut ChaCha8Rng) {
    let gain = rng.random_range(0.7..1.3f32);
    let bias = rng.random_range(-20.0..20.0f32);
    let gamma = rng.random_range(0.75..1.35f32);
    let noise = rng.random_range(0.0..5.0f32);
    for p in img.pixels_mut() {
        let v = (p.0[0] as f32 / 255.0).powf(gamma) * 255.0 * gain + bias;
        // Sum of two uniforms: a cheap, bounded approximation of Gaussian noise.
        let n = (rng.random::<f32>() + rng.random::<f32>() - 1.0) * noise * 2.45;
        p.0[0] = (v + n).round().clamp(0.0, 255.0) as u8;
    }
}

fn warp(img: &GrayImage, h: &Mat3) -> Result<GrayImage, DescriptorError> {
    let src = gray_mat(img)?;
    let m = Mat::from_slice_2d(h)?;
    let mut dst = Mat::default();
    warp_perspective(
        &src,
        &mut dst,
        &m,
        Size::new(img.width() as i32, img.height() as i32),
        INTER_LINEAR,
        BORDER_REFLECT_101,
        Scalar::default(),
    )?;
    let bytes = dst.data_bytes()?.to_vec();
    GrayImage::from_raw(img.width(), img.height(), bytes).ok_or_else(|| {
        DescriptorError::OpenCv("warpPerspective returned an image of the wrong size".into())
    })
}

fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(360.0);
    d.min(360.0 - d)
}

/// Matches DoG keypoints of the original (`kpa`) to those of the view (`kpb`) through `h`:
/// returns index pairs, each keypoint of the view used at most once.
fn match_keypoints(
    kpa: &[Keypoint],
    kpb: &[Keypoint],
    h: &Mat3,
    (w, ht): (u32, u32),
    config: &PairConfig,
) -> Vec<(usize, usize)> {
    let margin = 8.0;
    let mut used = vec![false; kpb.len()];
    let mut out = Vec::new();
    for (ia, a) in kpa.iter().enumerate() {
        let (x, y) = (a.x as f64, a.y as f64);
        let (u, v) = project(h, x, y);
        if !(u >= margin && v >= margin && u < w as f64 - margin && v < ht as f64 - margin) {
            continue;
        }
        // Local Jacobian by central differences: the keypoint's scale and direction in the view.
        let (ux, vx) = project(h, x + 0.5, y);
        let (ux0, vx0) = project(h, x - 0.5, y);
        let (uy, vy) = project(h, x, y + 0.5);
        let (uy0, vy0) = project(h, x, y - 0.5);
        let j = [[ux - ux0, uy - uy0], [vx - vx0, vy - vy0]];
        let scale = (j[0][0] * j[1][1] - j[0][1] * j[1][0]).abs().sqrt() as f32;
        let (s, c) = (a.angle as f64).to_radians().sin_cos();
        let dir = (j[0][0] * c + j[0][1] * s, j[1][0] * c + j[1][1] * s);
        let expected_angle = (dir.1.atan2(dir.0).to_degrees() as f32).rem_euclid(360.0);
        let expected_size = a.size * scale;
        let r2 = config.match_radius * config.match_radius;
        let mut best: Option<(usize, f32)> = None;
        for (ib, b) in kpb.iter().enumerate() {
            let d2 = (b.x - u as f32).powi(2) + (b.y - v as f32).powi(2);
            if d2 > r2 || used[ib] {
                continue;
            }
            if (b.size / expected_size).ln().abs() > config.size_tolerance.ln()
                || angle_diff(b.angle, expected_angle) > config.angle_tolerance_deg
            {
                continue;
            }
            if best.is_none_or(|(_, d)| d2 < d) {
                best = Some((ib, d2));
            }
        }
        if let Some((ib, _)) = best {
            used[ib] = true;
            out.push((ia, ib));
        }
    }
    out
}

/// The pairs of one view of one photo.
fn view_pairs(
    gray: &GrayImage,
    image: u32,
    rng: &mut ChaCha8Rng,
    config: &PairConfig,
) -> Result<PatchPairs, DescriptorError> {
    let (w, h) = gray.dimensions();
    let hm = random_view(w, h, config, rng);
    let mut warped = warp(gray, &hm)?;
    photometric(&mut warped, rng);
    let detector = DetectorConfig::Dog(Default::default());
    let kpa = detector.detect(gray, config.max_keypoints)?;
    let kpb = detector.detect(&warped, config.max_keypoints)?;
    let mut matches = match_keypoints(&kpa, &kpb, &hm, (w, h), config);
    matches.shuffle(rng);
    matches.truncate(config.max_pairs_per_view);
    let a: Vec<Keypoint> = matches.iter().map(|&(i, _)| kpa[i]).collect();
    let b: Vec<Keypoint> = matches.iter().map(|&(_, j)| kpb[j]).collect();
    let pa = sample_patches(gray, &a, config.sampling);
    let pb = sample_patches(&warped, &b, config.sampling);
    let mut out = PatchPairs::default();
    let (pa, pb) = (
        pa.as_slice().expect("standard layout"),
        pb.as_slice().expect("standard layout"),
    );
    for (x, y) in pa
        .chunks_exact(PATCH_VALUES)
        .zip(pb.chunks_exact(PATCH_VALUES))
    {
        out.push(image, x, y);
    }
    Ok(out)
}

/// Mines pairs from `photos` (their indices in `photos` are the pairs' image ids), seeded per
/// (seed, photo, view) so the result does not depend on the thread count. `done` is called with
/// each finished photo. A photo that cannot be read is an error naming it.
pub fn mine_pairs(
    photos: &[PathBuf],
    config: &PairConfig,
    seed: u64,
    done: &(dyn Fn() + Sync),
) -> Result<PatchPairs, DescriptorError> {
    let per_photo: Vec<Result<PatchPairs, DescriptorError>> = photos
        .par_iter()
        .enumerate()
        .map(|(i, path)| {
            let in_photo = |e: DescriptorError| match e {
                // Decoding errors name the file already.
                DescriptorError::Image(_) => e,
                e => DescriptorError::InFile {
                    path: path.clone(),
                    source: Box::new(e),
                },
            };
            let gray = load_gray(path, config.max_side).map_err(in_photo)?;
            let mut pairs = PatchPairs::default();
            for v in 0..config.views_per_image {
                let mut rng = featleak_datasets::schedule::rng(seed, ((i as u64) << 16) | v as u64);
                let p = view_pairs(&gray, i as u32, &mut rng, config).map_err(in_photo)?;
                pairs.patches.extend(p.patches);
                pairs.image.extend(p.image);
            }
            done();
            Ok(pairs)
        })
        .collect();
    let mut all = PatchPairs::default();
    for p in per_photo {
        let p = p?;
        all.patches.extend(p.patches);
        all.image.extend(p.image);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_files_round_trip_and_reject_truncation() {
        let mut p = PatchPairs::default();
        p.push(3, &[0.5; PATCH_VALUES], &[1.0; PATCH_VALUES]);
        p.push(7, &[0.0; PATCH_VALUES], &[0.25; PATCH_VALUES]);
        let bytes = p.to_bytes();
        assert_eq!(
            PatchPairs::from_bytes(Path::new("p.bin"), &bytes).unwrap(),
            p
        );
        assert_eq!(p.patch(1, 1)[0], 64);
        let err = PatchPairs::from_bytes(Path::new("p.bin"), &bytes[..bytes.len() - 1])
            .unwrap_err()
            .to_string();
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn views_of_a_textured_scene_give_consistent_pairs() {
        let rgb = featleak_datasets::synthetic::scene(240, 180, 5);
        let gray = featleak_datasets::rgb_to_gray(&rgb);
        let config = PairConfig::default();
        let mut rng = featleak_datasets::schedule::rng(1, 2);
        let pairs = view_pairs(&gray, 0, &mut rng, &config).unwrap();
        assert!(pairs.len() >= 10, "only {} pairs", pairs.len());
        // Matching patches look alike far more than random ones do (normalised correlation).
        let ncc = |a: &[u8], b: &[u8]| {
            let m = |v: &[u8]| v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
            let (ma, mb) = (m(a), m(b));
            let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
            for (&x, &y) in a.iter().zip(b) {
                let (x, y) = (x as f64 - ma, y as f64 - mb);
                ab += x * y;
                aa += x * x;
                bb += y * y;
            }
            ab / (aa * bb).sqrt().max(1e-9)
        };
        let n = pairs.len();
        let pos: f64 = (0..n)
            .map(|i| ncc(pairs.patch(i, 0), pairs.patch(i, 1)))
            .sum::<f64>()
            / n as f64;
        let neg: f64 = (0..n)
            .map(|i| ncc(pairs.patch(i, 0), pairs.patch((i + 1) % n, 1)))
            .sum::<f64>()
            / n as f64;
        assert!(pos > 0.5 && pos > neg + 0.3, "pos {pos:.3} neg {neg:.3}");
    }
}
