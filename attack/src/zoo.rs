//! Attackers: a run folder written by `featleak attack train`, or one of the pretrained attackers
//! bundled in the binary (the zoo, `zoo:NAME`), each with its model card (`attack/zoo/`).
//!
//! A zoo entry is a card (`NAME.json`: the threat model and network it was trained for, how it
//! was trained and what it scores on held-out photos) and its weights (`NAME.bpk`, burn's record
//! of the network). Both are compiled in, so the zoo works offline.

use crate::AttackError;
use crate::data::FeatureCache;
use crate::model::{UNet, UNetConfig};
use crate::run::{AttackRun, RunConfig};
use crate::threat::ThreatModel;
use crate::training::load_model_bytes;
use featleak_datasets::FileError;
use featleak_train::RunFolder;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A bundled attacker: its name, card and weights.
#[derive(Debug, PartialEq, Eq)]
pub struct ZooEntry {
    /// The name after `zoo:`.
    pub name: &'static str,
    /// Its card, JSON ([`ZooCard`]).
    card: &'static str,
    /// Its weights (burn record bytes).
    weights: &'static [u8],
}

/// The entry `NAME` with its card `zoo/NAME.json` and weights `zoo/NAME.bpk`, compiled in.
macro_rules! zoo_entry {
    ($name:literal) => {
        ZooEntry {
            name: $name,
            card: include_str!(concat!("../zoo/", $name, ".json")),
            weights: include_bytes!(concat!("../zoo/", $name, ".bpk")),
        }
    };
}

/// The bundled attackers.
pub const ZOO: &[ZooEntry] = &[
    zoo_entry!("sift"),
    zoo_entry!("pos-only"),
    zoo_entry!("freak"),
    zoo_entry!("sosnet"),
    zoo_entry!("xfeat"),
    zoo_entry!("disk"),
    zoo_entry!("aliked"),
];

/// How a bundled attacker was trained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZooTraining {
    /// The training images and where they come from.
    pub data: String,
    /// Their terms of use.
    pub terms: String,
    /// Optimiser steps.
    pub steps: u64,
    /// Images per step.
    pub batch_size: usize,
    /// Wall-clock training time (minutes).
    pub minutes: f64,
    /// The machine it trained on.
    pub device: String,
    /// The run's seed.
    pub seed: u64,
}

/// Scores on photos the attacker never trained on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeldOutScores {
    /// Which photos.
    pub images: String,
    /// How many.
    pub count: usize,
    /// Mean PSNR (dB) of the reconstructions.
    pub psnr: f64,
    /// Mean SSIM of the reconstructions.
    pub ssim: f64,
    /// Mean PSNR of each photo's mean colour (the baseline an attacker must beat).
    pub mean_colour_psnr: f64,
    /// Mean SSIM of each photo's mean colour.
    pub mean_colour_ssim: f64,
}

/// A bundled attacker's card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZooCard {
    /// What the victim reveals and at which resolutions.
    pub threat: ThreatModel,
    /// The network the weights belong to.
    pub network: UNetConfig,
    /// How it was trained.
    pub training: ZooTraining,
    /// How well it reconstructs held-out photos.
    pub held_out: HeldOutScores,
}

/// The bundled attacker named `name` if it attacks what `threat` describes (same extractor,
/// same revealed information), so that a run under `threat` can start from it.
pub fn entry_for(
    name: &str,
    threat: &ThreatModel,
) -> Result<Option<&'static ZooEntry>, AttackError> {
    let Some(entry) = ZOO.iter().find(|e| e.name == name) else {
        return Ok(None);
    };
    Ok(entry.card()?.threat.attacks_like(threat).then_some(entry))
}

impl ZooEntry {
    /// The entry's card.
    pub fn card(&self) -> Result<ZooCard, AttackError> {
        serde_json::from_str(self.card).map_err(|e| AttackError::Zoo {
            name: self.name.into(),
            problem: format!("its card is not readable ({e})"),
        })
    }
}

/// Where an attacker comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum AttackerSource {
    /// A run folder written by `featleak attack train` (its latest checkpoint).
    Run(PathBuf),
    /// A bundled attacker.
    Zoo(&'static ZooEntry),
}

/// A trained attacker: what it attacks and its network.
pub struct Attacker {
    /// The threat model it was trained under (resolutions included).
    pub threat: ThreatModel,
    /// Its architecture.
    pub network: UNetConfig,
    /// Its weights.
    pub model: UNet,
}

impl AttackerSource {
    /// `zoo:NAME` for a bundled attacker, anything else a run folder.
    pub fn parse(text: &str) -> Result<Self, AttackError> {
        let Some(name) = text.strip_prefix("zoo:") else {
            return Ok(Self::Run(PathBuf::from(text)));
        };
        ZOO.iter()
            .find(|e| e.name == name)
            .map(Self::Zoo)
            .ok_or_else(|| AttackError::Zoo {
                name: name.into(),
                problem: format!(
                    "no such bundled attacker (the zoo has: {})",
                    ZOO.iter().map(|e| e.name).collect::<Vec<_>>().join(", ")
                ),
            })
    }

    /// The threat model and network of the attacker, without loading its weights.
    pub fn describe(&self) -> Result<(ThreatModel, UNetConfig), AttackError> {
        match self {
            Self::Run(dir) => {
                let config = RunConfig::load(&RunFolder::new(dir))?;
                Ok((config.threat, config.training.network))
            }
            Self::Zoo(entry) => {
                let card = entry.card()?;
                Ok((card.threat, card.network))
            }
        }
    }

    /// The attacker with its weights on `device`; weights that do not belong to the recorded
    /// network are refused, naming the file or zoo entry.
    pub fn load(&self, device: &burn::prelude::Device) -> Result<Attacker, AttackError> {
        let (threat, network) = self.describe()?;
        let model = match self {
            Self::Run(dir) => {
                let path = RunFolder::new(dir).model();
                let bytes = std::fs::read(&path).map_err(FileError::io("read", &path))?;
                load_model_bytes(bytes, &network, device).map_err(|problem| {
                    AttackError::Checkpoint {
                        path: path.clone(),
                        problem,
                    }
                })?
            }
            Self::Zoo(entry) => load_model_bytes(entry.weights.to_vec(), &network, device)
                .map_err(|problem| AttackError::Zoo {
                    name: entry.name.into(),
                    problem,
                })?,
        };
        Ok(Attacker {
            threat,
            network,
            model,
        })
    }

    /// Where features extracted for this attacker are cached: the run folder's cache; none for
    /// a bundled attacker (nothing is written beside the binary).
    pub fn feature_cache(&self) -> FeatureCache {
        match self {
            Self::Run(dir) => FeatureCache::new(RunFolder::new(dir).cache()),
            Self::Zoo(_) => FeatureCache::none(),
        }
    }
}

impl std::fmt::Display for AttackerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Run(dir) => write!(f, "{}", dir.display()),
            Self::Zoo(entry) => write!(f, "zoo:{}", entry.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue #17: the bundled weights stay within 40 MB in all, so the binary stays small.
    #[test]
    fn the_zoo_stays_within_40_mb() {
        let bytes: usize = ZOO.iter().map(|e| e.weights.len()).sum();
        assert!(
            bytes <= 40_000_000,
            "the zoo holds {bytes} bytes of weights"
        );
    }
}
