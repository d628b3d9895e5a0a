//! SIFT parity with OpenCV's Python bindings (fixtures from tools/make_sift_fixtures.py; see
//! tests/fixtures/sift/manifest.json for versions and tolerances).

use featleak_datasets::{load_rgb, rgb_to_gray};
use featleak_descriptors::{Descriptors, Extractor, ExtractorConfig};
use ndarray::{Array2, Ix2, OwnedRepr};
use ndarray_npy::NpzReader;
use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sift")
}

fn reference(path: &Path) -> (Array2<f32>, Array2<f32>) {
    let mut npz = NpzReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let k = npz.by_name::<OwnedRepr<f32>, Ix2>("keypoints").unwrap();
    let d = npz.by_name::<OwnedRepr<f32>, Ix2>("descriptors").unwrap();
    (k, d)
}

fn check(case: &str, detector: &str, max_keypoints: usize) {
    let mut images: Vec<PathBuf> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    images.sort();
    assert!(images.len() >= 5, "expected at least 5 fixture images");
    let mut config = ExtractorConfig::named("sift", detector).unwrap();
    config.max_keypoints = max_keypoints;
    for image in &images {
        let gray = rgb_to_gray(&load_rgb(image).unwrap());
        let ours = config.build().unwrap().extract(&gray).unwrap();
        let (ref_kps, ref_desc) = reference(&image.with_extension(format!("{case}.npz")));
        let name = image.file_name().unwrap().to_string_lossy();
        assert_eq!(ours.len(), ref_kps.nrows(), "{name} {case}: keypoint count");
        for (i, (kp, r)) in ours.keypoints.iter().zip(ref_kps.rows()).enumerate() {
            assert!(
                (kp.x - r[0]).abs() <= 0.01 && (kp.y - r[1]).abs() <= 0.01,
                "{name} {case}: keypoint {i} at ({}, {}), OpenCV ({}, {})",
                kp.x,
                kp.y,
                r[0],
                r[1]
            );
            assert!(
                (kp.size - r[2]).abs() <= 0.01 && (kp.angle - r[3]).abs() <= 0.01,
                "{name} {case}: keypoint {i} size/angle"
            );
            assert_eq!(kp.octave, r[5] as i32, "{name} {case}: keypoint {i} octave");
        }
        let Descriptors::Float(d) = &ours.descriptors else {
            panic!("SIFT gives float descriptors")
        };
        for (i, (a, b)) in d.rows().into_iter().zip(ref_desc.rows()).enumerate() {
            let max_abs = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            let cosine = a.dot(&b) / (a.dot(&a).sqrt() * b.dot(&b).sqrt()).max(f32::EPSILON);
            assert!(
                max_abs <= 1.0 || cosine >= 0.9999,
                "{name} {case}: descriptor {i} max |Δ| {max_abs}, cosine {cosine}"
            );
        }
    }
}

#[test]
fn sift_on_dog_keypoints_matches_opencv() {
    check("dog", "dog", 2000);
}

#[test]
fn sift_on_harris_keypoints_matches_opencv() {
    check("harris", "harris", 300);
}
