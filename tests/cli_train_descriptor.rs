//! End-to-end test of `featleak train-descriptor` (tiny scenes, a few steps: plumbing, resume,
//! errors, and the trained weights used by `featleak extract`).

mod common;

use common::{assert_error, featleak, stderr, write_scene};
use std::path::Path;

fn train(images: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    featleak()
        .args(["train-descriptor", "--arch", "sosnet", "--images"])
        .arg(images)
        .arg("--out")
        .arg(out)
        .args(["--batch-size", "4", "--views", "2", "--validate-every", "2"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn trains_resumes_and_its_weights_extract_features() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("scenes");
    for i in 0..8 {
        write_scene(&images.join(format!("s{i}.png")), 160, 120, 70 + i);
    }
    let run = tmp.path().join("run");

    let out = train(&images, &run, &["--steps", "4"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().count(), 3, "{metrics}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["steps"], 4);
    assert_eq!(manifest["config"]["seed"], 0);

    // A second run into the same folder is refused; --resume extends the budget.
    let again = train(&images, &run, &["--steps", "4"]);
    assert_error(&again, "--resume");
    let resumed = train(&images, &run, &["--steps", "6", "--resume"]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    let metrics = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    assert_eq!(metrics.lines().last().unwrap().split(',').next(), Some("6"));

    // The weights describe keypoints through `extract`.
    let features = tmp.path().join("features");
    let out = featleak()
        .args(["extract", "--descriptor", "sosnet", "--weights"])
        .arg(run.join("sosnet.safetensors"))
        .arg("--images")
        .arg(&images)
        .arg("--out")
        .arg(&features)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let set = featleak_descriptors::read_features(&features.join("s0.npz")).unwrap();
    assert!(!set.keypoints.is_empty());
    assert_eq!(set.descriptors.dimension(), 128);
}

#[test]
fn bad_inputs_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = train(&empty, &tmp.path().join("run"), &["--steps", "2"]);
    assert_error(&out, "no images found in");

    let out = train(&empty, &tmp.path().join("run2"), &[]);
    assert_error(&out, "budget");

    let out = train(
        &empty,
        &tmp.path().join("nothing"),
        &["--steps", "2", "--resume"],
    );
    assert_error(&out, "holds no run");
}
