//! Helpers shared by the end-to-end CLI tests.
#![allow(dead_code)] // each test binary uses a different subset

use assert_cmd::Command;
use featleak_datasets::synthetic::scene;
use std::path::Path;

/// The built `featleak` binary. HDF5 file locking is off in it: tests write HDF5 stores in this
/// process while other test threads spawn commands, and HDF5 opens files without close-on-exec,
/// so a command spawned meanwhile inherits the writer's lock and holds it until it exits.
pub fn featleak() -> Command {
    let mut command = Command::cargo_bin("featleak").unwrap();
    command.env("HDF5_USE_FILE_LOCKING", "FALSE");
    command
}

/// What a command printed on stderr.
pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts that the command failed and said `needle` on stderr.
pub fn assert_error(out: &std::process::Output, needle: &str) {
    assert!(
        !out.status.success(),
        "expected a failure mentioning {needle:?}; it succeeded:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = stderr(out);
    assert!(
        err.contains(needle),
        "expected {needle:?} in stderr:\n{err}"
    );
}

/// `n` procedural scenes of `w`×`h`, `s0.png`, `s1.png`, … in `dir`.
pub fn scenes(dir: &Path, n: u64, w: u32, h: u32) {
    for i in 0..n {
        write_scene(&dir.join(format!("s{i}.png")), w, h, 40 + i);
    }
}

/// The arguments of `featleak attack train` for a tiny SIFT `desc+pos` attacker (32² from 64²
/// features, batch 2) on `images` into `out`; a budget is still to be added.
pub fn attacker_args(images: &Path, out: &Path) -> Vec<String> {
    let (images, out) = (images.to_str().unwrap(), out.to_str().unwrap());
    [
        "attack",
        "train",
        "--descriptor",
        "sift",
        "--threat",
        "desc+pos",
        "--size",
        "32",
        "--feature-size",
        "64",
        "--batch-size",
        "2",
        "--images",
        images,
        "--out",
        out,
    ]
    .map(String::from)
    .to_vec()
}

/// Trains the tiny attacker of [`attacker_args`] with `extra` arguments (a budget at least).
pub fn train_attacker(images: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    featleak()
        .args(attacker_args(images, out))
        .args(extra)
        .output()
        .unwrap()
}

/// A procedural scene of `w`×`h` saved at `path` (folders created).
pub fn write_scene(path: &Path, w: u32, h: u32, seed: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    scene(w, h, seed).save(path).unwrap();
}

/// An AlexNet backbone in torchvision's names with arbitrary fixed weights (LPIPS' parity with
/// the reference is `eval/tests/lpips_parity.rs`).
pub fn write_alexnet(path: &Path) {
    let convs = [
        (0, 3, 64, 11),
        (3, 64, 192, 5),
        (6, 192, 384, 3),
        (8, 384, 256, 3),
        (10, 256, 256, 3),
    ];
    let tensors: Vec<(String, Vec<usize>, Vec<f32>)> = convs
        .iter()
        .flat_map(|&(i, c_in, c_out, k)| {
            let n = c_out * c_in * k * k;
            let scale = (6.0 / (c_in * k * k) as f32).sqrt() / 3.0;
            let w = (0..n)
                .map(|j| ((j * 7919 % 13) as f32 - 6.0) * scale / 6.0)
                .collect();
            [
                (format!("features.{i}.weight"), vec![c_out, c_in, k, k], w),
                (format!("features.{i}.bias"), vec![c_out], vec![0.01; c_out]),
            ]
        })
        .collect();
    let named: Vec<(String, Vec<usize>, &[f32])> = tensors
        .iter()
        .map(|(n, s, v)| (n.clone(), s.clone(), v.as_slice()))
        .collect();
    featleak_descriptors::state_dict::save_safetensors(path, &named).unwrap();
}
