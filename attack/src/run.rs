//! A training run folder: its configuration (written once, checked on resume), checkpoints and
//! the per-epoch metrics table, all written atomically so that a crash loses at most the step in
//! progress.
//!
//! Layout: `run.json` (tool version, threat model, network and training configuration, seed,
//! image lists), `checkpoint/model.bpk` + `checkpoint/optimizer.bpk` + `checkpoint/state.json`
//! (replaced together: state.json is written last and names the step the files belong to),
//! `metrics.csv` and `curves.svg`.

use crate::threat::ThreatModel;
use crate::training::TrainConfig;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::path::{Path, PathBuf};

/// `run.json`: everything needed to reproduce or resume the run.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunConfig {
    pub tool: String,
    pub version: String,
    pub threat: ThreatModel,
    pub training: TrainConfig,
    /// Folder the training (and, without a separate one, validation) images come from.
    pub images_root: String,
    /// Training images, relative to `images_root`, without extension.
    pub train_images: Vec<String>,
    pub val_images: Vec<String>,
    /// Folder of the validation images when they are not under `images_root`.
    #[serde(default)]
    pub val_root: Option<String>,

    /// Images that could not be used, with the reason.
    pub skipped: Vec<String>,
    /// Compute device of the latest training session (`cpu` or `wgpu`): an execution choice,
    /// recorded for the record and never checked, so a run resumes on any device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl RunConfig {
    /// Reads `run.json` of `run` and checks it was written by this version of featleak.
    pub fn load(run: &RunDir) -> Result<Self, String> {
        let config: Self = read_json(&run.config()).map_err(|e| {
            format!(
                "{e} (is {} a folder made by `featleak attack train`?)",
                run.root.display()
            )
        })?;
        if config.tool != "featleak" || config.version != env!("CARGO_PKG_VERSION") {
            return Err(format!(
                "{} was written by {} {}, this is featleak {}; train a new run",
                run.config().display(),
                config.tool,
                config.version,
                env!("CARGO_PKG_VERSION")
            ));
        }
        Ok(config)
    }
}

/// The training state saved with every checkpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Optimiser steps done.
    pub step: u64,
    /// Seconds of training so far (over all sessions of the run).
    pub seconds: f64,
    /// One row per finished epoch.
    pub history: Vec<EpochMetrics>,
    /// Sum and count of the training losses of the epoch in progress.
    #[serde(default)]
    pub epoch_loss: (f64, u64),
}

/// Metrics of one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: u64,
    pub step: u64,
    pub seconds: f64,
    pub learning_rate: f64,
    pub train_loss: f64,
    pub val_psnr: f64,
    pub val_ssim: f64,
}

/// Paths of a run folder.
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn config(&self) -> PathBuf {
        self.root.join("run.json")
    }
    pub fn checkpoint_dir(&self) -> PathBuf {
        self.root.join("checkpoint")
    }
    pub fn model(&self) -> PathBuf {
        self.checkpoint_dir().join("model.bpk")
    }
    pub fn optimizer(&self) -> PathBuf {
        self.checkpoint_dir().join("optimizer.bpk")
    }
    pub fn state(&self) -> PathBuf {
        self.checkpoint_dir().join("state.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn curves(&self) -> PathBuf {
        self.root.join("curves.svg")
    }
    pub fn cache(&self) -> PathBuf {
        self.root.join("cache")
    }

    /// Reads the saved training state, if a checkpoint exists.
    pub fn load_state(&self) -> Result<Option<TrainState>, String> {
        if !self.state().exists() {
            return Ok(None);
        }
        read_json(&self.state()).map(Some)
    }

    /// Writes the metrics table (the whole history, atomically).
    pub fn write_metrics(&self, history: &[EpochMetrics]) -> Result<(), String> {
        let mut csv =
            String::from("epoch,step,seconds,learning_rate,train_loss,val_psnr,val_ssim\n");
        for m in history {
            csv.push_str(&format!(
                "{},{},{:.1},{:.6e},{:.6},{:.4},{:.5}\n",
                m.epoch, m.step, m.seconds, m.learning_rate, m.train_loss, m.val_psnr, m.val_ssim
            ));
        }
        write_bytes(&self.metrics(), csv.as_bytes())
    }
}

/// Writes `bytes` atomically, naming the file in errors.
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    featleak_datasets::atomic::write_bytes_atomic(path, bytes)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes `value` as pretty JSON, atomically, creating its folder; errors name the file.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    featleak_datasets::atomic::write_json_atomic(path, value)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads JSON, naming the file in errors.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: unexpected content ({e})", path.display()))
}

/// The training images of `step`: an epoch-wise permutation derived from (seed, epoch) alone, so
/// a resumed run sees exactly the batches an uninterrupted one would.
pub fn batch_indices(seed: u64, step: u64, batch: usize, n: usize) -> Vec<usize> {
    use rand::seq::SliceRandom;
    let per_epoch = (n / batch).max(1) as u64;
    let (epoch, within) = (step / per_epoch, (step % per_epoch) as usize);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut featleak_datasets::schedule::rng(seed, 1000 + epoch));
    (0..batch)
        .map(|i| order[(within * batch + i) % n])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_each_epoch_and_depend_only_on_seed_and_step() {
        let mut seen: Vec<usize> = (0..5).flat_map(|s| batch_indices(3, s, 4, 20)).collect();
        seen.sort();
        assert_eq!(
            seen,
            (0..20).collect::<Vec<_>>(),
            "one epoch = every image once"
        );
        assert_eq!(batch_indices(3, 7, 4, 20), batch_indices(3, 7, 4, 20));
        assert_ne!(batch_indices(3, 0, 4, 20), batch_indices(3, 5, 4, 20));
    }

    #[test]
    fn metrics_and_state_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let run = RunDir::new(dir.path());
        assert_eq!(run.load_state().unwrap(), None);
        let m = EpochMetrics {
            epoch: 1,
            step: 10,
            seconds: 2.5,
            learning_rate: 1e-3,
            train_loss: 0.5,
            val_psnr: 14.0,
            val_ssim: 0.3,
        };
        let state = TrainState {
            step: 10,
            seconds: 2.5,
            history: vec![m],
            epoch_loss: (0.25, 1),
        };
        write_json(&run.state(), &state).unwrap();
        assert_eq!(run.load_state().unwrap(), Some(state));
        run.write_metrics(&[m]).unwrap();
        let csv = std::fs::read_to_string(run.metrics()).unwrap();
        assert_eq!(
            csv.lines().nth(1).unwrap(),
            "1,10,2.5,1.000000e-3,0.500000,14.0000,0.30000"
        );
        std::fs::write(run.state(), "{").unwrap();
        assert!(
            run.load_state()
                .unwrap_err()
                .contains("state.json: unexpected content")
        );
    }
}
