//! Matching two feature sets: mutual nearest neighbours and/or Lowe's ratio test, L2 for float
//! descriptors ([`crate::float_nn`]) and Hamming for binary ones ([`crate::hamming`]).

use crate::{float_nn, hamming};
use featleak_descriptors::Descriptors;
use serde::{Deserialize, Serialize};

/// A correspondence between keypoint `a` of the first set and keypoint `b` of the second.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Match {
    /// Index of the keypoint (descriptor row) in the first set.
    pub a: usize,
    /// Index of the keypoint (descriptor row) in the second set.
    pub b: usize,
    /// L2 distance (float descriptors) or Hamming distance in bits (binary ones).
    pub distance: f32,
}

/// How matches are selected.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MatchConfig {
    /// Keep a match only when each descriptor is the other's nearest neighbour.
    pub mutual: bool,
    /// Lowe's ratio test: keep a match when best < ratio × second-best distance (first set to
    /// second). `None` disables it.
    pub ratio: Option<f32>,
}

impl Default for MatchConfig {
    fn default() -> Self {
        Self {
            mutual: true,
            ratio: None,
        }
    }
}

/// Why two feature sets cannot be matched.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum MatchError {
    /// One set is float and the other binary.
    #[error("descriptors of different kinds cannot be matched ({a} against {b})")]
    KindMismatch {
        /// dtype of the first set (`float32` or `uint8`).
        a: &'static str,
        /// dtype of the second set.
        b: &'static str,
    },
    /// The two sets' descriptors have different lengths.
    #[error("descriptors of different sizes cannot be matched ({a} against {b} values)")]
    DimensionMismatch {
        /// Values per descriptor in the first set (bits for binary ones).
        a: usize,
        /// Values per descriptor in the second set.
        b: usize,
    },
    /// The ratio test's threshold is not in (0, 1].
    #[error("the ratio test's threshold must be in (0, 1], got {0}")]
    InvalidRatio(f32),
}

impl MatchConfig {
    /// Checks the ratio test's threshold is in (0, 1] (a larger one keeps every match, NaN none).
    pub fn validate(&self) -> Result<(), MatchError> {
        match self.ratio {
            Some(r) if !(r > 0.0 && r <= 1.0) => Err(MatchError::InvalidRatio(r)),
            _ => Ok(()),
        }
    }
}

/// Matches descriptors `a` against `b`. Empty sets give no matches.
pub fn match_descriptors(
    a: &Descriptors,
    b: &Descriptors,
    config: &MatchConfig,
) -> Result<Vec<Match>, MatchError> {
    if a.dtype() != b.dtype() {
        return Err(MatchError::KindMismatch {
            a: a.dtype(),
            b: b.dtype(),
        });
    }
    if a.dimension() != b.dimension() {
        return Err(MatchError::DimensionMismatch {
            a: a.dimension(),
            b: b.dimension(),
        });
    }
    if a.is_empty() || b.is_empty() {
        return Ok(Vec::new());
    }
    Ok(match (a, b) {
        (Descriptors::Float(da), Descriptors::Float(db)) => {
            let (rows, cols) = float_nn::nearest_both_ways(da.view(), db.view());
            rows.iter()
                .enumerate()
                .filter(|(i, n)| !config.mutual || cols[n.index].index == *i)
                .filter(|(_, n)| {
                    config
                        .ratio
                        .is_none_or(|r| n.d2.sqrt() < r * n.second_d2.sqrt())
                })
                .map(|(i, n)| Match {
                    a: i,
                    b: n.index,
                    distance: n.d2.sqrt(),
                })
                .collect()
        }
        (Descriptors::Binary(da), Descriptors::Binary(db)) => {
            let found = if config.mutual {
                hamming::mutual_nn(da.view(), db.view(), config.ratio)
            } else {
                hamming::match_nn(da.view(), db.view(), config.ratio)
            };
            found
                .into_iter()
                .map(|m| Match {
                    a: m.query,
                    b: m.train,
                    distance: m.distance as f32,
                })
                .collect()
        }
        _ => unreachable!("dtypes checked above"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ratio_thresholds_outside_0_1_are_refused() {
        for r in [0.0, -0.5, 1.5, f32::NAN, f32::INFINITY] {
            let c = MatchConfig {
                mutual: true,
                ratio: Some(r),
            };
            assert!(
                matches!(c.validate(), Err(MatchError::InvalidRatio(_))),
                "{r}"
            );
        }
        for r in [None, Some(0.8), Some(1.0)] {
            let c = MatchConfig {
                mutual: false,
                ratio: r,
            };
            assert_eq!(c.validate(), Ok(()));
        }
    }

    #[test]
    fn mutual_and_ratio_filters() {
        let a = Descriptors::Float(array![[0.0f32, 0.0], [10.0, 0.0], [5.2, 0.0]]);
        let b = Descriptors::Float(array![[0.1f32, 0.0], [10.0, 0.5], [5.0, 0.1]]);
        let all = match_descriptors(&a, &b, &MatchConfig::default()).unwrap();
        assert_eq!(
            all.iter().map(|m| (m.a, m.b)).collect::<Vec<_>>(),
            [(0, 0), (1, 1), (2, 2)]
        );
        assert!((all[0].distance - 0.1).abs() < 1e-6);
        // Best/second-best distance ratios: 0.1/5.0 = 0.02, 0.5/5.0 = 0.1, 0.22/4.8 = 0.046.
        let strict = MatchConfig {
            mutual: true,
            ratio: Some(0.04),
        };
        let kept = match_descriptors(&a, &b, &strict).unwrap();
        assert_eq!(
            kept.iter().map(|m| (m.a, m.b)).collect::<Vec<_>>(),
            [(0, 0)]
        );
    }

    #[test]
    fn mismatched_or_empty_sets() {
        let f = Descriptors::Float(array![[1.0f32, 2.0]]);
        let b = Descriptors::Binary(array![[1u8]]);
        let e = match_descriptors(&f, &b, &MatchConfig::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "descriptors of different kinds cannot be matched (float32 against uint8)"
        );
        let f3 = Descriptors::Float(array![[1.0f32, 2.0, 3.0]]);
        assert!(matches!(
            match_descriptors(&f, &f3, &MatchConfig::default()),
            Err(MatchError::DimensionMismatch { a: 2, b: 3 })
        ));
        let empty = Descriptors::Float(ndarray::Array2::zeros((0, 2)));
        assert!(
            match_descriptors(&f, &empty, &MatchConfig::default())
                .unwrap()
                .is_empty()
        );
    }
}
