//! Tests on the real data set (photos, matching pairs). Ignored by default; run with
//! `FEATLEAK_DATA=../shared/data cargo test --release -- --ignored` (`make test-data`).

use assert_cmd::Command;
use featleak_descriptors::read_features;
use std::path::PathBuf;

fn data() -> PathBuf {
    let dir = std::env::var_os("FEATLEAK_DATA")
        .expect("set FEATLEAK_DATA to the data folder (e.g. ../shared/data)");
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("photos").is_dir(),
        "{} has no photos/ folder",
        dir.display()
    );
    dir
}

#[test]
#[ignore = "needs FEATLEAK_DATA"]
fn sift_extraction_on_real_photos() {
    let photos = data().join("photos/bsds500/test");
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&photos)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names.iter().take(8) {
        std::os::unix::fs::symlink(p, images.join(p.file_name().unwrap())).unwrap();
    }
    let out = dir.path().join("out");
    for detector in ["dog", "harris", "fast"] {
        let out = out.join(detector);
        Command::cargo_bin("featleak")
            .unwrap()
            .args([
                "extract",
                "--detector",
                detector,
                "--images",
                images.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .assert()
            .success();
        for p in names.iter().take(8) {
            let stem = p.file_stem().unwrap().to_string_lossy();
            let fs = read_features(&out.join(format!("{stem}.npz"))).unwrap();
            assert!(
                fs.len() >= 100,
                "{detector} on {stem}: only {} keypoints",
                fs.len()
            );
            assert!(
                matches!(fs.image_size, (321, 481) | (481, 321)),
                "{:?}",
                fs.image_size
            );
        }
    }
}
