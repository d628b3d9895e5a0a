//! `--device wgpu`. Built with `--features wgpu`, a smoke test of training, reconstruction and
//! learned-feature extraction on whatever wgpu adapter the machine has (in CI: Mesa's lavapipe,
//! a CPU Vulkan driver; slow, so the images are tiny and the steps few). Built without the
//! feature, a check that the binary refuses `--device wgpu` with an error that says how to
//! rebuild.
//!
//! `make test-gpu` (`cargo test --profile gpu-smoke --features wgpu --test cli_gpu_smoke`)

mod common;

use common::{scenes, stderr, train_attacker};
use std::path::Path;

/// A tiny attacker (width 8) trained with `extra` arguments (the budget, the device).
fn train(images: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    train_attacker(images, out, &[&["--width", "8"], extra].concat())
}

#[cfg(feature = "wgpu")]
fn reconstruct(run: &Path, images: &Path, out: &Path, device: &str) -> std::process::Output {
    common::featleak()
        .args(["attack", "reconstruct", "--run", run.to_str().unwrap()])
        .args(["--images", images.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap(), "--device", device])
        .output()
        .unwrap()
}

/// `featleak extract` of `images` into `out` with `descriptor` on `device`.
fn extract(images: &Path, out: &Path, descriptor: &str, device: &str) -> std::process::Output {
    common::featleak()
        .args(["extract", "--descriptor", descriptor, "--device", device])
        .args(["--images", images.to_str().unwrap()])
        .args(["--out", out.to_str().unwrap()])
        .output()
        .unwrap()
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn without_the_feature_extraction_on_wgpu_is_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let (images, out) = (dir.path().join("images"), dir.path().join("features"));
    scenes(&images, 1, 96, 72);
    let o = extract(&images, &out, "xfeat", "wgpu");
    common::assert_error(&o, "cargo build --release --features wgpu");
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[cfg(feature = "wgpu")]
#[test]
fn learned_features_on_wgpu_match_the_cpu_ones() {
    use featleak_descriptors::{Descriptors, read_features};
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    scenes(&images, 2, 96, 72);
    let (cpu, gpu) = (dir.path().join("cpu"), dir.path().join("gpu"));
    for (out, device) in [(&cpu, "cpu"), (&gpu, "wgpu")] {
        let o = extract(&images, out, "xfeat", device);
        assert!(o.status.success(), "{device}: {}", stderr(&o));
    }
    for i in 0..2 {
        let read = |root: &Path| read_features(&root.join(format!("s{i}.npz"))).unwrap();
        let (c, g) = (read(&cpu), read(&gpu));
        assert!(!c.is_empty());
        let at = |f: &featleak_descriptors::FeatureSet| -> Vec<(f32, f32)> {
            f.keypoints.iter().map(|k| (k.x, k.y)).collect()
        };
        assert_eq!(at(&c), at(&g), "scene {i}: keypoints");
        let (Descriptors::Float(dc), Descriptors::Float(dg)) = (&c.descriptors, &g.descriptors)
        else {
            panic!("XFeat descriptors are floats");
        };
        let d = dc
            .iter()
            .zip(dg)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!(
            "scene {i}: {} keypoints identical, descriptors max |Δ| {d:e}",
            c.len()
        );
        assert!(d <= 1e-4, "scene {i}: descriptors differ by {d}");
    }
}

#[cfg(not(feature = "wgpu"))]
#[test]
fn without_the_feature_wgpu_is_refused_with_the_rebuild_command() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    scenes(&images, 3, 96, 72);
    let o = train(
        &images,
        &dir.path().join("run"),
        &["--steps", "1", "--device", "wgpu"],
    );
    common::assert_error(&o, "cargo build --release --features wgpu");
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    // Refused before any work: no run folder.
    assert!(!dir.path().join("run/checkpoint").exists());

    // An unknown device is clap's error, listing the choices.
    let o = train(
        &images,
        &dir.path().join("run2"),
        &["--steps", "1", "--device", "cuda"],
    );
    let e = stderr(&o);
    assert!(
        !o.status.success() && e.contains("cpu") && e.contains("wgpu"),
        "{e}"
    );
}

#[cfg(feature = "wgpu")]
#[test]
fn trains_and_reconstructs_on_wgpu() {
    let dir = tempfile::tempdir().unwrap();
    let (images, run) = (dir.path().join("images"), dir.path().join("run"));
    scenes(&images, 6, 96, 72);

    let o = train(&images, &run, &["--steps", "3", "--device", "wgpu"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let adapter = stdout
        .lines()
        .find(|l| l.starts_with("device: wgpu"))
        .unwrap_or_else(|| panic!("no wgpu device line in {stdout}"));
    eprintln!("{adapter}");
    for f in [
        "run.json",
        "metrics.csv",
        "checkpoint/model.bpk",
        "checkpoint/state.json",
    ] {
        assert!(run.join(f).exists(), "{f} missing");
    }
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(config["device"], "wgpu");

    // Losses and validation scores are finite numbers.
    let losses = |run: &Path| -> Vec<f64> {
        let csv = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
        let rows: Vec<Vec<f64>> = csv
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect();
        assert!(!rows.is_empty(), "no metrics rows:\n{csv}");
        for r in &rows {
            assert!(
                r.iter().all(|v| v.is_finite()),
                "non-finite metrics:\n{csv}"
            );
            assert!(r[4] > 0.0, "train loss {} in\n{csv}", r[4]);
        }
        rows.iter().map(|r| r[4]).collect()
    };
    losses(&run);

    // Reconstructions: present, the right size, not constant, scored.
    let out = dir.path().join("rec");
    let o = reconstruct(&run, &images, &out, "wgpu");
    assert!(o.status.success(), "{}", stderr(&o));
    for i in 0..6 {
        let rec = image::open(out.join(format!("s{i}.png")))
            .unwrap()
            .to_rgb8();
        assert_eq!(rec.dimensions(), (32, 32));
        let first = rec.get_pixel(0, 0);
        assert!(
            rec.pixels().any(|p| p != first),
            "reconstruction s{i} is one flat colour {first:?}"
        );
    }
    let metrics: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("metrics.json")).unwrap()).unwrap();
    assert!(metrics["mean"]["psnr"].as_f64().unwrap().is_finite());
    assert!(metrics["mean"]["ssim"].as_f64().unwrap().is_finite());

    // The device is no part of the run's identity: a wgpu run resumes on the CPU.
    let o = train(
        &images,
        &run,
        &["--steps", "4", "--resume", "--device", "cpu"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("checkpoint/state.json")).unwrap()).unwrap();
    assert_eq!(state["step"], 4);
    losses(&run);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("run.json")).unwrap()).unwrap();
    assert_eq!(config["device"], "cpu");
}
