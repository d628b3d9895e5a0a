//! A checkpoint is one atomic unit: a folder of files (model, optimiser, state) that is written
//! whole beside the current one and then swapped in by renames, so that after a crash at any
//! moment exactly one complete checkpoint is found, never a mix of two steps.
//!
//! A commit writes `checkpoint.new/` (every file synced, `state.json` last), renames the current
//! `checkpoint/` to `checkpoint.old/`, renames `checkpoint.new/` to `checkpoint/`, then removes
//! `checkpoint.old/`. [`Checkpoint::recover`] completes or undoes a commit that a crash cut short.

use crate::TrainError;
use featleak_datasets::FileError;
use std::path::{Path, PathBuf};

/// The file every complete checkpoint holds, written last.
pub const STATE: &str = "state.json";

/// The checkpoint folder of a run.
#[derive(Clone, Debug)]
pub struct Checkpoint {
    dir: PathBuf,
}

impl Checkpoint {
    /// The checkpoint kept in `dir` (e.g. `RUN/checkpoint`).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// The committed checkpoint's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file of the committed checkpoint.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn sibling(&self, suffix: &str) -> PathBuf {
        let mut name = self.dir.file_name().unwrap_or_default().to_os_string();
        name.push(suffix);
        self.dir.with_file_name(name)
    }

    fn staging(&self) -> PathBuf {
        self.sibling(".new")
    }

    fn previous(&self) -> PathBuf {
        self.sibling(".old")
    }

    /// Finishes or rolls back a commit that a crash interrupted, then says whether a complete
    /// checkpoint exists. A checkpoint folder without its state file (deleted by hand, say) is an
    /// error rather than a fresh start.
    pub fn recover(&self) -> Result<bool, TrainError> {
        let (staging, previous) = (self.staging(), self.previous());
        let complete = |d: &Path| d.join(STATE).is_file();
        if !self.dir.exists() {
            // Cut between the two renames: the new one is complete (state.json comes last).
            let from = if complete(&staging) {
                Some(&staging)
            } else if complete(&previous) {
                Some(&previous)
            } else {
                None
            };
            if let Some(from) = from {
                std::fs::rename(from, &self.dir).map_err(FileError::io("rename", from))?;
            }
        }
        for leftover in [&staging, &previous] {
            if leftover.exists() {
                std::fs::remove_dir_all(leftover).map_err(FileError::io("remove", leftover))?;
            }
        }
        if !self.dir.exists() {
            return Ok(false);
        }
        if !complete(&self.dir) {
            return Err(TrainError::DamagedCheckpoint {
                folder: self.dir.clone(),
                problem: format!("the checkpoint has no {STATE}"),
            });
        }
        Ok(true)
    }

    /// Writes a new checkpoint: `write` fills an empty folder (its files need not be written
    /// atomically, but must be complete when it returns), then `state` goes in as `state.json`,
    /// everything is synced, and the folder replaces the current checkpoint.
    pub fn commit<E, F>(&self, state: &[u8], write: F) -> Result<(), E>
    where
        E: From<TrainError>,
        F: FnOnce(&Path) -> Result<(), E>,
    {
        let staging = self.empty_staging()?;
        write(&staging)?;
        Ok(self.swap_in(&staging, state)?)
    }

    /// An empty `checkpoint.new/` (whatever a cut commit left there is removed).
    fn empty_staging(&self) -> Result<PathBuf, TrainError> {
        let staging = self.staging();
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(FileError::io("remove", &staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(FileError::io("create", &staging))?;
        Ok(staging)
    }

    /// Adds `state` to the filled `staging` folder, syncs it and swaps it in for the current
    /// checkpoint.
    fn swap_in(&self, staging: &Path, state: &[u8]) -> Result<(), TrainError> {
        // Atomically: a first commit cut while writing it must not leave a half state file
        // that recovery would take for a complete checkpoint.
        featleak_datasets::files::write_bytes(&staging.join(STATE), state)?;
        sync_folder(staging, true)?;

        let previous = self.previous();
        if self.dir.exists() {
            std::fs::rename(&self.dir, &previous).map_err(FileError::io("rename", &self.dir))?;
        }
        std::fs::rename(staging, &self.dir).map_err(FileError::io("rename", staging))?;
        if let Some(parent) = self.dir.parent() {
            sync_folder(parent, false)?;
        }
        if previous.exists() {
            std::fs::remove_dir_all(&previous).map_err(FileError::io("remove", &previous))?;
        }
        Ok(())
    }
}

/// Flushes a folder's entries (and, with `files`, the files in it) to disk.
fn sync_folder(dir: &Path, files: bool) -> Result<(), TrainError> {
    if files {
        for entry in std::fs::read_dir(dir).map_err(FileError::io("read", dir))? {
            let path = entry.map_err(FileError::io("read", dir))?.path();
            if path.is_file() {
                std::fs::File::open(&path)
                    .and_then(|f| f.sync_all())
                    .map_err(FileError::io("sync", &path))?;
            }
        }
    }
    // Folders can be opened and synced on Unix; elsewhere renames are as durable as they get.
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(FileError::io("sync", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(c: &Checkpoint, step: u32) {
        c.commit::<TrainError, _>(format!("{{\"step\":{step}}}").as_bytes(), |d| {
            Ok(std::fs::write(d.join("model.bin"), step.to_le_bytes())
                .map_err(FileError::io("write", d))?)
        })
        .unwrap();
    }

    fn step_of(c: &Checkpoint) -> String {
        std::fs::read_to_string(c.file(STATE)).unwrap()
    }

    #[test]
    fn commits_replace_the_whole_folder() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::new(dir.path().join("checkpoint"));
        assert!(!c.recover().unwrap());
        commit(&c, 1);
        commit(&c, 2);
        assert!(c.recover().unwrap());
        assert_eq!(step_of(&c), "{\"step\":2}");
        assert_eq!(
            std::fs::read(c.file("model.bin")).unwrap(),
            2u32.to_le_bytes()
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["checkpoint"]);
    }

    #[test]
    fn a_commit_cut_short_anywhere_leaves_one_complete_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::new(dir.path().join("checkpoint"));
        commit(&c, 1);
        let (new, old) = (c.staging(), c.previous());

        // Cut while writing the new folder: the old checkpoint stays.
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join("model.bin"), b"half").unwrap();
        assert!(c.recover().unwrap());
        assert_eq!(step_of(&c), "{\"step\":1}");
        assert!(!new.exists());

        // Cut between the renames: the complete new folder wins.
        commit(&c, 2);
        std::fs::rename(c.dir(), &old).unwrap();
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(new.join(STATE), "{\"step\":3}").unwrap();
        assert!(c.recover().unwrap());
        assert_eq!(step_of(&c), "{\"step\":3}");
        assert!(!old.exists() && !new.exists());

        // Cut before the old folder was removed.
        std::fs::create_dir_all(&old).unwrap();
        assert!(c.recover().unwrap());
        assert_eq!(step_of(&c), "{\"step\":3}");
        assert!(!old.exists());

        // Cut after the first rename, before the new folder was complete: the old one is back.
        std::fs::rename(c.dir(), &old).unwrap();
        std::fs::create_dir_all(&new).unwrap();
        assert!(c.recover().unwrap());
        assert_eq!(step_of(&c), "{\"step\":3}");
    }

    #[test]
    fn a_checkpoint_without_its_state_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let c = Checkpoint::new(dir.path().join("checkpoint"));
        commit(&c, 1);
        std::fs::remove_file(c.file(STATE)).unwrap();
        let e = c.recover().unwrap_err();
        assert!(
            e.to_string().contains("the checkpoint has no state.json"),
            "{e}"
        );
    }
}
