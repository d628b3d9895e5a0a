//! End-to-end tests of `featleak mitigate apply`.

mod common;

use common::{featleak, write_scene};
use featleak_descriptors::read_features;

#[test]
fn apply_writes_revealed_subsets_with_a_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (images, feats, out) = (
        dir.path().join("images"),
        dir.path().join("features"),
        dir.path().join("mitigated"),
    );
    std::fs::create_dir_all(images.join("sub")).unwrap();
    write_scene(&images.join("a.png"), 200, 150, 1);
    write_scene(&images.join("sub/b.png"), 200, 150, 2);
    featleak()
        .args([
            "extract",
            "--descriptor",
            "freak",
            "--detector",
            "harris",
            "--images",
            images.to_str().unwrap(),
        ])
        .args(["--out", feats.to_str().unwrap()])
        .assert()
        .success();
    for strategy in ["random", "top-response", "lowest-response", "grid", "anms"] {
        featleak()
            .args([
                "mitigate",
                "apply",
                "--strategy",
                strategy,
                "--keep",
                "0.25",
                "--seed",
                "3",
            ])
            .args([
                "--features",
                feats.to_str().unwrap(),
                "--out",
                out.join(strategy).to_str().unwrap(),
            ])
            .assert()
            .success();
        for rel in ["a.npz", "sub/b.npz"] {
            let full = read_features(&feats.join(rel)).unwrap();
            let part = read_features(&out.join(strategy).join(rel)).unwrap();
            assert_eq!(
                part.len(),
                (full.len() as f64 * 0.25).round() as usize,
                "{strategy} {rel}"
            );
            assert_eq!(part.extractor, full.extractor);
            // Every revealed keypoint is one of the originals, with its own descriptor.
            for (i, k) in part.keypoints.iter().enumerate() {
                let j = full
                    .keypoints
                    .iter()
                    .position(|o| o == k)
                    .expect("revealed keypoint exists");
                assert_eq!(part.descriptors.select(&[i]), full.descriptors.select(&[j]));
            }
        }
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(out.join(strategy).join("manifest.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(manifest["strategy"]["kind"], strategy);
        assert_eq!(manifest["files"].as_array().unwrap().len(), 2);
    }
    // Same seed, same subset.
    let again = dir.path().join("again");
    featleak()
        .args([
            "mitigate",
            "apply",
            "--strategy",
            "random",
            "--keep",
            "0.25",
            "--seed",
            "3",
        ])
        .args([
            "--features",
            feats.to_str().unwrap(),
            "--out",
            again.to_str().unwrap(),
        ])
        .assert()
        .success();
    assert_eq!(
        read_features(&again.join("a.npz")).unwrap(),
        read_features(&out.join("random/a.npz")).unwrap()
    );
}

#[test]
fn apply_rejects_bad_arguments_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let feats = dir.path().join("features");
    std::fs::create_dir_all(&feats).unwrap();
    std::fs::write(feats.join("broken.npz"), b"not a zip").unwrap();
    let run = |strategy: &str, keep: &str| {
        let o = featleak()
            .args([
                "mitigate",
                "apply",
                "--strategy",
                strategy,
                "--keep",
                keep,
                "--features",
                feats.to_str().unwrap(),
            ])
            .args(["--out", dir.path().join("out").to_str().unwrap()])
            .output()
            .unwrap();
        assert!(!o.status.success());
        common::stderr(&o)
    };
    assert!(run("oracle", "0.5").contains("unknown strategy 'oracle'"));
    assert!(run("random", "1.5").contains("--keep must be between 0 and 1"));
    let e = run("random", "0.5");
    assert!(
        e.contains("broken.npz") && e.contains("not a readable .npz"),
        "{e}"
    );
}
