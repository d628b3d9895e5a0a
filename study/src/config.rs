//! Every choice of a study, and what follows from them.

use crate::StudyError;
use featleak_attack::threat::ThreatModel;
use featleak_attack::zoo::{ZooEntry, entry_for};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The study's settings (`featleak demo`'s options; `demo.json` records them).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyConfig {
    /// The user's photos instead of generated scenes (centre-cropped to 4:3 and resized to
    /// [`IMAGE_SIZE`]).
    pub images: Option<PathBuf>,
    /// Output folder.
    pub out: PathBuf,
    /// Scenes to generate (without `images`).
    pub scenes: usize,
    /// Use at most this many of the photos (0: all).
    pub max_images: usize,
    /// Images held out as victims (never trained on); the first few also make the pairs.
    pub held_out: usize,
    /// Descriptors the attackers and the sweep cover: sift, freak, sosnet, xfeat, disk.
    pub descriptors: Vec<String>,
    /// Side of the reconstructions (features come from twice this side).
    pub size: u32,
    /// Start each attacker from the bundled (zoo) attacker of its name where one attacks the
    /// same extractor and revealed information (fine-tuning; its network replaces `width`).
    #[serde(default = "yes")]
    pub zoo: bool,
    /// First-level width of the UNets of attackers trained from scratch.
    pub width: usize,
    /// Training steps of each attacker (fine-tuning steps for those started from the zoo).
    pub steps: u64,
    /// Training minutes of each attacker instead of `steps`.
    pub minutes: Option<f64>,
    /// Fine-tuning steps of the sweep's adaptive attacker.
    pub adaptive_steps: u64,
    /// Seed of the scenes, splits, warps and every later stage.
    pub seed: u64,
}

impl Default for StudyConfig {
    fn default() -> Self {
        Self {
            images: None,
            out: "demo-out".into(),
            scenes: 160,
            max_images: 400,
            held_out: 24,
            descriptors: vec!["sift".into()],
            size: 128,
            zoo: true,
            width: 8,
            steps: 60,
            minutes: None,
            adaptive_steps: 5,
            seed: 0,
        }
    }
}

fn yes() -> bool {
    true
}

/// Peak learning rate of attackers fine-tuned from the zoo.
pub const FINE_TUNE_LEARNING_RATE: f64 = 1e-3;

/// Size of the study's images (scenes are generated at it, photos are cropped and resized to it).
pub const IMAGE_SIZE: (u32, u32) = (320, 240);
/// Held-out images that also become homography sequences.
pub const PAIR_SEQUENCES: usize = 6;
/// Warps per sequence.
pub const WARPS: usize = 5;
/// Corner displacement of the warps, as a share of the image's shorter side.
pub const WARP_STRENGTH: f64 = 0.1;
/// Keep fractions of the study's sweep.
pub const KEEPS: [f32; 3] = [1.0, 0.5, 0.2];
/// The pos-only baseline attacker's run name.
pub const POS_ONLY: &str = "pos-only";

/// One attacker of the study.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attacker {
    /// Its run's name.
    pub name: String,
    /// The descriptor its victims send.
    pub descriptor: String,
    /// Its threat model preset.
    pub threat: String,
}

impl StudyConfig {
    /// Checks the settings.
    pub fn validate(&self) -> Result<(), StudyError> {
        let invalid = |m: String| Err(StudyError::Settings(m));
        let known = featleak_descriptors::DESCRIPTOR_NAMES;
        if self.descriptors.is_empty() {
            return invalid(format!(
                "--descriptors: give at least one of {}",
                known.join(", ")
            ));
        }
        for d in &self.descriptors {
            if !known.contains(&d.as_str()) {
                return invalid(format!(
                    "--descriptors: unknown descriptor '{d}' ({})",
                    known.join(", ")
                ));
            }
        }
        if self.held_out < 2 {
            return invalid("--held-out must be at least 2".into());
        }
        Ok(())
    }

    /// Descriptors whose features and matching accuracy the study measures: the attacked ones,
    /// and SOSNet (bundled weights) in any case.
    pub fn matched_descriptors(&self) -> Vec<String> {
        let mut v = self.descriptors.clone();
        if !v.iter().any(|d| d == "sosnet") {
            v.push("sosnet".into());
        }
        v
    }

    /// The study's attackers: one per descriptor under `desc+pos`, and the pos-only baseline
    /// (on the first descriptor's keypoints) last.
    pub fn attackers(&self) -> Vec<Attacker> {
        let mut v: Vec<Attacker> = self
            .descriptors
            .iter()
            .map(|d| Attacker {
                name: d.clone(),
                descriptor: d.clone(),
                threat: "desc+pos".into(),
            })
            .collect();
        v.push(Attacker {
            name: POS_ONLY.into(),
            descriptor: self.descriptors[0].clone(),
            threat: POS_ONLY.into(),
        });
        v
    }

    /// The zoo attacker `attacker` starts from: the entry of its name when `zoo` is on and the
    /// entry attacks the same extractor and revealed information; `None` trains from scratch.
    pub fn zoo_start(&self, attacker: &Attacker) -> Result<Option<&'static ZooEntry>, StudyError> {
        if !self.zoo {
            return Ok(None);
        }
        let threat = ThreatModel::resolve(&attacker.threat, &attacker.descriptor)?;
        Ok(entry_for(&attacker.name, &threat)?)
    }

    /// The images the study runs on, in words.
    pub fn corpus_words(&self) -> String {
        match &self.images {
            None => format!(
                "{} generated scenes (procedural, seeded; nothing downloaded)",
                self.scenes
            ),
            Some(dir) => format!("photos from {}", dir.display()),
        }
    }

    /// The command that reproduces the study.
    pub fn command_line(&self) -> String {
        let mut c = format!(
            "featleak demo --out {} --seed {} --descriptors {} --size {} --width {} --held-out {}",
            self.out.display(),
            self.seed,
            self.descriptors.join(","),
            self.size,
            self.width,
            self.held_out
        );
        match &self.images {
            Some(dir) => c.push_str(&format!(
                " --images {} --max-images {}",
                dir.display(),
                self.max_images
            )),
            None => c.push_str(&format!(" --scenes {}", self.scenes)),
        }
        match self.minutes {
            Some(m) => c.push_str(&format!(" --minutes {m}")),
            None => c.push_str(&format!(" --steps {}", self.steps)),
        }
        c.push_str(&format!(" --adaptive-steps {}", self.adaptive_steps));
        if !self.zoo {
            c.push_str(" --no-zoo");
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attacker(name: &str, descriptor: &str, threat: &str) -> Attacker {
        Attacker {
            name: name.into(),
            descriptor: descriptor.into(),
            threat: threat.into(),
        }
    }

    #[test]
    fn attackers_start_from_the_zoo_entry_that_attacks_the_same_thing() {
        let on = StudyConfig::default();
        let start = |c: &StudyConfig, a: &Attacker| c.zoo_start(a).unwrap().map(|e| e.name);
        assert_eq!(
            start(&on, &attacker("sift", "sift", "desc+pos")),
            Some("sift")
        );
        assert_eq!(
            start(&on, &attacker("freak", "freak", "desc+pos")),
            Some("freak")
        );
        // An entry of that name for another extractor or threat model is not used.
        assert_eq!(start(&on, &attacker("sift", "freak", "desc+pos")), None);
        assert_eq!(start(&on, &attacker("freak", "freak", "pos-only")), None);
        assert_eq!(start(&on, &attacker("sift", "sift", "pos-only")), None);
        assert_eq!(
            start(&on, &attacker("pos-only", "sift", "pos-only")),
            Some("pos-only")
        );
        assert_eq!(start(&on, &attacker("pos-only", "freak", "pos-only")), None);
        let off = StudyConfig {
            zoo: false,
            ..StudyConfig::default()
        };
        assert_eq!(start(&off, &attacker("sift", "sift", "desc+pos")), None);
        assert!(off.command_line().ends_with(" --no-zoo"));
        assert!(!on.command_line().contains("--no-zoo"));
    }
}
