//! Helpers shared by the end-to-end CLI tests.
#![allow(dead_code)] // each test binary uses a different subset

use assert_cmd::Command;
use featleak_datasets::synthetic::scene;
use std::path::Path;

/// The built `featleak` binary.
pub fn featleak() -> Command {
    Command::cargo_bin("featleak").unwrap()
}

/// What a command printed on stderr.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A procedural scene of `w`×`h` saved at `path` (folders created).
pub fn write_scene(path: &Path, w: u32, h: u32, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    scene(w, h, seed).save(path).unwrap();
}
