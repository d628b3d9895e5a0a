//! ALIKED parity with the reference `ALIKED` module on the official `aliked-n16` weights
//! (fixtures and tolerances from tools/make_aliked_fixtures.py, see the manifest beside them).

mod learned_fixtures;

use std::path::PathBuf;

use featleak_descriptors::aliked::{Aliked, AlikedDetector, AlikedWeights};
use featleak_descriptors::state_dict::StateDictWeights;
use learned_fixtures::{check_joint_extractor, checks, gray, max_abs_diff, reference};
use ndarray::{Array1, Array2, ArrayD, Axis};

/// The `max_num_keypoints` of each fixture scene (0: the reference's limit).
const SCENES: [usize; 3] = [0, 0, 60];
/// Sub-pixel keypoint positions (pixels).
const POSITION: f32 = 1e-4;
/// Normalised descriptors.
const DESCRIPTORS: f32 = 1e-4;
/// Scores and the network maps (both within [-1, 1]).
const MAPS: f32 = 1e-5;

#[test]
fn network_maps_match_the_reference() {
    let mut npz = reference("aliked");
    let g = gray(&mut npz, 0);
    let (h, w) = (g.height() as usize, g.width() as usize);
    let pixels: Vec<f32> = g.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
    let maps = Aliked::bundled().maps(&pixels, h, w);
    let scores: ArrayD<f32> = npz.by_name("scores_map_0").unwrap();
    let features: ArrayD<f32> = npz.by_name("features_0").unwrap();
    let ds = max_abs_diff(&maps.scores, scores.iter());
    let df = max_abs_diff(&maps.features[..8 * h * w], features.iter());
    eprintln!("score map max |Δ| {ds:e}, feature channels 0–7 max |Δ| {df:e}");
    assert!(ds <= MAPS && df <= MAPS, "{ds} {df}");
}

#[test]
fn keypoints_scores_and_descriptors_match_the_reference() {
    matches_the_reference(&Aliked::bundled());
}

/// The same parity with the network on the machine's wgpu adapter.
#[cfg(feature = "wgpu")]
#[test]
fn keypoints_scores_and_descriptors_match_the_reference_on_wgpu() {
    let weights = featleak_descriptors::aliked::bundled_weights();
    matches_the_reference(&Aliked::from_weights(weights, learned_fixtures::wgpu()));
}

fn matches_the_reference(net: &Aliked) {
    let mut npz = reference("aliked");
    for (i, &n) in SCENES.iter().enumerate() {
        let g = gray(&mut npz, i);
        let want_kp: Array2<f32> = npz.by_name(&format!("keypoints_{i}")).unwrap();
        let want_scores: Array1<f32> = npz.by_name(&format!("scores_{i}")).unwrap();
        let want_desc: Array2<f32> = npz.by_name(&format!("descriptors_{i}")).unwrap();
        let (kps, desc) = net
            .detect_and_compute(&g, &AlikedDetector::default(), n)
            .unwrap();
        assert_eq!(kps.len(), want_kp.nrows(), "scene {i}: keypoint count");
        let dp = kps
            .iter()
            .zip(want_kp.axis_iter(Axis(0)))
            .fold(0f32, |m, (k, r)| {
                m.max((k.x - r[0]).abs()).max((k.y - r[1]).abs())
            });
        let scores: Vec<f32> = kps.iter().map(|k| k.response).collect();
        let ds = max_abs_diff(&scores, want_scores.iter());
        let dd = max_abs_diff(desc.iter(), want_desc.iter());
        eprintln!(
            "scene {i} ({}×{}, limit {n}): {} keypoints in the same order, positions max |Δ| {dp:e} px, scores {ds:e}, descriptors {dd:e}",
            g.width(),
            g.height(),
            kps.len()
        );
        assert!(
            dp <= POSITION && ds <= MAPS && dd <= DESCRIPTORS,
            "scene {i}: {dp} {ds} {dd}"
        );
    }
}

#[test]
fn the_extractor_runs_aliked_on_its_own_keypoints() {
    let mut npz = reference("aliked");
    check_joint_extractor("aliked", 128, &gray(&mut npz, 1));
}

#[test]
fn another_architecture_is_refused() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let err = AlikedWeights::load(fixtures.join("sosnet/sosnet_random.pth"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a state_dict of ALIKED-N16"), "{err}");
}

#[test]
fn large_images_are_shrunk_as_hloc_does_and_keypoints_mapped_back() {
    // 1100×300: longer than resize_max 1024, so run at 1024×279 (300·1024/1100 = 279.27).
    let (w, h) = (1100u32, 300u32);
    let img = checks(w, h);
    let net = Aliked::bundled();
    let (kps, _) = net
        .detect_and_compute(&img, &AlikedDetector::default(), 300)
        .unwrap();
    assert!(!kps.is_empty());
    assert!(
        kps.iter()
            .all(|k| k.x >= 0.0 && k.x < w as f32 && k.y < h as f32)
    );
    assert!(
        kps.iter().any(|k| k.x > 1024.0),
        "keypoints cover the original width"
    );
}
