//! The folders of a study's output.

use std::path::PathBuf;

/// Where a study keeps each stage's output.
#[derive(Clone, Debug)]
pub struct StudyDir {
    /// The output folder.
    pub root: PathBuf,
}

impl StudyDir {
    /// `demo.json`: the settings.
    pub fn manifest(&self) -> PathBuf {
        self.root.join("demo.json")
    }
    /// The attackers' training images.
    pub fn train_images(&self) -> PathBuf {
        self.root.join("images/train")
    }
    /// The victims.
    pub fn held_out(&self) -> PathBuf {
        self.root.join("images/held-out")
    }
    /// The victims' features by `descriptor` (what a service receives).
    pub fn features(&self, descriptor: &str) -> PathBuf {
        self.root.join("features").join(descriptor)
    }
    /// Homography sequences made from victims.
    pub fn pairs(&self) -> PathBuf {
        self.root.join("pairs")
    }
    /// Matching accuracy on the pairs.
    pub fn matching(&self) -> PathBuf {
        self.root.join("matching")
    }
    /// The run folder of `attacker`.
    pub fn run(&self, attacker: &str) -> PathBuf {
        self.root.join("runs").join(attacker)
    }
    /// `attacker`'s reconstructions of the victims.
    pub fn reconstructions(&self, attacker: &str) -> PathBuf {
        self.root.join("reconstructions").join(attacker)
    }
    /// The baselines' scores.
    pub fn baselines(&self) -> PathBuf {
        self.root.join("baselines")
    }
    /// The mitigation sweep.
    pub fn sweep(&self) -> PathBuf {
        self.root.join("sweep")
    }
    /// The sweep's configuration.
    pub fn sweep_config(&self) -> PathBuf {
        self.root.join("sweep.toml")
    }
    /// The report.
    pub fn report(&self) -> PathBuf {
        self.root.join("report")
    }
}
