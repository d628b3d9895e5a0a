//! Descriptor-level defences: what leaves the device is changed, not only which keypoints.
//!
//! Each defence has one strength knob, is seeded, and composes with the keypoint-subset
//! [`crate::Strategy`]s (subset first, then the defence). A defended descriptor is stored in the
//! descriptor's own space (same length and kind), so the features stay readable by every tool,
//! an attacker of the plain descriptor can be fine-tuned on them as it is, and matching them is
//! plain L2 (or Hamming) matching — except for lifting, whose subspaces travel beside the points:
//!
//! | name | strength | what is sent | stored as |
//! |---|---|---|---|
//! | `quantise` | bits per dimension (1–16) | each value on 2^bits levels between its descriptor's min and max (two floats) | the dequantised values |
//! | `pca` | dimensions kept | the coefficients on the top principal axes of the defender's own descriptors | mean + axes × coefficients |
//! | `random-projection` | dimensions kept | the coordinates on a random orthonormal basis (seeded) | basis × coordinates |
//! | `binarise` | bits | signs of the descriptor minus the defender's mean on random orthonormal directions (SimHash) | basis × signs / √bits: L2 distances are 2·√(Hamming / bits) |
//! | `noise` | ε per descriptor | float: the unit-L2 descriptor plus Laplace noise of scale 2√D/ε; binary: each bit flipped with probability 1/(1 + e^(ε/bits)) | the noisy descriptor |
//! | `lift-random`, `lift-adversarial` | subspace dimension m | an affine subspace of dimension m through the descriptor (Dusmanu et al. 2021) | its point nearest the origin, and an orthonormal basis |
//! | `coarsen-positions` | cell side in pixels | each keypoint at the centre of its cell | the coarsened keypoints |
//!
//! Utility is measured the way each defence is used: the query image's features are defended,
//! the service's own (map) features are not, but are brought into the defence's space where the
//! defence needs it ([`FittedDefence::server_side`]: projected for `pca` and
//! `random-projection`, hashed for `binarise`); lifted queries are matched by point-to-subspace
//! distance ([`lifting::match_lifted`]).

pub mod lifting;
pub mod linear;
pub mod noise;
pub mod scalar;

use crate::MitigationError;
use featleak_descriptors::{Descriptors, FeatureSet};
use featleak_eval::{Match, MatchConfig, match_descriptors};
use lifting::Subspaces;
use linear::{Hyperplanes, Projection};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// A descriptor-level defence and its strength.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Defence {
    /// Uniform scalar quantisation: `bits` per dimension, between each descriptor's min and max.
    Quantise {
        /// Bits per dimension (1–16).
        bits: u32,
    },
    /// Principal component analysis fitted on the defender's own descriptors.
    Pca {
        /// Principal axes kept.
        dims: usize,
    },
    /// Projection on a random orthonormal basis.
    RandomProjection {
        /// Dimensions kept.
        dims: usize,
    },
    /// Signs on random orthonormal directions through the defender's mean descriptor (SimHash).
    Binarise {
        /// Bits (directions), at most the descriptor's length.
        bits: usize,
    },
    /// ε-local differential privacy per descriptor: Laplace noise (float) or randomised response
    /// (binary).
    Noise {
        /// Privacy budget ε of one descriptor (> 0).
        epsilon: f64,
    },
    /// Affine subspace lifting (Dusmanu et al., CVPR 2021).
    Lift {
        /// Dimension m of each subspace (1 ≤ m < D).
        dims: usize,
        /// Adversarial lifting (directions towards other real descriptors of the defender) rather
        /// than random directions.
        adversarial: bool,
    },
    /// Keypoint positions moved to the centre of their cell of a grid.
    CoarsenPositions {
        /// Cell side in pixels (≥ 1).
        cell: f32,
    },
}

/// Names accepted by [`Defence::by_name`].
pub const DEFENCE_NAMES: &[&str] = &[
    "quantise",
    "pca",
    "random-projection",
    "binarise",
    "noise",
    "lift-random",
    "lift-adversarial",
    "coarsen-positions",
];

impl Defence {
    /// The defence called `name` at `strength` (its knob, see the module's table).
    pub fn by_name(name: &str, strength: f64) -> Result<Self, MitigationError> {
        let bad = |what: &str| {
            MitigationError::Defence(format!(
                "--strength {strength} for {name}: {what} (got {strength})"
            ))
        };
        let whole = |low: f64, high: f64, what: &str| {
            if strength.fract() == 0.0 && (low..=high).contains(&strength) {
                Ok(strength as usize)
            } else {
                Err(bad(what))
            }
        };
        Ok(match name {
            "quantise" => Self::Quantise {
                bits: whole(
                    1.0,
                    16.0,
                    "bits per dimension must be a whole number from 1 to 16",
                )? as u32,
            },
            "pca" => Self::Pca {
                dims: whole(1.0, 1e6, "dimensions kept must be a whole number ≥ 1")?,
            },
            "random-projection" => Self::RandomProjection {
                dims: whole(1.0, 1e6, "dimensions kept must be a whole number ≥ 1")?,
            },
            "binarise" => Self::Binarise {
                bits: whole(1.0, 1e6, "bits must be a whole number ≥ 1")?,
            },
            "noise" => {
                if !(strength > 0.0 && strength.is_finite()) {
                    return Err(bad("ε must be a positive finite number"));
                }
                Self::Noise { epsilon: strength }
            }
            "lift-random" | "lift-adversarial" => Self::Lift {
                dims: whole(
                    1.0,
                    1e6,
                    "the subspace dimension must be a whole number ≥ 1",
                )?,
                adversarial: name == "lift-adversarial",
            },
            "coarsen-positions" => {
                if !(strength >= 1.0 && strength.is_finite()) {
                    return Err(bad("the cell side must be at least 1 pixel"));
                }
                Self::CoarsenPositions {
                    cell: strength as f32,
                }
            }
            _ => {
                return Err(MitigationError::Defence(format!(
                    "unknown defence '{name}' (known: {})",
                    DEFENCE_NAMES.join(", ")
                )));
            }
        })
    }

    /// Short name, as on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Quantise { .. } => "quantise",
            Self::Pca { .. } => "pca",
            Self::RandomProjection { .. } => "random-projection",
            Self::Binarise { .. } => "binarise",
            Self::Noise { .. } => "noise",
            Self::Lift {
                adversarial: false, ..
            } => "lift-random",
            Self::Lift {
                adversarial: true, ..
            } => "lift-adversarial",
            Self::CoarsenPositions { .. } => "coarsen-positions",
        }
    }

    /// The strength knob's value.
    pub fn strength(&self) -> f64 {
        match *self {
            Self::Quantise { bits } => bits.into(),
            Self::Pca { dims } | Self::RandomProjection { dims } | Self::Lift { dims, .. } => {
                dims as f64
            }
            Self::Binarise { bits } => bits as f64,
            Self::Noise { epsilon } => epsilon,
            Self::CoarsenPositions { cell } => cell.into(),
        }
    }

    /// Whether the defence works on binary descriptors (the others need float ones).
    pub fn takes_binary(&self) -> bool {
        matches!(self, Self::Noise { .. } | Self::CoarsenPositions { .. })
    }

    /// Prepares the defence: fits what it learns from the defender's own feature sets `own`
    /// (PCA axes, the mean descriptor, the database of adversarial lifting) and draws its
    /// seeded bases. Every feature set it is then applied to shares them.
    pub fn fit(&self, own: &[&FeatureSet], seed: u64) -> Result<FittedDefence, MitigationError> {
        let dimension = own
            .iter()
            .map(|f| f.descriptors.dimension())
            .find(|&d| d > 0)
            .or_else(|| own.first().map(|f| f.descriptors.dimension()))
            .unwrap_or(0);
        let binary = own
            .iter()
            .any(|f| matches!(f.descriptors, Descriptors::Binary(_)));
        if binary && !self.takes_binary() {
            return Err(MitigationError::Defence(format!(
                "{} applies to float descriptors; these are binary (only noise and \
                 coarsen-positions apply to binary ones)",
                self.name()
            )));
        }
        let below = |dims: usize, what: &str| {
            if dims < dimension {
                Ok(())
            } else {
                Err(MitigationError::Defence(format!(
                    "{}: {what} {dims} must be below the descriptor's length {dimension}",
                    self.name()
                )))
            }
        };
        let mut fitted = FittedDefence {
            defence: *self,
            projection: None,
            hyperplanes: None,
            database: None,
        };
        match *self {
            Self::Pca { dims } => {
                below(dims, "dimensions kept")?;
                fitted.projection = Some(Projection::pca(&float_rows(own), dims)?);
            }
            Self::RandomProjection { dims } => {
                below(dims, "dimensions kept")?;
                fitted.projection = Some(Projection::random(dimension, dims, seed));
            }
            Self::Binarise { bits } => {
                if bits > dimension {
                    return Err(MitigationError::Defence(format!(
                        "binarise: {bits} bits exceed the descriptor's length {dimension}"
                    )));
                }
                fitted.hyperplanes = Some(Hyperplanes::fit(&float_rows(own), bits, seed)?);
            }
            Self::Lift { dims, adversarial } => {
                below(dims, "the subspace dimension")?;
                if adversarial {
                    let database = float_rows(own);
                    if database.nrows() < 2 * dims {
                        return Err(MitigationError::Defence(format!(
                            "lift-adversarial: {} descriptors are too few to lift to {dims} \
                             dimensions (need at least {})",
                            database.nrows(),
                            2 * dims
                        )));
                    }
                    fitted.database = Some(database);
                }
            }
            Self::Quantise { .. } | Self::Noise { .. } | Self::CoarsenPositions { .. } => {}
        }
        Ok(fitted)
    }
}

/// Every float descriptor of `sets`, stacked.
fn float_rows(sets: &[&FeatureSet]) -> Array2<f32> {
    let views: Vec<_> = sets
        .iter()
        .filter_map(|f| match &f.descriptors {
            Descriptors::Float(d) => Some(d.view()),
            Descriptors::Binary(_) => None,
        })
        .collect();
    if views.is_empty() {
        return Array2::zeros((0, 0));
    }
    ndarray::concatenate(ndarray::Axis(0), &views).expect("descriptors of one length")
}

/// A defence ready to apply: its fitted axes, bases and database.
#[derive(Clone, Debug)]
pub struct FittedDefence {
    /// The defence.
    pub defence: Defence,
    projection: Option<Projection>,
    hyperplanes: Option<Hyperplanes>,
    database: Option<Array2<f32>>,
}

/// Defended features: the stored points, and each one's subspace when lifted.
#[derive(Clone, Debug)]
pub struct Defended {
    /// What is sent (lifted: each subspace's point nearest the origin).
    pub features: FeatureSet,
    /// The subspaces of a lifted set.
    pub subspaces: Option<Subspaces>,
}

impl FittedDefence {
    /// Defends `features` (one image's); `seed` drives its random choices.
    pub fn apply(&self, features: &FeatureSet, seed: u64) -> Result<Defended, MitigationError> {
        let mut out = features.clone();
        let mut subspaces = None;
        let float = |what: &str| match &features.descriptors {
            Descriptors::Float(d) => Ok(d),
            Descriptors::Binary(_) => Err(MitigationError::Defence(format!(
                "{what} applies to float descriptors; these are binary"
            ))),
        };
        let name = self.defence.name();
        match self.defence {
            Defence::Quantise { bits } => {
                out.descriptors = Descriptors::Float(scalar::quantise(float(name)?, bits));
            }
            Defence::Pca { .. } | Defence::RandomProjection { .. } => {
                let p = self.projection.as_ref().expect("fitted");
                out.descriptors = Descriptors::Float(p.project(float(name)?));
            }
            Defence::Binarise { .. } => {
                let h = self.hyperplanes.as_ref().expect("fitted");
                out.descriptors = Descriptors::Float(h.hash(float(name)?));
            }
            Defence::Noise { epsilon } => {
                out.descriptors = match &features.descriptors {
                    Descriptors::Float(d) => Descriptors::Float(noise::laplace(d, epsilon, seed)),
                    Descriptors::Binary(d) => {
                        Descriptors::Binary(noise::randomised_response(d, epsilon, seed))
                    }
                };
            }
            Defence::Lift { dims, .. } => {
                let s = Subspaces::lift(float(name)?, dims, self.database.as_ref(), seed)?;
                out.descriptors = Descriptors::Float(s.points.clone());
                subspaces = Some(s);
            }
            Defence::CoarsenPositions { cell } => {
                scalar::coarsen_positions(&mut out.keypoints, cell);
            }
        }
        Ok(Defended {
            features: out,
            subspaces,
        })
    }

    /// The service's own (undefended) features brought into the defence's space, to be matched
    /// against defended queries: projected (`pca`, `random-projection`), hashed (`binarise`) or
    /// scaled to unit length (`noise` on float descriptors, which releases unit vectors);
    /// unchanged for the other defences.
    pub fn server_side(&self, features: &FeatureSet) -> FeatureSet {
        let mut out = features.clone();
        if let Descriptors::Float(d) = &features.descriptors {
            if let Some(p) = &self.projection {
                out.descriptors = Descriptors::Float(p.project(d));
            } else if let Some(h) = &self.hyperplanes {
                out.descriptors = Descriptors::Float(h.hash(d));
            } else if let Defence::Noise { .. } = self.defence {
                out.descriptors = Descriptors::Float(noise::unit_rows(d));
            }
        }
        out
    }

    /// Matches a defended query against the service's own features `map` the way the defence is
    /// used: point-to-subspace distance for lifted queries, else the descriptors' usual distance
    /// after [`Self::server_side`].
    pub fn match_query(
        &self,
        query: &Defended,
        map: &FeatureSet,
        config: &MatchConfig,
    ) -> Result<Vec<Match>, MitigationError> {
        let map = self.server_side(map);
        Ok(match (&query.subspaces, &map.descriptors) {
            (Some(s), Descriptors::Float(points)) => lifting::match_lifted(s, points, config)?,
            _ => match_descriptors(&query.features.descriptors, &map.descriptors, config)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use featleak_descriptors::{ExtractorInfo, Keypoint};

    /// A feature set with these descriptor rows, keypoint i at (10·i + 0.3, 20.7).
    fn set(descriptors: Descriptors) -> FeatureSet {
        let n = descriptors.len();
        FeatureSet {
            image_size: (100, 100),
            keypoints: (0..n)
                .map(|i| Keypoint {
                    x: 10.0 * i as f32 + 0.3,
                    y: 20.7,
                    size: 2.0,
                    angle: -1.0,
                    response: 1.0,
                    octave: 0,
                })
                .collect(),
            descriptors,
            extractor: ExtractorInfo {
                name: "t".into(),
                config: serde_json::Value::Null,
            },
        }
    }

    /// Six well-separated 16-D descriptors (SIFT-like: non-negative).
    fn rows() -> Array2<f32> {
        pseudo_random(6, 0)
    }

    /// `n` non-negative 16-D rows of pseudo-random values 0–99 (a multiplicative hash).
    fn pseudo_random(n: usize, salt: usize) -> Array2<f32> {
        Array2::from_shape_fn((n, 16), |(i, j)| {
            (((((salt + i) * 16 + j) as u64 * 2_654_435_761) >> 7) % 100) as f32
        })
    }

    #[test]
    fn every_defence_still_matches_a_query_to_its_own_map_at_mild_strength() {
        // The service's map holds the query's own descriptors in reverse order: matched the way
        // each defence is used, every query descriptor finds its own.
        let query = set(Descriptors::Float(rows()));
        let reversed = rows().slice(ndarray::s![..;-1, ..]).to_owned();
        let map = set(Descriptors::Float(reversed));
        let other = set(Descriptors::Float(pseudo_random(6, 100)));
        let config = MatchConfig::default();
        for (name, strength) in [
            ("quantise", 6.0),
            ("pca", 5.0),
            ("random-projection", 12.0),
            ("binarise", 16.0),
            ("noise", 1e6),
            ("lift-random", 2.0),
            ("lift-adversarial", 2.0),
            ("coarsen-positions", 8.0),
        ] {
            let defence = Defence::by_name(name, strength).unwrap();
            // Fitted on the defender's images: this one and another (adversarial lifting draws
            // from the other's descriptors only).
            let fitted = defence.fit(&[&query, &other], 1).unwrap();
            let defended = fitted.apply(&query, 2).unwrap();
            assert_eq!(defended.features.len(), 6, "{name}");
            let found: Vec<_> = fitted
                .match_query(&defended, &map, &config)
                .unwrap()
                .iter()
                .map(|m| (m.a, m.b))
                .collect();
            assert_eq!(
                found,
                (0..6).map(|i| (i, 5 - i)).collect::<Vec<_>>(),
                "{name}"
            );
            // Seeded: the same seeds give the same features.
            let again = defence
                .fit(&[&query, &other], 1)
                .unwrap()
                .apply(&query, 2)
                .unwrap();
            assert_eq!(
                again.features.descriptors, defended.features.descriptors,
                "{name}"
            );
        }
    }

    #[test]
    fn defences_change_what_they_say_and_nothing_else() {
        let query = set(Descriptors::Float(rows()));
        let apply = |name: &str, strength: f64| {
            let fitted = Defence::by_name(name, strength)
                .unwrap()
                .fit(&[&query], 0)
                .unwrap();
            fitted.apply(&query, 0).unwrap()
        };
        // Coarsening moves keypoints, not descriptors: x = 0.3, 10.3, … on 8-px cells.
        let coarse = apply("coarsen-positions", 8.0);
        assert_eq!(coarse.features.descriptors, query.descriptors);
        let xs: Vec<f32> = coarse.features.keypoints.iter().map(|k| k.x).collect();
        assert_eq!(xs, [3.5, 11.5, 19.5, 27.5, 43.5, 51.5]);
        assert!(coarse.features.keypoints.iter().all(|k| k.y == 19.5));
        // The others keep keypoints and change descriptors; only lifting sends subspaces.
        for (name, strength) in [
            ("quantise", 1.0),
            ("pca", 2.0),
            ("noise", 1.0),
            ("lift-random", 3.0),
        ] {
            let d = apply(name, strength);
            assert_eq!(d.features.keypoints, query.keypoints, "{name}");
            assert_ne!(d.features.descriptors, query.descriptors, "{name}");
            assert_eq!(d.subspaces.is_some(), name == "lift-random", "{name}");
        }
    }

    #[test]
    fn binary_descriptors_take_only_noise_and_coarsening() {
        let bits = Array2::from_shape_fn((4, 2), |(i, j)| (17 * i + 3 * j) as u8);
        let query = set(Descriptors::Binary(bits));
        for name in [
            "quantise",
            "pca",
            "random-projection",
            "binarise",
            "lift-random",
        ] {
            let e = Defence::by_name(name, 2.0)
                .unwrap()
                .fit(&[&query], 0)
                .unwrap_err();
            assert!(e.to_string().contains("binary"), "{name}: {e}");
        }
        let noisy = Defence::by_name("noise", 4.0)
            .unwrap()
            .fit(&[&query], 0)
            .unwrap()
            .apply(&query, 0)
            .unwrap();
        assert!(matches!(noisy.features.descriptors, Descriptors::Binary(_)));
        // A subspace or projection as large as the descriptor is refused.
        let float = set(Descriptors::Float(rows()));
        let e = Defence::by_name("pca", 16.0)
            .unwrap()
            .fit(&[&float], 0)
            .unwrap_err();
        assert!(
            e.to_string().contains("below the descriptor's length 16"),
            "{e}"
        );
    }

    #[test]
    fn names_and_strengths_round_trip_and_bad_ones_are_refused() {
        for (name, strength) in [
            ("quantise", 4.0),
            ("pca", 32.0),
            ("random-projection", 16.0),
            ("binarise", 64.0),
            ("noise", 2.5),
            ("lift-random", 8.0),
            ("lift-adversarial", 2.0),
            ("coarsen-positions", 4.0),
        ] {
            let d = Defence::by_name(name, strength).unwrap();
            assert_eq!((d.name(), d.strength()), (name, strength));
        }
        for (name, strength, needle) in [
            ("quantise", 0.0, "1 to 16"),
            ("quantise", 2.5, "whole number"),
            ("pca", -1.0, "≥ 1"),
            ("noise", 0.0, "positive"),
            ("noise", f64::NAN, "positive"),
            ("noise", f64::INFINITY, "positive"),
            ("coarsen-positions", 0.5, "at least 1 pixel"),
            ("blur", 1.0, "unknown defence 'blur'"),
        ] {
            let e = Defence::by_name(name, strength).unwrap_err().to_string();
            assert!(e.contains(needle), "{name} {strength}: {e}");
        }
    }
}
