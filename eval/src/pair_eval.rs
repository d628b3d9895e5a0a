//! Matching accuracy on image pairs with a known homography (HPatches protocol, as in D2-Net):
//! mean matching accuracy (MMA) at 1–10 px and homography accuracy at 1/3/5 px (SuperPoint).

use crate::homography::{Homography, RansacConfig, corner_error, estimate, project};
use crate::matching::{Match, MatchConfig, MatchError, match_descriptors};
use featleak_descriptors::FeatureSet;
use serde::{Deserialize, Serialize};

/// Pixel thresholds of the MMA curve.
pub const MMA_THRESHOLDS: [f64; 10] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
/// Corner-error thresholds of homography accuracy.
pub const HOMOGRAPHY_THRESHOLDS: [f64; 3] = [1.0, 3.0, 5.0];

/// The scores of one pair.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PairScores {
    /// The pair's name (e.g. `v_graffiti/1-4`).
    pub pair: String,
    /// Keypoints in image 1.
    pub keypoints_a: usize,
    /// Keypoints in image k.
    pub keypoints_b: usize,
    /// Matches kept by the [`MatchConfig`].
    pub matches: usize,
    /// Fraction of matches within each of [`MMA_THRESHOLDS`] px (0 when there are no matches).
    pub mma: Vec<f64>,
    /// Mean corner error of the RANSAC homography; `None` when none could be estimated.
    pub corner_error: Option<f64>,
}

/// Scores of features `a` (image 1) and `b` (image k) related by `truth` (1 → k).
pub fn score_pair(
    pair: &str,
    a: &FeatureSet,
    b: &FeatureSet,
    truth: &Homography,
    matching: &MatchConfig,
    ransac: &RansacConfig,
) -> Result<PairScores, MatchError> {
    let matches = match_descriptors(&a.descriptors, &b.descriptors, matching)?;
    Ok(score_matches(pair, a, b, &matches, truth, ransac))
}

/// Scores of `matches` (found by other means, e.g. a defence's own distance) between features
/// `a` (image 1) and `b` (image k) related by `truth` (1 → k).
pub fn score_matches(
    pair: &str,
    a: &FeatureSet,
    b: &FeatureSet,
    matches: &[Match],
    truth: &Homography,
    ransac: &RansacConfig,
) -> PairScores {
    PairScores {
        pair: pair.to_string(),
        keypoints_a: a.len(),
        keypoints_b: b.len(),
        matches: matches.len(),
        mma: matching_accuracy(a, b, matches, truth),
        corner_error: homography_error(a, b, matches, truth, ransac),
    }
}

/// Fraction of matches whose image-1 keypoint, warped by `truth`, lies within each threshold of
/// its matched keypoint (a distance equal to the threshold counts as correct).
fn matching_accuracy(
    a: &FeatureSet,
    b: &FeatureSet,
    matches: &[Match],
    truth: &Homography,
) -> Vec<f64> {
    if matches.is_empty() {
        return vec![0.0; MMA_THRESHOLDS.len()];
    }
    let errors: Vec<f64> = matches
        .iter()
        .map(|m| {
            let (ka, kb) = (&a.keypoints[m.a], &b.keypoints[m.b]);
            project(truth, ka.x as f64, ka.y as f64).map_or(f64::INFINITY, |(x, y)| {
                ((x - kb.x as f64).powi(2) + (y - kb.y as f64).powi(2)).sqrt()
            })
        })
        .collect();
    MMA_THRESHOLDS
        .iter()
        .map(|&t| errors.iter().filter(|&&e| e <= t).count() as f64 / errors.len() as f64)
        .collect()
}

fn homography_error(
    a: &FeatureSet,
    b: &FeatureSet,
    matches: &[Match],
    truth: &Homography,
    ransac: &RansacConfig,
) -> Option<f64> {
    let from: Vec<(f32, f32)> = matches
        .iter()
        .map(|m| (a.keypoints[m.a].x, a.keypoints[m.a].y))
        .collect();
    let to: Vec<(f32, f32)> = matches
        .iter()
        .map(|m| (b.keypoints[m.b].x, b.keypoints[m.b].y))
        .collect();
    corner_error(&estimate(&from, &to, ransac)?, truth, a.image_size)
}

/// Scores averaged over pairs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of pairs averaged.
    pub pairs: usize,
    /// Keypoints per image: the mean over pairs of the two images' mean.
    pub mean_keypoints: f64,
    /// Matches per pair.
    pub mean_matches: f64,
    /// MMA at each of [`MMA_THRESHOLDS`], averaged over pairs.
    pub mma: Vec<f64>,
    /// Share of pairs whose corner error is within each of [`HOMOGRAPHY_THRESHOLDS`] (pairs
    /// without a homography count as failures).
    pub homography_accuracy: Vec<f64>,
}

/// Averages pair scores (an empty list gives zeros, never NaN).
pub fn summarize(scores: &[PairScores]) -> Summary {
    let n = scores.len().max(1) as f64;
    let mean = |f: &dyn Fn(&PairScores) -> f64| scores.iter().map(f).sum::<f64>() / n;
    Summary {
        pairs: scores.len(),
        mean_keypoints: mean(&|s| (s.keypoints_a + s.keypoints_b) as f64 / 2.0),
        mean_matches: mean(&|s| s.matches as f64),
        mma: (0..MMA_THRESHOLDS.len())
            .map(|i| mean(&|s| s.mma[i]))
            .collect(),
        homography_accuracy: HOMOGRAPHY_THRESHOLDS
            .iter()
            .map(|&t| mean(&|s| s.corner_error.is_some_and(|e| e <= t) as u8 as f64))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use featleak_descriptors::{Descriptors, ExtractorInfo, Keypoint};
    use ndarray::Array2;

    fn set(points: &[(f32, f32)], desc: Array2<f32>) -> FeatureSet {
        FeatureSet {
            image_size: (100, 100),
            keypoints: points
                .iter()
                .map(|&(x, y)| Keypoint {
                    x,
                    y,
                    size: 1.0,
                    angle: -1.0,
                    response: 1.0,
                    octave: 0,
                })
                .collect(),
            descriptors: Descriptors::Float(desc),
            extractor: ExtractorInfo {
                name: "t".into(),
                config: serde_json::Value::Null,
            },
        }
    }

    #[test]
    fn mma_counts_matches_within_each_threshold() {
        let shift = [[1.0, 0.0, 10.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];
        let a = set(
            &[(0.0, 0.0), (20.0, 20.0), (50.0, 50.0), (80.0, 10.0)],
            Array2::eye(4),
        );
        // Matched keypoints off by 0, 1.5, 3 and 20 px from the truth.
        let b = set(
            &[(10.0, 0.0), (31.5, 20.0), (60.0, 53.0), (90.0, 30.0)],
            Array2::eye(4),
        );
        let s = score_pair(
            "p",
            &a,
            &b,
            &shift,
            &MatchConfig::default(),
            &RansacConfig::default(),
        )
        .unwrap();
        assert_eq!(s.matches, 4);
        assert_eq!(&s.mma[..5], &[0.25, 0.5, 0.75, 0.75, 0.75]);
        assert_eq!(s.mma[9], 0.75);
        let summary = summarize(&[
            s.clone(),
            PairScores {
                matches: 0,
                mma: vec![0.0; 10],
                corner_error: None,
                ..s
            },
        ]);
        assert_eq!(summary.mma[0], 0.125);
        assert_eq!(summary.homography_accuracy, vec![0.0, 0.0, 0.0]);
        assert!(summarize(&[]).mma.iter().all(|v| *v == 0.0));
    }
}
