//! Threat models: what the adversary (the localization service) receives for every image, and
//! what it is assumed to know when training its inversion network.

use crate::AttackError;
use featleak_datasets::FileError;
use featleak_descriptors::{ExtractorConfig, FeatureSet, Keypoint, SparseMapConfig};
use rand::Rng;
use rand::seq::index::sample;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// How precisely keypoint positions are revealed.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Position {
    /// Sub-pixel positions as extracted.
    Exact,
    /// Positions snapped to the centre of a grid cell of `cell` pixels (in the victim image).
    Grid {
        /// Cell side in pixels.
        cell: u32,
    },
}

/// What the adversary receives per keypoint.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reveals {
    /// Descriptors (otherwise only where keypoints are).
    pub descriptors: bool,
    /// How precisely positions are revealed.
    pub position: Position,
    /// Keypoint scale (size).
    pub scale: bool,
    /// Keypoint orientation.
    pub orientation: bool,
}

/// Share of an image's keypoints revealed: fixed when `min == max`, otherwise drawn uniformly per
/// image (InvSfM trains on random shares so one attacker handles any budget).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Share {
    /// Smallest share (0–1].
    pub min: f32,
    /// Largest share (0–1].
    pub max: f32,
}

impl Share {
    /// Always `fraction`.
    pub fn fixed(fraction: f32) -> Self {
        Self {
            min: fraction,
            max: fraction,
        }
    }

    /// Whether `0 < min ≤ max ≤ 1` (a NaN is not).
    pub fn is_valid(&self) -> bool {
        0.0 < self.min && self.min <= self.max && self.max <= 1.0
    }

    /// `F` (fixed) or `MIN..MAX` (drawn per image), each a fraction in (0, 1].
    pub fn parse(text: &str) -> Result<Self, String> {
        let number = |t: &str| {
            t.trim()
                .parse::<f32>()
                .map_err(|_| format!("'{t}' is not a number"))
        };
        let share = match text.split_once("..") {
            Some((min, max)) => Self {
                min: number(min)?,
                max: number(max)?,
            },
            None => Self::fixed(number(text)?),
        };
        if !share.is_valid() {
            return Err(format!(
                "'{text}' is not a share: give F or MIN..MAX with 0 < MIN ≤ MAX ≤ 1"
            ));
        }
        Ok(share)
    }
}

impl std::fmt::Display for Share {
    /// What [`Share::parse`] reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.min == self.max {
            write!(f, "{}", self.min)
        } else {
            write!(f, "{}..{}", self.min, self.max)
        }
    }
}

/// A complete threat model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThreatModel {
    /// Preset name or a user's label.
    pub name: String,
    /// What is revealed per keypoint.
    pub reveals: Reveals,
    /// Share of keypoints revealed when the attacker trains.
    pub train_share: Share,
    /// Share of keypoints revealed at attack time.
    pub attack_share: Share,
    /// Descriptor, detector and keypoint budget of the victim's extractor.
    pub extractor: ExtractorConfig,
    /// Side of the square the victim image is reconstructed at (pixels).
    pub resolution: u32,
    /// Side of the square the features are extracted at (≥ `resolution`): the victim's camera
    /// image is larger than the reconstruction, so features come from more pixels.
    pub feature_resolution: u32,
}

/// Names of the built-in threat models.
pub const PRESETS: &[&str] = &["desc+pos", "desc+pos+geom", "pos-only"];

impl ThreatModel {
    /// Whether an attacker trained under `self` attacks what one under `other` does: the same
    /// extractor, revealing the same things (shares, resolutions and the grey conversion may
    /// differ: the conversions differ by rounding, so their features are of one kind).
    pub fn attacks_like(&self, other: &Self) -> bool {
        let gray_as_other = ExtractorConfig {
            gray: other.extractor.gray,
            ..self.extractor.clone()
        };
        gray_as_other == other.extractor && self.reveals == other.reveals
    }

    /// A built-in threat model for `descriptor` on its usual detector (DoG for `sift` and
    /// `sosnet`, Harris for `freak`):
    /// `desc+pos` (descriptors at exact positions, the seed paper's default), `desc+pos+geom`
    /// (also scale and orientation) or `pos-only` (positions alone: the lower bound an attacker
    /// always has).
    pub fn preset(name: &str, descriptor: &str) -> Result<Self, AttackError> {
        let extractor = ExtractorConfig::with_default_detector(descriptor).map_err(|e| {
            AttackError::Threat {
                file: None,
                problem: e.to_string(),
            }
        })?;
        let reveals = match name {
            "desc+pos" => Reveals {
                descriptors: true,
                position: Position::Exact,
                scale: false,
                orientation: false,
            },
            "desc+pos+geom" => Reveals {
                descriptors: true,
                position: Position::Exact,
                scale: true,
                orientation: true,
            },
            "pos-only" => Reveals {
                descriptors: false,
                position: Position::Exact,
                scale: false,
                orientation: false,
            },
            _ => {
                return Err(AttackError::Threat {
                    file: None,
                    problem: format!(
                        "unknown threat model '{name}' (presets: {})",
                        PRESETS.join(", ")
                    ),
                });
            }
        };
        Ok(Self {
            name: name.to_string(),
            reveals,
            train_share: Share {
                min: 0.05,
                max: 1.0,
            },
            attack_share: Share::fixed(1.0),
            extractor,
            resolution: 128,
            feature_resolution: 256,
        })
    }

    /// A preset name, or a TOML file holding a whole threat model.
    pub fn resolve(preset_or_file: &str, descriptor: &str) -> Result<Self, AttackError> {
        let path = Path::new(preset_or_file);
        if PRESETS.contains(&preset_or_file) || !path.exists() {
            return Self::preset(preset_or_file, descriptor);
        }
        let text = std::fs::read_to_string(path).map_err(FileError::io("read", path))?;
        let in_file = |problem: String| AttackError::Threat {
            file: Some(path.to_path_buf()),
            problem,
        };
        let model: Self =
            toml::from_str(&text).map_err(|e| in_file(format!("not a threat model: {e}")))?;
        model.validate().map_err(|e| match e {
            AttackError::Threat { problem, .. } => in_file(problem),
            other => other,
        })?;
        Ok(model)
    }

    /// Checks the numbers make sense.
    pub fn validate(&self) -> Result<(), AttackError> {
        let invalid = |problem: String| {
            Err(AttackError::Threat {
                file: None,
                problem,
            })
        };
        for (what, s) in [
            ("train_share", self.train_share),
            ("attack_share", self.attack_share),
        ] {
            if !s.is_valid() {
                return invalid(format!(
                    "{what} must satisfy 0 < min ≤ max ≤ 1 (got {} – {})",
                    s.min, s.max
                ));
            }
        }
        if self.resolution < 16 || !self.resolution.is_multiple_of(16) {
            return invalid(format!(
                "resolution must be a multiple of 16, at least 16 (got {})",
                self.resolution
            ));
        }
        if self.feature_resolution < self.resolution {
            return invalid(format!(
                "feature_resolution ({}) must be at least resolution ({})",
                self.feature_resolution, self.resolution
            ));
        }
        if let Position::Grid { cell: 0 } = self.reveals.position {
            return invalid("grid cell must be at least 1 pixel".into());
        }
        Ok(())
    }

    /// Channels of the sparse feature map the attacker sees.
    pub fn sparse_map(&self) -> SparseMapConfig {
        SparseMapConfig {
            descriptors: self.reveals.descriptors,
            l2_normalize: true,
            presence: true,
            log_scale: self.reveals.scale,
            orientation: self.reveals.orientation,
        }
    }

    /// What the adversary receives of `features` (already at the victim resolution): a random
    /// `share` of the keypoints (drawn with `rng`), positions quantised as the model says,
    /// unrevealed geometry removed.
    pub fn reveal(&self, features: &FeatureSet, share: Share, rng: &mut ChaCha8Rng) -> FeatureSet {
        let fraction = if share.min == share.max {
            share.min
        } else {
            rng.random_range(share.min..=share.max)
        };
        let n = features.len();
        let keep = ((n as f32 * fraction).round() as usize).min(n);
        let mut indices = sample(rng, n, keep).into_vec();
        indices.sort_unstable();
        let mut out = features.select(&indices);
        for kp in &mut out.keypoints {
            *kp = self.reveal_keypoint(kp);
        }
        out
    }

    fn reveal_keypoint(&self, kp: &Keypoint) -> Keypoint {
        let r = &self.reveals;
        let (x, y) = match r.position {
            Position::Exact => (kp.x, kp.y),
            Position::Grid { cell } => {
                let c = cell as f32;
                let snap = |v: f32| ((v + 0.5) / c).floor() * c + (c - 1.0) / 2.0;
                (snap(kp.x), snap(kp.y))
            }
        };
        Keypoint {
            x,
            y,
            size: if r.scale { kp.size } else { 1.0 },
            angle: if r.orientation { kp.angle } else { -1.0 },
            ..*kp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use featleak_datasets::schedule::rng;
    use featleak_descriptors::{Descriptors, ExtractorInfo};
    use ndarray::Array2;

    fn features(n: usize) -> FeatureSet {
        FeatureSet {
            image_size: (64, 64),
            keypoints: (0..n)
                .map(|i| Keypoint {
                    x: i as f32 * 0.9 + 0.3,
                    y: 5.7,
                    size: 3.0,
                    angle: 45.0,
                    response: 1.0,
                    octave: 0,
                })
                .collect(),
            descriptors: Descriptors::Float(Array2::from_shape_fn((n, 4), |(i, j)| {
                (i * 4 + j) as f32
            })),
            extractor: ExtractorInfo {
                name: "t".into(),
                config: serde_json::Value::Null,
            },
        }
    }

    #[test]
    fn presets_round_trip_through_toml_and_validate() {
        for name in PRESETS {
            let m = ThreatModel::preset(name, "sift").unwrap();
            m.validate().unwrap();
            let text = toml::to_string(&m).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("t.toml");
            std::fs::write(&path, &text).unwrap();
            assert_eq!(
                ThreatModel::resolve(path.to_str().unwrap(), "ignored").unwrap(),
                m
            );
        }
        assert!(
            ThreatModel::preset("everything", "sift")
                .unwrap_err()
                .to_string()
                .contains("unknown threat model")
        );
        let mut bad = ThreatModel::preset("desc+pos", "freak").unwrap();
        bad.train_share = Share { min: 0.0, max: 1.0 };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("train_share")
        );
        assert_eq!(
            ThreatModel::preset("pos-only", "sift")
                .unwrap()
                .sparse_map()
                .channels(128),
            1
        );
        assert_eq!(
            ThreatModel::preset("desc+pos+geom", "sift")
                .unwrap()
                .sparse_map()
                .channels(128),
            132
        );
    }

    #[test]
    fn shares_parse_print_and_refuse_what_is_not_one() {
        assert_eq!(Share::parse("1"), Ok(Share::fixed(1.0)));
        let range = Share::parse("0.05..1").unwrap();
        assert_eq!((range.min, range.max), (0.05, 1.0));
        for share in [Share::fixed(0.5), range] {
            assert_eq!(Share::parse(&share.to_string()), Ok(share));
        }
        for bad in ["0", "1.5", "0.8..0.2", "half", "0.1..", "-0.1..1"] {
            assert!(Share::parse(bad).is_err(), "{bad} parsed");
        }
    }

    #[test]
    fn threat_models_without_a_grey_conversion_read_as_cvtcolor() {
        use featleak_datasets::GrayConversion;
        // The bundled card predates `extractor.gray`: it reads as the default conversion, so
        // zoo:sift still attacks the desc+pos preset.
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("zoo/sift.json");
        let card: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let mut old = card["threat"].clone();
        old["extractor"].as_object_mut().unwrap().remove("gray");
        let threat: ThreatModel = serde_json::from_value(old).unwrap();
        let preset = ThreatModel::preset("desc+pos", "sift").unwrap();
        assert_eq!(threat.extractor, preset.extractor);
        assert!(threat.attacks_like(&preset));
        let as_is: ThreatModel = serde_json::from_value(card["threat"].clone()).unwrap();
        assert_eq!(as_is.extractor.gray, GrayConversion::CvtColor);

        // A threat-model TOML file chooses it in [extractor]; it is part of what is attacked.
        let mut hloc = preset.clone();
        hloc.extractor.gray = GrayConversion::ImreadGrayscale;
        let text = toml::to_string(&hloc).unwrap();
        assert!(text.contains("gray = \"imread-grayscale\""), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hloc.toml");
        std::fs::write(&file, &text).unwrap();
        assert_eq!(
            ThreatModel::resolve(file.to_str().unwrap(), "ignored").unwrap(),
            hloc
        );
        // Another grey conversion of the same extractor is attacked alike (zoo:sift may start
        // an hloc-style run); another extractor is not.
        assert!(hloc.attacks_like(&preset) && preset.attacks_like(&hloc));
        let mut other = hloc.clone();
        other.extractor.max_keypoints = 500;
        assert!(!other.attacks_like(&preset));
    }

    #[test]
    fn reveal_subsets_quantises_and_hides_geometry() {
        let mut m = ThreatModel::preset("desc+pos", "sift").unwrap();
        let f = features(40);
        let mut r = rng(1, 0);
        let half = m.reveal(&f, Share::fixed(0.5), &mut r);
        assert_eq!(half.len(), 20);
        assert!(
            half.keypoints
                .iter()
                .all(|k| k.angle == -1.0 && k.size == 1.0)
        );
        assert_eq!(
            half,
            m.reveal(&f, Share::fixed(0.5), &mut rng(1, 0)),
            "seeded"
        );
        // Descriptor rows follow their keypoints.
        let Descriptors::Float(d) = &half.descriptors else {
            unreachable!()
        };
        for (k, row) in half.keypoints.iter().zip(d.rows()) {
            let i = ((k.x - 0.3) / 0.9).round() as usize;
            assert_eq!(row[0], (i * 4) as f32);
        }
        m.reveals.position = Position::Grid { cell: 4 };
        m.reveals.orientation = true;
        let q = m.reveal(&f, Share::fixed(1.0), &mut r);
        assert!(
            q.keypoints
                .iter()
                .all(|k| (k.x - 1.5) % 4.0 == 0.0 && k.y == 5.5 && k.angle == 45.0)
        );
    }
}
