//! Identification: does a reconstruction single out its victim among many candidate images?
//!
//! PSNR and SSIM say how close a reconstruction is to its original; identification asks what a
//! privacy reviewer asks next, whether it is close enough to tell *which* photo it was. Every
//! reconstruction is compared with every candidate (its own original among them) by one fixed
//! similarity that no attacker trains on: the zero-mean normalised cross-correlation of 32×32
//! grey thumbnails ("tiny images", Torralba et al. 2008), which rewards the scene's layout of
//! light and dark and nothing finer. The rank of the true original is 1 + the number of other
//! candidates at least as similar (ties count against the reconstruction, so a featureless grey
//! image ranks last, not first). Rank-1 rate by chance is 1 / candidates.

use image::RgbImage;
use image::imageops::FilterType;
use serde::{Deserialize, Serialize};

/// Side of the thumbnails compared.
pub const THUMBNAIL: u32 = 32;

/// How well reconstructions identify their originals among candidates.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Identification {
    /// Candidate images each reconstruction was ranked against (its original included).
    pub candidates: usize,
    /// Share of reconstructions whose original ranks first.
    pub rank_1: f64,
    /// Share whose original ranks in the first five.
    pub rank_5: f64,
    /// Mean rank of the originals (1 is best, `candidates` worst).
    pub mean_rank: f64,
    /// Rank-1 rate of a random guess: 1 / candidates.
    pub chance: f64,
}

/// `image` as a zero-mean, unit-norm vector of its 32×32 grey thumbnail (all zeros when it is
/// flat). Grey is the mean of R, G and B.
pub fn thumbnail(image: &RgbImage) -> Vec<f32> {
    let small = image::imageops::resize(image, THUMBNAIL, THUMBNAIL, FilterType::Triangle);
    let grey: Vec<f32> = small
        .pixels()
        .map(|p| (f32::from(p[0]) + f32::from(p[1]) + f32::from(p[2])) / 3.0)
        .collect();
    let mean = grey.iter().sum::<f32>() / grey.len() as f32;
    let centred: Vec<f32> = grey.iter().map(|v| v - mean).collect();
    let norm = centred.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm < 1e-3 {
        return vec![0.0; centred.len()];
    }
    centred.iter().map(|v| v / norm).collect()
}

/// Normalised cross-correlation of two thumbnails (−1 to 1; 0 when either is flat).
pub fn similarity(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// The rank of candidate `truth` for the thumbnail `query` among `candidates` (1-based; ties
/// count against it).
pub fn rank(query: &[f32], truth: usize, candidates: &[Vec<f32>]) -> usize {
    let own = similarity(query, &candidates[truth]);
    1 + candidates
        .iter()
        .enumerate()
        .filter(|&(i, c)| i != truth && similarity(query, c) >= own)
        .count()
}

/// Ranks each reconstruction (thumbnail `queries[i]`, whose original is `candidates[truth[i]]`)
/// among all `candidates`.
pub fn identify(queries: &[Vec<f32>], truth: &[usize], candidates: &[Vec<f32>]) -> Identification {
    let ranks: Vec<usize> = queries
        .iter()
        .zip(truth)
        .map(|(q, &t)| rank(q, t, candidates))
        .collect();
    let n = ranks.len().max(1) as f64;
    let share = |k: usize| ranks.iter().filter(|&&r| r <= k).count() as f64 / n;
    Identification {
        candidates: candidates.len(),
        rank_1: share(1),
        rank_5: share(5),
        mean_rank: ranks.iter().sum::<usize>() as f64 / n,
        chance: 1.0 / candidates.len().max(1) as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(f: impl Fn(u32, u32) -> u8) -> RgbImage {
        RgbImage::from_fn(64, 64, |x, y| {
            let v = f(x, y);
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn thumbnails_are_zero_mean_unit_norm_and_flat_images_are_zero() {
        let t = thumbnail(&image(|x, _| (x * 4) as u8));
        assert_eq!(t.len(), 32 * 32);
        assert!(t.iter().sum::<f32>().abs() < 1e-3);
        assert!((similarity(&t, &t) - 1.0).abs() < 1e-5);
        let flat = thumbnail(&image(|_, _| 90));
        assert!(flat.iter().all(|&v| v == 0.0));
        // A brighter, higher-contrast copy is the same thumbnail.
        let brighter = thumbnail(&image(|x, _| (x * 2 + 100) as u8));
        assert!((similarity(&t, &brighter) - 1.0).abs() < 1e-3);
    }

    #[test]
    fn ranks_worked_by_hand() {
        // Candidates: left-to-right ramp, right-to-left ramp, top-to-bottom ramp.
        let candidates = vec![
            thumbnail(&image(|x, _| (x * 4) as u8)),
            thumbnail(&image(|x, _| 255 - (x * 4) as u8)),
            thumbnail(&image(|_, y| (y * 4) as u8)),
        ];
        // A noisy left-to-right ramp ranks its original first; the reversed ramp is
        // anti-correlated with it (−1) and the vertical one uncorrelated (0).
        let noisy = thumbnail(&image(|x, y| (x * 4 + (x * 7 + y * 13) % 9) as u8));
        assert_eq!(rank(&noisy, 0, &candidates), 1);
        assert!(similarity(&candidates[0], &candidates[1]) < -0.99);
        assert!(similarity(&candidates[0], &candidates[2]).abs() < 1e-3);
        // The same reconstruction claimed for the vertical ramp: the left-to-right ramp beats
        // it, the reversed one does not: rank 2.
        assert_eq!(rank(&noisy, 2, &candidates), 2);
        // A flat grey reconstruction ties with everything: last.
        let flat = thumbnail(&image(|_, _| 128));
        assert_eq!(rank(&flat, 0, &candidates), 3);
        let id = identify(&[noisy, flat], &[0, 0], &candidates);
        assert_eq!(id.candidates, 3);
        assert_eq!((id.rank_1, id.rank_5, id.mean_rank), (0.5, 1.0, 2.0));
        assert!((id.chance - 1.0 / 3.0).abs() < 1e-12);
    }
}
