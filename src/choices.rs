//! The named choices of the command line: clap lists them in `--help` and refuses anything
//! else with the list of possible values. The lists themselves live in the libraries.

use clap::builder::PossibleValuesParser;
use featleak_descriptors::{DESCRIPTOR_NAMES, DETECTOR_NAMES};
use featleak_mitigation::STRATEGY_NAMES;
use std::path::PathBuf;

/// `--descriptor`: the descriptors the libraries know, listed by clap.
pub fn descriptor() -> PossibleValuesParser {
    PossibleValuesParser::new(DESCRIPTOR_NAMES)
}

/// `--detector`: the detectors the libraries know, listed by clap.
pub fn detector() -> PossibleValuesParser {
    PossibleValuesParser::new(DETECTOR_NAMES)
}

/// `--gray`: how an image becomes grey for extraction, listed by clap.
pub fn gray() -> PossibleValuesParser {
    PossibleValuesParser::new(featleak_datasets::GrayConversion::NAMES)
}

/// `--strategy`: the keypoint-subset strategies, listed by clap.
pub fn strategy() -> PossibleValuesParser {
    PossibleValuesParser::new(STRATEGY_NAMES)
}

/// `--defence`: the descriptor-level defences, listed by clap.
pub fn defence() -> PossibleValuesParser {
    PossibleValuesParser::new(featleak_mitigation::DEFENCE_NAMES)
}

/// `--input`: how the attacker's first layer reads the keypoints, listed by clap.
pub fn input_encoding() -> PossibleValuesParser {
    PossibleValuesParser::new(featleak_attack::model::InputEncoding::NAMES)
}

/// An attacker (`--run`, `--init`): a run folder or `zoo:NAME`.
pub fn attacker(text: &str) -> Result<featleak_attack::AttackerSource, String> {
    featleak_attack::AttackerSource::parse(text).map_err(|e| e.to_string())
}

/// A threat model (`--threat`): a preset, or a TOML file holding a whole one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Threat {
    /// A built-in threat model by name.
    Preset(&'static str),
    /// A TOML file.
    File(PathBuf),
}

impl std::str::FromStr for Threat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(p) = featleak_attack::PRESETS.iter().find(|p| **p == s) {
            return Ok(Self::Preset(p));
        }
        let path = PathBuf::from(s);
        if path.is_file() {
            return Ok(Self::File(path));
        }
        Err(format!(
            "'{s}' is neither a preset ({}) nor a threat-model TOML file",
            featleak_attack::PRESETS.join(", ")
        ))
    }
}

impl std::fmt::Display for Threat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Preset(p) => f.write_str(p),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}
