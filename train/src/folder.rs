//! A run folder: its configuration `run.json` (written when the run starts, checked on resume),
//! the checkpoint folder and `metrics.csv`. A new run goes only into a new or empty folder, so a
//! user's files are never overwritten; a resume needs a run there.

use crate::TrainError;
use crate::checkpoint::Checkpoint;
use featleak_datasets::FileError;
use featleak_datasets::files::{read_json, write_json};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// The files of one training run.
#[derive(Clone, Debug)]
pub struct RunFolder {
    root: PathBuf,
}

impl RunFolder {
    /// The configuration file's name.
    pub const CONFIG: &'static str = "run.json";

    /// The run in `root`, as it is (nothing is checked or created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Opens `out` for training: for a new run (`resume` false) the folder must be new or empty
    /// and is created; for a resume it must hold a run. `what` names the kind of run in errors
    /// ("an attacker run").
    pub fn prepare(out: &Path, resume: bool, what: &str) -> Result<Self, TrainError> {
        let run = Self::new(out);
        let existing = run.config().exists();
        match (resume, existing) {
            (false, true) => Err(TrainError::AlreadyARun {
                folder: out.to_path_buf(),
                what: what.to_string(),
            }),
            (true, false) => Err(TrainError::NoRun {
                folder: out.to_path_buf(),
                config: Self::CONFIG.into(),
            }),
            (true, true) => Ok(run),
            (false, false) => {
                if out.is_dir() {
                    let mut entries = std::fs::read_dir(out).map_err(FileError::io("read", out))?;
                    if entries.next().is_some() {
                        return Err(TrainError::ForeignFolder(out.to_path_buf()));
                    }
                }
                std::fs::create_dir_all(out).map_err(FileError::io("create", out))?;
                Ok(run)
            }
        }
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `run.json`.
    pub fn config(&self) -> PathBuf {
        self.root.join(Self::CONFIG)
    }

    /// `metrics.csv`: one row per validation, rewritten after every checkpoint.
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }

    /// The run's checkpoint.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::new(self.root.join("checkpoint"))
    }

    /// Optimiser steps held by the run's checkpoint, `None` without one.
    pub fn steps_done(&self) -> Result<Option<u64>, TrainError> {
        #[derive(serde::Deserialize)]
        struct Step {
            step: u64,
        }
        let state = self.checkpoint().file(crate::checkpoint::STATE);
        if !state.exists() {
            return Ok(None);
        }
        Ok(Some(read_json::<Step>(&state)?.step))
    }

    /// Writes the configuration (atomically).
    pub fn write_config<T: Serialize>(&self, config: &T) -> Result<(), TrainError> {
        Ok(write_json(&self.config(), config)?)
    }

    /// Reads the configuration; the error says when the folder holds no run of this kind.
    pub fn read_config<T: DeserializeOwned>(&self) -> Result<T, TrainError> {
        Ok(read_json(&self.config())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_runs_go_only_into_new_or_empty_folders_and_resumes_need_a_run() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let run = RunFolder::prepare(&out, false, "a run").unwrap();
        assert!(out.is_dir());
        assert!(matches!(
            RunFolder::prepare(&out, true, "a run"),
            Err(TrainError::NoRun { .. })
        ));
        // Empty: still fine for a new run.
        RunFolder::prepare(&out, false, "a run").unwrap();
        run.write_config(&serde_json::json!({"a": 1})).unwrap();
        let e = RunFolder::prepare(&out, false, "a run").unwrap_err();
        assert!(
            e.to_string().contains("already holds a run; pass --resume"),
            "{e}"
        );
        RunFolder::prepare(&out, true, "a run").unwrap();

        // A folder of the user's files is never used for a new run.
        let mine = dir.path().join("mine");
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("metrics.csv"), "precious").unwrap();
        let e = RunFolder::prepare(&mine, false, "a run").unwrap_err();
        assert!(matches!(e, TrainError::ForeignFolder(_)), "{e}");
        assert_eq!(
            std::fs::read_to_string(mine.join("metrics.csv")).unwrap(),
            "precious"
        );
    }
}
