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

/// MMA@t of each descriptor from `featleak match-eval` on the real pairs.
fn mma_on_real_pairs(descriptors: &str, detector: &str, gray: &str) -> Vec<(String, Vec<f64>)> {
    mma_with(&[
        "--descriptor",
        descriptors,
        "--detector",
        detector,
        "--max-keypoints",
        "2000",
        "--gray",
        gray,
    ])
}

/// MMA@t of each descriptor from `featleak match-eval ARGS` on the real pairs.
fn mma_with(args: &[&str]) -> Vec<(String, Vec<f64>)> {
    let dir = tempfile::tempdir().unwrap();
    let pairs = data().join("matching");
    Command::cargo_bin("featleak")
        .unwrap()
        .arg("match-eval")
        .args(args)
        .args([
            "--pairs",
            pairs.to_str().unwrap(),
            "--out",
            dir.path().to_str().unwrap(),
        ])
        .assert()
        .success();
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("results.json")).unwrap()).unwrap();
    results["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(r["pairs"].as_array().unwrap().len(), 15);
            let mma = r["summary"]["mma"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            (r["descriptor"].as_str().unwrap().to_string(), mma)
        })
        .collect()
}

/// Issue #5 and #3 acceptance: MMA within tolerance of OpenCV (python) with the same protocol
/// (tools/match_eval_reference.py; values quoted in the issues).
#[test]
#[ignore = "needs FEATLEAK_DATA"]
fn mma_on_hpatches_and_oxford_matches_opencv() {
    let dog = mma_on_real_pairs("sift,freak", "dog", "cvtcolor");
    let sift = &dog[0].1;
    for (t, reference) in [(1, 0.290), (3, 0.496), (5, 0.531), (10, 0.558)] {
        assert!(
            (sift[t - 1] - reference).abs() <= 0.005,
            "SIFT MMA@{t} {} vs OpenCV {reference}",
            sift[t - 1]
        );
    }
    assert!(
        (dog[1].1[2] - 0.416).abs() <= 0.01,
        "FREAK on DoG MMA@3 {}",
        dog[1].1[2]
    );
    let harris = mma_on_real_pairs("sift,freak", "harris", "cvtcolor");
    assert!(
        (harris[1].1[2] - 0.443).abs() <= 0.01,
        "FREAK on Harris MMA@3 {}",
        harris[1].1[2]
    );
}

/// Read as the reference reads them (`cv2.imread(..., IMREAD_GRAYSCALE)`), the pairs give the
/// reference's MMA@1..10 exactly: `python tools/match_eval_reference.py PAIRS --descriptor
/// sift|freak --detector dog --gray imread` (opencv-python 4.6.0.66) printed these values.
#[test]
#[ignore = "needs FEATLEAK_DATA"]
fn mma_read_as_imread_grayscale_equals_opencv_exactly() {
    let reference = [
        [
            0.2901, 0.4382, 0.4959, 0.519, 0.5312, 0.5396, 0.5455, 0.5523, 0.5557, 0.5576,
        ],
        [
            0.2514, 0.374, 0.4163, 0.4323, 0.4422, 0.4493, 0.455, 0.4606, 0.4646, 0.4677,
        ],
    ];
    let ours = mma_on_real_pairs("sift,freak", "dog", "imread-grayscale");
    for ((name, mma), reference) in ours.iter().zip(reference) {
        for (t, (a, b)) in mma.iter().zip(reference).enumerate() {
            assert!(
                (a - b).abs() <= 5e-5,
                "{name} MMA@{}: {a} vs OpenCV {b}",
                t + 1
            );
        }
    }
}

/// Issue #4 acceptance: SOSNet with featleak's bundled weights matches at least as well as SIFT
/// on the same DoG keypoints (mutual NN, MMA@3 over the 15 pairs).
#[test]
#[ignore = "needs FEATLEAK_DATA"]
fn bundled_sosnet_matches_at_least_as_well_as_sift() {
    let r = mma_on_real_pairs("sift,sosnet", "dog", "cvtcolor");
    let (sift, sosnet) = (r[0].1[2], r[1].1[2]);
    assert_eq!(r[1].0, "sosnet+dog");
    assert!(sosnet >= sift, "SOSNet MMA@3 {sosnet} < SIFT {sift}");
}

/// Issue #19 acceptance: XFeat (official weights, its own keypoints) beats SIFT's MMA@3 on the
/// 15 pairs, both with XFeat's default budget of 4096 keypoints (measured 0.505 vs 0.486; at
/// 2000 keypoints XFeat does not: 0.452 vs 0.494, see descriptors/weights/README.md).
#[test]
#[ignore = "needs FEATLEAK_DATA"]
fn xfeat_matches_better_than_sift_at_its_default_budget() {
    let r = mma_with(&["--descriptor", "sift,xfeat", "--max-keypoints", "4096"]);
    assert_eq!(r[1].0, "xfeat+xfeat");
    let (sift, xfeat) = (r[0].1[2], r[1].1[2]);
    assert!(xfeat > sift, "XFeat MMA@3 {xfeat} <= SIFT {sift}");
}

/// Issue #19 acceptance: DISK (official depth weights, its own keypoints) beats SIFT's MMA@3 on
/// the 15 pairs at 2000 keypoints (measured 0.709 vs 0.494).
#[test]
#[ignore = "needs FEATLEAK_DATA"]
fn disk_matches_better_than_sift() {
    let r = mma_with(&["--descriptor", "sift,disk", "--max-keypoints", "2000"]);
    assert_eq!(r[1].0, "disk+disk");
    let (sift, disk) = (r[0].1[2], r[1].1[2]);
    assert!(disk > sift, "DISK MMA@3 {disk} <= SIFT {sift}");
}

/// Issue #19 acceptance: ALIKED-N16 (official weights, its own keypoints) beats SIFT's MMA@3 on
/// the 15 pairs at 2000 keypoints (measured 0.699 vs 0.494).
#[test]
#[ignore = "needs FEATLEAK_DATA"]
fn aliked_matches_better_than_sift() {
    let r = mma_with(&["--descriptor", "sift,aliked", "--max-keypoints", "2000"]);
    assert_eq!(r[1].0, "aliked+aliked");
    let (sift, aliked) = (r[0].1[2], r[1].1[2]);
    assert!(aliked > sift, "ALIKED MMA@3 {aliked} <= SIFT {sift}");
}

/// Issue #18 acceptance: on BSDS500 test JPEGs given as they are, featleak decodes and converts
/// to grey as opencv-python (or Pillow) does, so SIFT and FREAK equal OpenCV's under each grey
/// conversion. The reference is tests/fixtures/jpeg_parity.json (tools/make_jpeg_parity_fixture.py:
/// keypoint counts and digests, tolerances in its manifest).
#[test]
#[ignore = "needs FEATLEAK_DATA"]
fn sift_and_freak_on_jpeg_photos_equal_opencv_python() {
    use ndarray::{Array2, Axis};
    use ndarray_npy::NpzReader;
    use sha2::{Digest, Sha256};

    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("tests/fixtures/jpeg_parity.json")).unwrap(),
    )
    .unwrap();
    let cases = fixture["cases"].as_object().unwrap();
    assert_eq!(cases.len(), 16);
    let photos = data().join("photos/bsds500/test");
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("images");
    std::fs::create_dir(&images).unwrap();
    for name in cases.keys() {
        std::os::unix::fs::symlink(photos.join(name), images.join(name)).unwrap();
    }
    let sha = |bytes: &[u8]| format!("{:x}", Sha256::digest(bytes));
    // Digest of the first `n` keypoint columns, as the fixture's float32 row-major bytes.
    let columns = |kps: &Array2<f32>, n: usize| {
        let bytes: Vec<u8> = kps
            .slice(ndarray::s![.., ..n])
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        sha(&bytes)
    };
    let mut checked = 0;
    for gray in ["cvtcolor", "imread-grayscale", "pil"] {
        for (descriptor, detector) in [("sift", "dog"), ("freak", "harris"), ("freak", "dog")] {
            let out = dir.path().join(format!("{gray}-{descriptor}-{detector}"));
            Command::cargo_bin("featleak")
                .unwrap()
                .args([
                    "extract",
                    "--descriptor",
                    descriptor,
                    "--detector",
                    detector,
                ])
                .args(["--max-keypoints", "2000", "--gray", gray, "--images"])
                .arg(&images)
                .arg("--out")
                .arg(&out)
                .assert()
                .success();
            let key = format!("{descriptor}+{detector}");
            for (name, by_gray) in cases {
                let want = &by_gray[gray][&key];
                let stem = name.trim_end_matches(".jpg");
                let file = std::fs::File::open(out.join(format!("{stem}.npz"))).unwrap();
                let mut npz = NpzReader::new(file).unwrap();
                let kps: Array2<f32> = npz.by_name("keypoints").unwrap();
                let what = format!("{name} {gray} {key}");
                assert_eq!(
                    kps.len_of(Axis(0)) as u64,
                    want["keypoints"],
                    "{what}: count"
                );
                if descriptor == "sift" {
                    assert_eq!(columns(&kps, 2), want["xy_sha256"], "{what}: keypoints");
                    let desc: Array2<f32> = npz.by_name("descriptors").unwrap();
                    let sum: f64 = desc.iter().map(|&v| f64::from(v)).sum();
                    let reference = want["descriptor_sum"].as_f64().unwrap();
                    let slack = (desc.len() as f64 / 1e4).max(1.0);
                    assert!(
                        (sum - reference).abs() <= slack,
                        "{what}: descriptor sum {sum} vs OpenCV {reference}"
                    );
                } else {
                    assert_eq!(
                        columns(&kps, 3),
                        want["xy_size_sha256"],
                        "{what}: keypoints"
                    );
                    let desc: Array2<u8> = npz.by_name("descriptors").unwrap();
                    let bytes: Vec<u8> = desc.iter().copied().collect();
                    assert_eq!(
                        sha(&bytes),
                        want["descriptors_sha256"],
                        "{what}: descriptors"
                    );
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 16 * 9);
}
