//! Strategies that choose which keypoints (with their descriptors) leave the device.
//!
//! Every strategy takes a feature set and a keep fraction and returns the indices of the revealed
//! keypoints (ascending, so the revealed set keeps the original order). Strategies are
//! deterministic: the random one draws from a generator seeded by the caller, and the
//! privacy-aware one ranks by leakage scores the caller computes with the attacker
//! ([`crate::leakage`]).

use crate::MitigationError;
use featleak_descriptors::{FeatureSet, Keypoint};
use rand::SeedableRng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// A keypoint-selection strategy and its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Strategy {
    /// A uniformly random subset.
    Random,
    /// The strongest detector responses.
    TopResponse,
    /// The weakest detector responses.
    LowestResponse,
    /// Spatially uniform: the image is cut into `cells`×`cells` buckets and the strongest keypoint
    /// of each bucket is taken in turn (buckets with stronger candidates first) until the budget
    /// is spent.
    Grid {
        /// Buckets per side.
        cells: u32,
    },
    /// Adaptive non-maximal suppression (Brown, Szeliski & Winder 2005): keep the keypoints with
    /// the largest suppression radius, the distance to the nearest keypoint whose response is
    /// stronger by the factor 1/`robustness`.
    Anms {
        /// Response factor (0–1) a neighbour must exceed to suppress.
        robustness: f32,
    },
    /// Privacy-aware: withhold the keypoints the attacker leans on most. Keypoints are ranked by
    /// their leakage score (least leaking first) blended with their detector response (strongest
    /// first, what matching needs): `(1 − w)·leak_rank + w·response_rank`, ranks scaled to 0–1,
    /// `w = utility_weight`; the lowest blended ranks are revealed.
    Leakage {
        /// Weight `w` of the detector response in the blend (0–1).
        utility_weight: f32,
    },
}

/// What a strategy may use besides the features.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hints<'a> {
    /// Seed of random choices.
    pub seed: u64,
    /// Per-keypoint leakage scores ([`crate::leakage::LeakageScorer`]), for [`Strategy::Leakage`].
    pub leakage: Option<&'a [f32]>,
}

impl Hints<'_> {
    /// Hints with only a seed.
    pub fn seed(seed: u64) -> Self {
        Self {
            seed,
            leakage: None,
        }
    }
}

/// Default weight of detector response against leakage rank in the leakage strategy.
pub const DEFAULT_UTILITY_WEIGHT: f32 = 0.25;

/// Names accepted by [`Strategy::by_name`].
pub const STRATEGY_NAMES: &[&str] = &[
    "random",
    "top-response",
    "lowest-response",
    "grid",
    "anms",
    "leakage",
];

impl Strategy {
    /// The strategy called `name` with default parameters (leakage: [`DEFAULT_UTILITY_WEIGHT`]).
    pub fn by_name(name: &str) -> Result<Self, MitigationError> {
        Ok(match name {
            "random" => Self::Random,
            "top-response" => Self::TopResponse,
            "lowest-response" => Self::LowestResponse,
            "grid" => Self::Grid { cells: 8 },
            "anms" => Self::Anms { robustness: 0.9 },
            "leakage" => Self::Leakage {
                utility_weight: DEFAULT_UTILITY_WEIGHT,
            },
            _ => {
                return Err(MitigationError::Strategy(format!(
                    "unknown strategy '{name}' (known: {})",
                    STRATEGY_NAMES.join(", ")
                )));
            }
        })
    }

    /// Short name, as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Random => "random",
            Self::TopResponse => "top-response",
            Self::LowestResponse => "lowest-response",
            Self::Grid { .. } => "grid",
            Self::Anms { .. } => "anms",
            Self::Leakage { .. } => "leakage",
        }
    }

    /// Whether [`Self::select`] needs [`Hints::leakage`].
    pub fn needs_leakage(&self) -> bool {
        matches!(self, Self::Leakage { .. })
    }

    /// Indices (ascending) of the keypoints revealed when keeping `keep` (0–1) of them.
    pub fn select(
        &self,
        features: &FeatureSet,
        keep: f32,
        hints: Hints,
    ) -> Result<Vec<usize>, MitigationError> {
        let n = features.len();
        let budget = budget(n, keep);
        let mut chosen = match self {
            Self::Random => {
                sample(&mut ChaCha8Rng::seed_from_u64(hints.seed), n, budget).into_vec()
            }
            Self::TopResponse => by_response(&features.keypoints, true)[..budget].to_vec(),
            Self::LowestResponse => by_response(&features.keypoints, false)[..budget].to_vec(),
            Self::Grid { cells } => grid(features, (*cells).max(1), budget),
            Self::Anms { robustness } => anms(&features.keypoints, *robustness, budget),
            Self::Leakage { utility_weight } => {
                let scores = hints.leakage.ok_or_else(|| {
                    MitigationError::Strategy(
                        "the leakage strategy needs the attacker's leakage scores of each keypoint"
                            .into(),
                    )
                })?;
                if scores.len() != n {
                    return Err(MitigationError::Strategy(format!(
                        "{} leakage scores for {n} keypoints",
                        scores.len()
                    )));
                }
                least_leaking(&features.keypoints, scores, *utility_weight, budget)
            }
        };
        chosen.sort_unstable();
        Ok(chosen)
    }

    /// The revealed feature set.
    pub fn apply(
        &self,
        features: &FeatureSet,
        keep: f32,
        hints: Hints,
    ) -> Result<FeatureSet, MitigationError> {
        Ok(features.select(&self.select(features, keep, hints)?))
    }
}

/// Number of keypoints kept out of `n` for a keep fraction (rounded, clamped to 0–n).
pub fn budget(n: usize, keep: f32) -> usize {
    ((n as f64 * keep.clamp(0.0, 1.0) as f64).round() as usize).min(n)
}

/// Indices sorted by response (strongest first when `descending`), ties by index.
fn by_response(kps: &[Keypoint], descending: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..kps.len()).collect();
    idx.sort_by(|&a, &b| {
        let o = kps[a].response.total_cmp(&kps[b].response);
        (if descending { o.reverse() } else { o }).then(a.cmp(&b))
    });
    idx
}

fn grid(features: &FeatureSet, cells: u32, budget: usize) -> Vec<usize> {
    let (h, w) = features.image_size;
    let cell_of = |k: &Keypoint| {
        let cx = ((k.x.max(0.0) / w as f32 * cells as f32) as u32).min(cells - 1);
        let cy = ((k.y.max(0.0) / h as f32 * cells as f32) as u32).min(cells - 1);
        (cy * cells + cx) as usize
    };
    // Each bucket's keypoints, strongest first.
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); (cells * cells) as usize];
    for i in by_response(&features.keypoints, true) {
        buckets[cell_of(&features.keypoints[i])].push(i);
    }
    let mut chosen = Vec::with_capacity(budget);
    let mut round = 0;
    while chosen.len() < budget {
        // The round-th best of every bucket that still has one, strongest first.
        let mut layer: Vec<usize> = buckets
            .iter()
            .filter_map(|b| b.get(round).copied())
            .collect();
        layer.sort_by(|&a, &b| {
            features.keypoints[b]
                .response
                .total_cmp(&features.keypoints[a].response)
                .then(a.cmp(&b))
        });
        chosen.extend(layer.into_iter().take(budget - chosen.len()));
        round += 1;
    }
    chosen
}

/// Rank (0 = first) of every index in `order`, scaled to 0–1.
fn scaled_ranks(order: &[usize]) -> Vec<f32> {
    let mut rank = vec![0.0; order.len()];
    let scale = order.len().saturating_sub(1).max(1) as f32;
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r as f32 / scale;
    }
    rank
}

fn least_leaking(
    kps: &[Keypoint],
    leakage: &[f32],
    utility_weight: f32,
    budget: usize,
) -> Vec<usize> {
    let w = utility_weight.clamp(0.0, 1.0);
    let mut by_leak: Vec<usize> = (0..kps.len()).collect();
    by_leak.sort_by(|&a, &b| leakage[a].total_cmp(&leakage[b]).then(a.cmp(&b)));
    let (leak, response) = (
        scaled_ranks(&by_leak),
        scaled_ranks(&by_response(kps, true)),
    );
    let blended: Vec<f32> = (0..kps.len())
        .map(|i| (1.0 - w) * leak[i] + w * response[i])
        .collect();
    let mut idx: Vec<usize> = (0..kps.len()).collect();
    idx.sort_by(|&a, &b| blended[a].total_cmp(&blended[b]).then(a.cmp(&b)));
    idx.truncate(budget);
    idx
}

fn anms(kps: &[Keypoint], robustness: f32, budget: usize) -> Vec<usize> {
    let radius: Vec<f32> = kps
        .iter()
        .map(|k| {
            kps.iter()
                .filter(|o| k.response < robustness * o.response)
                .map(|o| (o.x - k.x).powi(2) + (o.y - k.y).powi(2))
                .fold(f32::INFINITY, f32::min)
        })
        .collect();
    let mut idx: Vec<usize> = (0..kps.len()).collect();
    idx.sort_by(|&a, &b| radius[b].total_cmp(&radius[a]).then(a.cmp(&b)));
    idx.truncate(budget);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;
    use featleak_descriptors::{Descriptors, ExtractorInfo};
    use ndarray::Array2;

    fn set(points: &[(f32, f32, f32)]) -> FeatureSet {
        FeatureSet {
            image_size: (100, 100),
            keypoints: points
                .iter()
                .map(|&(x, y, response)| Keypoint {
                    x,
                    y,
                    size: 2.0,
                    angle: -1.0,
                    response,
                    octave: 0,
                })
                .collect(),
            descriptors: Descriptors::Float(Array2::from_shape_fn((points.len(), 2), |(i, _)| {
                i as f32
            })),
            extractor: ExtractorInfo {
                name: "t".into(),
                config: serde_json::Value::Null,
            },
        }
    }

    #[test]
    fn response_strategies_and_budgets() {
        let f = set(&[
            (1.0, 1.0, 0.5),
            (2.0, 2.0, 0.9),
            (3.0, 3.0, 0.1),
            (4.0, 4.0, 0.7),
        ]);
        assert_eq!(
            Strategy::TopResponse
                .select(&f, 0.5, Hints::seed(0))
                .unwrap(),
            vec![1, 3]
        );
        assert_eq!(
            Strategy::LowestResponse
                .select(&f, 0.5, Hints::seed(0))
                .unwrap(),
            vec![0, 2]
        );
        assert_eq!(
            Strategy::TopResponse
                .select(&f, 1.0, Hints::seed(0))
                .unwrap(),
            vec![0, 1, 2, 3]
        );
        assert!(
            Strategy::TopResponse
                .select(&f, 0.0, Hints::seed(0))
                .unwrap()
                .is_empty()
        );
        assert_eq!(budget(4, 0.3), 1);
        let kept = Strategy::TopResponse
            .apply(&f, 0.5, Hints::seed(0))
            .unwrap();
        let Descriptors::Float(d) = &kept.descriptors else {
            unreachable!()
        };
        assert_eq!(
            d.column(0).to_vec(),
            vec![1.0, 3.0],
            "descriptors follow their keypoints"
        );
    }

    #[test]
    fn random_is_seeded_and_exact_in_size() {
        let pts: Vec<_> = (0..50).map(|i| (i as f32, 0.0, 1.0)).collect();
        let f = set(&pts);
        let a = Strategy::Random.select(&f, 0.3, Hints::seed(7)).unwrap();
        assert_eq!(a.len(), 15);
        assert_eq!(a, Strategy::Random.select(&f, 0.3, Hints::seed(7)).unwrap());
        assert_ne!(a, Strategy::Random.select(&f, 0.3, Hints::seed(8)).unwrap());
        assert!(a.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn spatial_strategies_spread_keypoints() {
        // A strong cluster in one corner (each keypoint suppressed by the previous, stronger
        // by more than 1/0.9) and weak keypoints spread elsewhere.
        let mut pts: Vec<_> = (0..10)
            .map(|i| (2.0 + i as f32 * 0.1, 2.0, 0.8f32.powi(i)))
            .collect();

        pts.extend([(60.0, 10.0, 0.1), (10.0, 70.0, 0.2), (80.0, 80.0, 0.15)]);
        let f = set(&pts);
        // Top response would take 4 keypoints of the cluster; grid and ANMS take one there and spread.
        let spread = |sel: Vec<usize>| sel.iter().filter(|&&i| i >= 10).count();
        assert_eq!(
            spread(
                Strategy::TopResponse
                    .select(&f, 4.0 / 13.0, Hints::seed(0))
                    .unwrap()
            ),
            0
        );
        assert_eq!(
            spread(
                Strategy::Grid { cells: 4 }
                    .select(&f, 4.0 / 13.0, Hints::seed(0))
                    .unwrap()
            ),
            3
        );
        assert_eq!(
            spread(
                Strategy::Anms { robustness: 0.9 }
                    .select(&f, 4.0 / 13.0, Hints::seed(0))
                    .unwrap()
            ),
            3
        );
        assert_eq!(
            Strategy::Grid { cells: 4 }
                .select(&f, 1.0, Hints::seed(0))
                .unwrap()
                .len(),
            13
        );
        assert!(
            Strategy::by_name("nope")
                .unwrap_err()
                .to_string()
                .contains("unknown strategy")
        );
    }

    #[test]
    fn leakage_withholds_the_most_leaking_keypoints() {
        let f = set(&[
            (1.0, 1.0, 0.9),
            (2.0, 2.0, 0.8),
            (3.0, 3.0, 0.7),
            (4.0, 4.0, 0.6),
        ]);
        let leak = [5.0, -1.0, 0.5, 2.0];
        let pure = Strategy::Leakage {
            utility_weight: 0.0,
        };
        let hints = Hints {
            seed: 0,
            leakage: Some(&leak),
        };
        assert_eq!(pure.select(&f, 0.5, hints).unwrap(), vec![1, 2]);
        // Fully utility-weighted it is top-response.
        let utility = Strategy::Leakage {
            utility_weight: 1.0,
        };
        assert_eq!(utility.select(&f, 0.5, hints).unwrap(), vec![0, 1]);
        assert!(
            pure.select(&f, 0.5, Hints::seed(0))
                .unwrap_err()
                .to_string()
                .contains("leakage scores")
        );
        let short = Hints {
            seed: 0,
            leakage: Some(&leak[..2]),
        };
        assert!(
            pure.select(&f, 0.5, short)
                .unwrap_err()
                .to_string()
                .contains("2 leakage scores for 4")
        );
    }
}
